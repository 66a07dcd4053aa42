"""Quantization-aware fine-tuning of the rewritten graph, then its int8 conversion.

No Keras 3 tool trains with quantization in the loop: tensorflow-model-optimization (tfmot) works
only with legacy Keras (``tf_keras``), which TensorFlow selects when ``TF_USE_LEGACY_KERAS=1`` is
set before it is imported. The converter has Keras 3 loaded, so it runs this module in a process
of its own (:func:`run_qat`): ``python -m converter.qat`` reads a :class:`QatJob` as JSON on
stdin, writes the int8 .tflite and prints a JSON report.

What it does, in order:

1. Build the rewritten graph (:func:`converter.exact.build_rewritten`) with ``tf_keras``.
2. Annotate every layer for tfmot. Rescaling and the bn1 shift get an output-only config (tfmot
   refuses them otherwise); convolution kernels are per channel, dense kernels per tensor (per
   channel dense kernels fail to convert after QAT).
3. Start every range from the float model's own activations on the calibration images: tfmot
   starts them at [-6, 6], which with this network's ranges gives a 10% model.
4. Fine-tune by distillation: cross-entropy to the float model's own probabilities, on the
   training images outside the hold-out set and the training photos (what it will meet; for a
   model that answers with the mean over an image and its mirror image, half of them mirrored),
   Adam with a cosine decay.
5. Convert to int8 (int8 input and output) with the same calibration images.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.worker import run_python


@dataclass(frozen=True, kw_only=True)
class QatJob:
    """One quantization-aware fine-tuning.

    Attributes:
        weights: A .npz of the rewritten graph's weights (:data:`converter.exact.WEIGHTS`).
        calibration: A .npy of calibration model input (uint8 N×28×28×1).
        holdout: A .npy of training-set indices to keep out of the fine-tuning.
        photos: A .npy of photo examples (model input) to fine-tune on too, or None.
        out: Where to write the int8 .tflite.
        epochs: Fine-tuning epochs.
        learning_rate: Peak Adam learning rate (cosine decay to 1% of it).
        batch_size: Images per step.
        seed: Shuffling and initialisation seed (and which examples are mirrored).
        data_dir: Fashion-MNIST folder (None: the usual lookup).
        mirror_average: The model answers with the mean over an image and its mirror image, so
            half the fine-tuning examples are mirrored.
    """

    weights: str
    calibration: str
    holdout: str
    out: str
    photos: str | None = None
    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 256
    seed: int = 0
    data_dir: str | None = None
    mirror_average: bool = False


def run_qat(job: QatJob) -> dict[str, Any]:
    """Run ``job`` in a fresh process with legacy Keras; return its report.

    Returns:
        ``{"fake_quant_agreement_before", "fake_quant_agreement_after", "seconds", ...}``.

    Raises:
        WorkerError: The process failed (its last error line says why).
    """
    return run_python(
        ["-m", "converter.qat"],
        stdin=json.dumps(asdict(job)),
        env={"TF_USE_LEGACY_KERAS": "1"},
        timeout=3600,
    )


def _output_only_config(tfmot: Any) -> type:
    """A tfmot QuantizeConfig for layers quantized only at their output."""
    moving_average = tfmot.quantization.keras.quantizers.MovingAverageQuantizer

    class OutputOnly(tfmot.quantization.keras.QuantizeConfig):
        def get_weights_and_quantizers(self, layer: Any) -> list:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list:
            return [moving_average(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self) -> dict:
            return {}

    return OutputOnly


def _set_ranges(qat_model: Any, float_model: Any, calibration: np.ndarray) -> None:
    """Start every quantizer's range where the float model's values are (see step 3)."""
    names = ("rescale", "conv1", "bn1_shift", "conv2", "dense1", "dense2", "logits")
    probe = type(float_model)(float_model.inputs, [float_model.get_layer(n).output for n in names])
    values = dict(zip(names, probe.predict(calibration.astype(np.float32), verbose=0), strict=True))
    ranges = {name: (min(0.0, float(v.min())), float(v.max())) for name, v in values.items()}
    ranges["quantize_layer"] = (0.0, 255.0)  # the input: raw pixels
    for layer in qat_model.layers:
        name = next((n for n in ranges if n in layer.name), None)
        kernel = next((v for v in layer.weights if v.name.endswith("/kernel:0")), None)
        for variable in layer.weights:
            vname = variable.name
            if "kernel_min" in vname or "kernel_max" in vname:
                # Symmetric weight quantizers: ±max|w|, per output channel where it is per axis.
                w = kernel.numpy()
                peak = (
                    np.abs(w).max(axis=tuple(range(w.ndim - 1)))
                    if variable.shape.rank
                    else np.abs(w).max()
                )
                value = -peak if "kernel_min" in vname else peak
                variable.assign(np.broadcast_to(np.asarray(value, np.float32), variable.shape))
            elif name and (vname.endswith("_min:0") or vname.endswith("_max:0")):
                low, high = ranges[name]
                value = low if vname.endswith("_min:0") else high
                variable.assign(np.full(variable.shape, value, np.float32))


def fine_tune(job: QatJob) -> dict[str, Any]:
    """Do ``job`` in this process (which must have been started with TF_USE_LEGACY_KERAS=1)."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from converter.exact import build_rewritten
    from edge_runtime.preprocess import model_input
    from trainer.data import load_data

    keras = tf.keras
    if "tf_keras" not in keras.__name__:
        raise RuntimeError("converter.qat needs TF_USE_LEGACY_KERAS=1 before TensorFlow loads")
    keras.utils.set_random_seed(job.seed)
    tf.config.experimental.enable_op_determinism()

    with np.load(job.weights) as npz:
        weights = {k: npz[k] for k in npz.files}
    calibration = np.load(job.calibration)
    float_model = build_rewritten(keras, weights)
    output_only = _output_only_config(tfmot)
    shift_layer = type(float_model.get_layer("bn1_shift"))
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def annotated(layer: Any) -> Any:
        if isinstance(layer, keras.layers.Rescaling | shift_layer):
            return annotate(layer, output_only())
        return annotate(layer)

    scope = {"OutputOnly": output_only, shift_layer.__name__: shift_layer}
    with tfmot.quantization.keras.quantize_scope(scope):
        marked = keras.models.clone_model(float_model, clone_function=annotated)
        marked.set_weights(float_model.get_weights())
        model = tfmot.quantization.keras.quantize_apply(marked)
    _set_ranges(model, float_model, calibration)

    data = load_data(job.data_dir)
    keep = np.ones(len(data.y_train), bool)
    keep[np.load(job.holdout)] = False
    x = model_input(data.x_train[keep]).astype(np.float32)
    if job.photos is not None:
        x = np.concatenate([x, np.load(job.photos).astype(np.float32)])
    if job.mirror_average:
        # Every answer averages the image and its mirror image: half the examples, chosen once
        # by the seed, are mirrored, so the fine-tuning meets both orientations it is asked.
        mirror = np.random.default_rng(job.seed).random(len(x)) < 0.5
        x[mirror] = x[mirror][:, :, ::-1]
    teacher = tf.nn.softmax(float_model.predict(x, batch_size=1000, verbose=0)).numpy()

    def agreement() -> float:
        return float(
            np.mean(model.predict(x[:5000], verbose=0).argmax(1) == teacher[:5000].argmax(1))
        )

    before = agreement()
    steps = job.epochs * int(np.ceil(len(x) / job.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(job.learning_rate, steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, teacher))
        .shuffle(len(x), seed=job.seed)
        .batch(job.batch_size)
    )
    start = time.perf_counter()
    model.fit(dataset, epochs=job.epochs, verbose=2)
    seconds = time.perf_counter() - start

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [image[np.newaxis].astype(np.float32)] for image in calibration
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    content = converter.convert()
    Path(job.out).write_bytes(content)
    return {
        "fake_quant_agreement_before": before,
        "fake_quant_agreement_after": agreement(),
        "train_images": int(len(x)),
        "epochs": job.epochs,
        "mirror_average": job.mirror_average,
        "learning_rate": job.learning_rate,
        "seconds": round(seconds, 1),
        "bytes": len(content),
    }


def main() -> int:
    report = fine_tune(QatJob(**json.loads(sys.stdin.read())))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

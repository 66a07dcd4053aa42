"""Keras → TFLite in every mode, each validated on the full test set before it is written.

The building blocks of :mod:`converter.pipeline`: load the .keras safely, convert in memory by
post-training quantization, set an output grid, score a model's outputs, and write the C array.
"""

from __future__ import annotations

import contextlib
import io
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runtime import CLASS_NAMES, INPUT_SHAPE
from edge_runtime.classifier import Classifier
from edge_runtime.preprocess import model_input
from edge_runtime.vocab import DEFAULT_RUNTIME, HYBRID_MODE, PTQ_MODE, Mode
from trainer.data import stratified_indices
from trainer.metrics import per_class_accuracy

if TYPE_CHECKING:
    import keras

IO_TYPES = ("int8", "uint8", "float32")


class ConvertError(Exception):
    """A conversion that cannot go ahead. ``str()`` is one line saying why."""


def load_keras(path: Path) -> keras.Model:
    """Load a .keras file with ``safe_mode=True``.

    Raises:
        ConvertError: Missing, not a .keras archive, corrupt, or needing custom code (Lambda
            layers or unregistered custom objects are refused, never executed).
    """
    if not path.is_file():
        raise ConvertError(f"{path}: no such model file (run `make train` first, or pass --model)")
    if not zipfile.is_zipfile(path):
        raise ConvertError(
            f"{path}: not a .keras model (not a zip archive); truncated or the wrong file?"
        )
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # Keras raises ValueError/TypeError/KeyError/OSError for bad archives
        text = " ".join(str(e).split())
        if "Lambda" in text or "safe_mode" in text:
            raise ConvertError(
                f"{path}: contains a Lambda layer or code that safe_mode refuses to run"
            ) from None
        if "Could not locate" in text or "custom" in text.lower():
            raise ConvertError(
                f"{path}: uses custom objects this project does not define ({text[:160]})"
            ) from None
        raise ConvertError(f"{path}: cannot load ({type(e).__name__}: {text[:160]})") from None


def representative_images(
    x_train: np.ndarray, y_train: np.ndarray, count: int, *, seed: int = 0
) -> np.ndarray:
    """Pick ``count`` training images stratified by class and make them model input.

    They go through :func:`edge_runtime.preprocess.model_input`, the path the Pi uses.

    Returns:
        uint8 (count, 28, 28, 1), raw 0–255.
    """
    return model_input(x_train[stratified_indices(y_train, count, seed)])


def check_representative(images: np.ndarray) -> None:
    """Refuse calibration data of the wrong shape or range (a 0–1 set would wreck int8 accuracy).

    Raises:
        ConvertError: Not (N, 28, 28, 1), not 0–255, or empty.
    """
    if images.ndim != 4 or images.shape[1:] != INPUT_SHAPE or len(images) == 0:
        raise ConvertError(
            f"representative set has shape {images.shape}, expected (N, 28, 28, 1) with N > 0"
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 255 or hi <= 1.0:
        raise ConvertError(
            f"representative set spans {lo:g}..{hi:g}; expected raw pixels 0..255 "
            "(the model rescales internally)"
        )


def _float16(conv: Any, tf: ModuleType, io_type: str) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]


def _dynamic(conv: Any, tf: ModuleType, io_type: str) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    # TF 2.21 emits FULLY_CONNECTED v12 for per-channel dense weights; tflite-runtime 2.14
    # rejects it. Per-tensor dense weights keep it at a version 2.14 loads.
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True


def _int8(conv: Any, tf: ModuleType, io_type: str) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io_type]
    conv.inference_output_type = conv.inference_input_type


def _int16x8(conv: Any, tf: ModuleType, io_type: str) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    ]
    io = tf.float32 if io_type == "float32" else tf.int16
    conv.inference_input_type = conv.inference_output_type = io


POST_TRAINING: dict[str, Callable[[Any, ModuleType, str], None]] = {
    "float32": lambda conv, tf, io_type: None,
    "float16": _float16,
    HYBRID_MODE: _dynamic,
    PTQ_MODE: _int8,
    "int16x8": _int16x8,
}
"""The modes made by post-training quantization of the Keras model: mode name → what it sets
on a ``TFLiteConverter`` (the converter, ``tensorflow``, the ``io_type``). A calibrated mode
also gets the representative set (:func:`convert_bytes`)."""


def _calibration(rep: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The representative dataset of a converter: one image at a time, with progress."""

    def images() -> Iterator[list[np.ndarray]]:
        for i, image in enumerate(rep):
            if i % 100 == 0:
                print(f"\r  calibrating {i}/{len(rep)}", end="", file=sys.stderr, flush=True)
            yield [image[np.newaxis].astype(np.float32)]
        print(f"\r  calibrating {len(rep)}/{len(rep)}", file=sys.stderr, flush=True)

    return images


def convert_bytes(
    model: keras.Model, mode: Mode, *, rep: np.ndarray | None = None, io_type: str = "int8"
) -> bytes:
    """Convert ``model`` to a TFLite flatbuffer in memory, by post-training quantization.

    Args:
        model: The float Keras model (raw 0–255 input).
        mode: One of :data:`POST_TRAINING`'s modes (``int8`` has a route of its own,
            :func:`converter.route.quantize_int8`).
        rep: Representative model input for calibrated modes (see :func:`representative_images`).
        io_type: I/O dtype for ``int8-ptq`` (int8, uint8 or float32); for ``int16x8``, float32 keeps
            float I/O and anything else means int16.

    Raises:
        ConvertError: Not a post-training mode, or calibration data missing or out of range.
    """
    settings = POST_TRAINING.get(mode.name)
    if settings is None:
        raise ConvertError(
            f"{mode.name} is not made by post-training quantization; "
            f"those modes are {', '.join(POST_TRAINING)}"
        )
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    settings(conv, tf, io_type)
    if mode.calibrated:
        if rep is None:
            raise ConvertError(f"{mode.name} needs a representative dataset")
        check_representative(rep)
        conv.representative_dataset = _calibration(rep)
    # Keras 3's export prints its saved-model signature to stdout; keep stdout for results.
    with contextlib.redirect_stdout(io.StringIO()):
        return conv.convert()


def set_output_grid(content: bytes, *, low: float, high: float) -> bytes:
    """A copy of an int8 model whose output tensor's int8 grid spans ``low..high``.

    Only the output tensor's scale and zero point change: every runtime derives the last
    layer's requantization from the tensor scales when it prepares the model, so this is a
    range choice, like calibration's, not a change to the network. TFLite has no converter
    option for it.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    quant = graph.tensors[graph.outputs[0]].quantization
    scale = (high - low) / 255.0
    quant.scale = [scale]
    quant.zeroPoint = [int(np.clip(np.round(-128 - low / scale), -128, 127))]
    quant.min = quant.max = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def min_runtime_version(content: bytes) -> str | None:
    """The ``min_runtime_version`` the converter stored in the model's metadata, if any."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == "min_runtime_version":
            data = bytes(model.buffers[entry.buffer].data)
            return data.split(b"\0", 1)[0].decode() or None
    return None


def validate(
    content: bytes,
    *,
    answers: np.ndarray,
    output_is: str,
    y_test: np.ndarray,
    float_pred: np.ndarray,
) -> dict[str, Any]:
    """Score a converted model's test-set answers, and read its tensors with the edge Classifier.

    Args:
        content: The model.
        answers: Its answers (probabilities) on the test set from the default runtime
            (:func:`converter.route.runtime_outputs`: the edge runtime's own Classifier, in a
            worker).
        output_is: ``probabilities`` or ``logits``.
        y_test: Test labels.
        float_pred: The float Keras model's answers on the test set.

    Returns:
        The sidecar's fields of these: accuracy, drop vs float (percentage points), argmax
        agreement with float, per-class accuracy deltas (pp), and the input/output tensors.
    """
    clf = Classifier(content, runtime=DEFAULT_RUNTIME, output_is=output_is, name="converted model")
    pred = answers.argmax(1)
    acc = float(np.mean(pred == y_test))
    float_acc = float(np.mean(float_pred == y_test))
    deltas = (per_class_accuracy(y_test, pred) - per_class_accuracy(y_test, float_pred)) * 100
    return {
        "test_accuracy": acc,
        "float_test_accuracy": float_acc,
        "accuracy_drop_pp": round((float_acc - acc) * 100, 3),
        "agreement_with_float": float(np.mean(pred == float_pred)),
        "per_class_delta_pp": {
            n: round(float(d), 2) for n, d in zip(CLASS_NAMES, deltas, strict=True)
        },
        "input": clf.input.info(),
        "output": clf.output.info(),
    }


def c_array(content: bytes, *, header_file: str) -> tuple[str, str]:
    """A TFLite Micro style C array of ``content``: ``(header, source)``.

    The array is 16-byte aligned and named after ``header_file`` (``model_int8-ptq.h`` →
    ``model_int8_ptq``, ``model_int8_ptq_len``).
    """
    name = Path(header_file).stem.replace("-", "_")
    header = (
        f"// Generated by fmnist-convert. {len(content):,} bytes.\n#pragma once\n\n"
        f"extern const unsigned char {name}[];\nextern const unsigned int {name}_len;\n"
    )
    rows = [
        ", ".join(f"0x{b:02x}" for b in content[i : i + 12]) for i in range(0, len(content), 12)
    ]
    source = (
        f'#include "{header_file}"\n\n// Aligned: TFLite Micro reads the flatbuffer in place.\n'
        f"alignas(16) const unsigned char {name}[] = {{\n  " + ",\n  ".join(rows) + "\n};\n"
        f"const unsigned int {name}_len = {len(content)};\n"
    )
    return header, source

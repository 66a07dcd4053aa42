"""Where an int8 model's error sits: every layer's output against the float model's, in steps.

TensorFlow's QuantizationDebugger cannot open a quantization-aware-trained model, so this
measures any int8 file the same way: run it image by image with the builtin kernels, keeping
every tensor, dequantize each layer's output and compare it with the float model's activation at
the same point. The error accumulates through the network, so the report shows both where it
grows and how much reaches the logits. Units: that tensor's own quantization step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runtime.atomic import write_text
from trainer.figures import pyplot, save_figure

if TYPE_CHECKING:
    import keras

PTQ_LAYERS = (
    ("conv1", "CONV_2D"),
    ("bn1 ×a", "MUL"),
    ("bn1 +c", "ADD"),
    ("pool1", "MAX_POOL_2D"),
    ("conv2", "CONV_2D"),
    ("bn2 ×a", "MUL"),
    ("bn2 +c", "ADD"),
    ("pool2", "MAX_POOL_2D"),
    ("dense1", "FULLY_CONNECTED"),
    ("dense2", "FULLY_CONNECTED"),
    ("logits", "FULLY_CONNECTED"),
    ("softmax", "SOFTMAX"),
)
"""The seed graph as post-training quantization converts it: (layer, op), in execution order."""

ROUTE_LAYERS = (
    ("conv1 (×a folded)", "CONV_2D"),
    ("pool1", "MAX_POOL_2D"),
    ("bn1 +c", "ADD"),
    ("conv2 (×a folded)", "CONV_2D"),
    ("pool2", "MAX_POOL_2D"),
    ("dense1 (+c folded)", "FULLY_CONNECTED"),
    ("dense2", "FULLY_CONNECTED"),
    ("logits", "FULLY_CONNECTED"),
)
"""The rewritten graph (:mod:`converter.exact`): (layer, op), in execution order."""


def seed_activations(model: keras.Model, images: np.ndarray) -> list[np.ndarray]:
    """The float seed model's values at each point of :data:`PTQ_LAYERS`."""
    import keras

    names = ("conv1", "bn1", "pool1", "conv2", "bn2", "pool2", "dense1", "dense2", "probs")
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    v = dict(zip(names, probe.predict(images.astype(np.float32), verbose=0), strict=True))

    def bn_scale(layer: str) -> np.ndarray:
        gamma, _, _, var = model.get_layer(layer).get_weights()
        return gamma / np.sqrt(var + model.get_layer(layer).epsilon)

    w5, b5 = model.get_layer("probs").get_weights()
    return [
        v["conv1"],
        v["conv1"] * bn_scale("bn1"),
        v["bn1"],
        v["pool1"],
        v["conv2"],
        v["conv2"] * bn_scale("bn2"),
        v["bn2"],
        v["pool2"],
        v["dense1"],
        v["dense2"],
        v["dense2"] @ w5 + b5,
        v["probs"],
    ]


def rewritten_activations(rewritten: keras.Model, images: np.ndarray) -> list[np.ndarray]:
    """The rewritten float graph's values at each point of :data:`ROUTE_LAYERS`."""
    import keras

    names = ("conv1", "pool1", "bn1_shift", "conv2", "pool2", "dense1", "dense2", "logits")
    probe = keras.Model(rewritten.inputs, [rewritten.get_layer(n).output for n in names])
    return list(probe.predict(images.astype(np.float32), verbose=0))


def op_outputs(content: bytes, images: np.ndarray) -> list[tuple[str, np.ndarray, float, int]]:
    """Every quantized op output of an int8 model, in execution order, on ``images``.

    Builtin kernels (XNNPACK fuses ops, so it keeps no intermediate tensors), one image at a time.

    Returns:
        ``(op name, int values stacked over the images, scale, zero point)`` per op.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    entry = interpreter.get_input_details()[0]
    scale, zero_point = entry["quantization"]
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = [
        (op["op_name"], op["outputs"][0])
        for op in interpreter._get_ops_details()  # noqa: SLF001 - the op list has no public API
        if tensors[op["outputs"][0]]["quantization"][0]
    ]
    values: list[list[np.ndarray]] = [[] for _ in ops]
    for image in images:
        q = np.clip(np.round(image / scale) + zero_point, -128, 127).astype(entry["dtype"])
        interpreter.set_tensor(entry["index"], q[np.newaxis])
        interpreter.invoke()
        for store, (_, index) in zip(values, ops, strict=True):
            store.append(interpreter.get_tensor(index).copy())
    return [
        (name, np.concatenate(v), *tensors[index]["quantization"])
        for (name, index), v in zip(ops, values, strict=True)
    ]


def layer_errors(
    content: bytes,
    *,
    layers: tuple[tuple[str, str], ...],
    floats: list[np.ndarray],
    images: np.ndarray,
) -> list[dict[str, Any]]:
    """Each layer's error against the float model, in its own quantization steps.

    Args:
        content: The int8 model.
        layers: Its (layer, op) points in execution order (:data:`PTQ_LAYERS`,
            :data:`ROUTE_LAYERS`); each matches the next op of that type.
        floats: The float model's values at those points, on ``images``.
        images: Model input (uint8 N×28×28×1).

    Returns:
        ``{"layer", "op", "scale", "rmse_steps", "max_steps"}`` per layer.
    """
    ops = iter(op_outputs(content, images))
    rows = []
    for (layer, op), reference in zip(layers, floats, strict=True):
        name, values, scale, zero_point = next(o for o in ops if o[0] == op)
        error = (
            (values.astype(np.float64) - zero_point) * scale - reference.reshape(values.shape)
        ) / scale
        rows.append(
            {
                "layer": layer,
                "op": name,
                "scale": float(scale),
                "rmse_steps": round(float(np.sqrt(np.mean(error**2))), 4),
                "max_steps": round(float(np.abs(error).max()), 2),
            }
        )
    return rows


def write_report(reports: dict[str, list[dict[str, Any]]], *, images: int, out_dir: Path) -> dict:
    """Write ``int8_debug.json`` and ``int8_debug.png`` (one panel per model, side by side).

    Args:
        reports: Mode (``int8-ptq``, ``int8``) → :func:`layer_errors` rows.
        images: How many test images they were measured on.
        out_dir: The artifacts folder.

    Returns:
        The JSON written.
    """
    import json

    data = {
        "images": images,
        "kernels": "builtin (tflite-runtime's and, to one step, TFLite Micro's arithmetic)",
        "measure": "RMSE of the dequantized layer output against the float model, in that "
        "layer's quantization steps (errors accumulate from the layers before)",
        "models": reports,
    }
    write_text(out_dir / "int8_debug.json", json.dumps(data, indent=1))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(reports), figsize=(5.5 * len(reports), 4.5), squeeze=False)
    top = max(r["rmse_steps"] for rows in reports.values() for r in rows) * 1.1
    for ax, (mode, rows) in zip(axes[0], reports.items(), strict=True):
        ax.barh([r["layer"] for r in rows][::-1], [r["rmse_steps"] for r in rows][::-1])
        ax.set_xlim(0, top)
        ax.set_xlabel("RMSE vs float (quantization steps)")
        ax.set_title(f"{mode}: error per layer ({images} test images)")
    save_figure(fig, out_dir / "int8_debug.png")
    return data

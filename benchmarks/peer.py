"""ONNX Runtime, the peer: the same trained network run by another engine, in the same run.

A ratio against the Keras eager call says little (it is a weak reference, and a noisy one);
a ratio against another inference engine running the same weights says how good the
toolkit's runtime choice is. So ``fmnist-bench`` builds an ONNX graph from ``model.keras``'s
weights, quantizes a copy with ONNX Runtime's own tools (static QDQ, per channel, calibrated
on training images), and times both in a fresh process, as the TFLite worker times its models.

Call order: :func:`onnx_graph` (float32, from the Keras model) → :func:`quantize_int8` →
:func:`peer_runs` (answers on the test images and timing, each model in a fresh process,
which calls :func:`time_model`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime import INPUT_SHAPE
from edge_runtime.classifier import mirrored
from edge_runtime.vocab import PTQ_MODE, ROUTE_MODE
from edge_runtime.worker import WARMUP, percentiles, run_python

ENGINE = "onnxruntime"
"""The peer's name in tables."""
OPSET = 17
"""The ONNX opset of the graph (ONNX Runtime 1.32 runs 7 to 23)."""


@dataclass(frozen=True)
class PeerModel:
    """One of the peer's models.

    Attributes:
        name: ``float32`` or ``int8``.
        file: Its file name in the run's work folder.
        counterparts: The TFLite modes it is compared with.
    """

    name: str
    file: str
    counterparts: tuple[str, ...]


PEER_MODELS = {
    m.name: m
    for m in (
        PeerModel("float32", "model.onnx", ("float32",)),
        # Static int8 against both the shipped int8 model and plain post-training int8.
        PeerModel("int8", "model_int8.onnx", (ROUTE_MODE, PTQ_MODE)),
    )
}
"""The peer's models, by name."""


@dataclass(frozen=True, kw_only=True)
class PeerTiming:
    """One image per call at one thread count, p50/p95/p99 in µs.

    Attributes:
        threads: ONNX Runtime's intra-op threads.
        run_us: ``session.run`` with a NumPy image (a whole call).
        invoke_us: ``run_with_iobinding`` with the input and output bound once (the inference
            alone, like the TFLite worker's ``invoke()`` timing).
    """

    threads: int
    run_us: dict[str, float]
    invoke_us: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class PeerRun:
    """One of the peer's models, measured (in ``benchmarks.json`` as ``peer``).

    Attributes:
        variant: Its :data:`PEER_MODELS` name.
        engine: :data:`ENGINE`.
        engine_version: ONNX Runtime's version.
        size_bytes: The .onnx file's size.
        accuracy: On the run's test images (0–1), answering as the shipped model does.
        agreement_with_keras: Share of test images with the Keras model's answer.
        timings: One per thread count.
    """

    variant: str
    engine: str
    engine_version: str
    size_bytes: int
    accuracy: float
    agreement_with_keras: float
    timings: tuple[PeerTiming, ...]

    @property
    def model(self) -> PeerModel:
        return PEER_MODELS[self.variant]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeerRun:
        return cls(**{**data, "timings": tuple(PeerTiming(**t) for t in data["timings"])})


class _Graph:
    """The nodes and weights of the ONNX graph being built, in order."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[Any] = []

    def const(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output


ACTIVATIONS = {"relu": ("Relu", {}), "softmax": ("Softmax", {"axis": -1})}
"""Keras activations by name → ONNX operator and its attributes."""


def _weights(layer: Any) -> list[np.ndarray]:
    return [np.asarray(w, np.float32) for w in layer.get_weights()]


def _activation(g: _Graph, layer: Any, x: str) -> str:
    name = layer.activation.__name__
    if name == "linear":
        return x
    if name not in ACTIVATIONS:
        raise ValueError(f"{layer.name}: no ONNX builder for activation {name!r}")
    op, attributes = ACTIVATIONS[name]
    return g.node(op, [x], f"{layer.name}_{name}", **attributes)


def _rescaling(g: _Graph, layer: Any, x: str) -> str:
    scaled = g.node("Mul", [x, g.const(f"{layer.name}_scale", layer.scale)], f"{layer.name}_mul")
    return g.node("Add", [scaled, g.const(f"{layer.name}_offset", layer.offset)], layer.name)


PADDING = {"same": "SAME_UPPER", "valid": "VALID"}
"""Keras padding → ONNX ``auto_pad`` (TensorFlow's "same" puts the odd pixel at the end)."""


def _conv2d(g: _Graph, layer: Any, x: str) -> str:
    if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        raise ValueError(f"{layer.name}: dilated or grouped convolutions have no builder here")
    kernel, bias = _weights(layer)
    inputs = [
        x,
        g.const(f"{layer.name}_w", kernel.transpose(3, 2, 0, 1)),  # HWIO → OIHW
        g.const(f"{layer.name}_b", bias),
    ]
    y = g.node(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=list(kernel.shape[:2]),
        strides=list(layer.strides),
        auto_pad=PADDING[layer.padding],
    )
    return _activation(g, layer, y)


def _batch_norm(g: _Graph, layer: Any, x: str) -> str:
    names = ("gamma", "beta", "mean", "var")
    inputs = [g.const(f"{layer.name}_{n}", w) for n, w in zip(names, _weights(layer), strict=True)]
    return g.node("BatchNormalization", [x, *inputs], layer.name, epsilon=float(layer.epsilon))


def _max_pool(g: _Graph, layer: Any, x: str) -> str:
    return g.node(
        "MaxPool",
        [x],
        layer.name,
        kernel_shape=list(layer.pool_size),
        strides=list(layer.strides),
        auto_pad=PADDING[layer.padding],
    )


def _flatten(g: _Graph, layer: Any, x: str) -> str:
    # Keras flattens NHWC order: back to it first, so that Dense's weights apply unchanged.
    nhwc = g.node("Transpose", [x], f"{layer.name}_nhwc", perm=[0, 2, 3, 1])
    return g.node("Flatten", [nhwc], layer.name, axis=1)


def _dense(g: _Graph, layer: Any, x: str) -> str:
    kernel, bias = _weights(layer)
    inputs = [x, g.const(f"{layer.name}_w", kernel), g.const(f"{layer.name}_b", bias)]
    return _activation(g, layer, g.node("Gemm", inputs, layer.name))


def _identity(g: _Graph, layer: Any, x: str) -> str:
    return x


LAYERS = {
    "Rescaling": _rescaling,
    "Conv2D": _conv2d,
    "BatchNormalization": _batch_norm,
    "MaxPooling2D": _max_pool,
    "Flatten": _flatten,
    "Dense": _dense,
    "Dropout": _identity,  # at inference
}
"""Keras layer class name → the function that appends it to the ONNX graph."""


def onnx_graph(model: Any) -> Any:
    """The Keras model as an ONNX ``ModelProto`` computing the same function.

    Input ``pixels``: float32 N×28×28×1 (NHWC, raw 0–255 values, like the float32 TFLite model);
    output ``probabilities``: N×10. ONNX convolutions are NCHW, so the graph transposes once
    after the input and back before ``Flatten``.

    Raises:
        ValueError: A layer or activation with no builder in :data:`LAYERS` (none is skipped).
    """
    from onnx import TensorProto, helper

    g = _Graph()
    x = g.node("Transpose", ["pixels"], "pixels_nchw", perm=[0, 3, 1, 2])
    for layer in model.layers:
        build = LAYERS.get(type(layer).__name__)
        if build is None:
            raise ValueError(
                f"{layer.name}: no ONNX builder for a layer of type {type(layer).__name__}"
            )
        x = build(g, layer, x)
    g.node("Identity", [x], "probabilities")
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", *INPUT_SHAPE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 10])],
        g.weights,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8  # what every ONNX Runtime since 1.10 reads
    return proto


def _calibration(images: np.ndarray) -> Any:
    """ONNX Runtime's calibration reader over model input (uint8 N×28×28×1), one image a call."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._images: Iterator[np.ndarray] = iter(images.astype(np.float32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self._images, None)
            return None if image is None else {"pixels": image[None]}

    return Reader()


def quantize_int8(float_path: Path, out: Path, calibration: np.ndarray) -> Path:
    """Static int8 quantization of the ONNX model: QDQ format, int8 weights per channel, uint8
    activations (the U8S8 pairing ONNX Runtime's x86 kernels take directly: int8 activations
    ran slower in development), min–max ranges from ``calibration`` (model input, uint8
    N×28×28×1): the counterpart of the TFLite ``int8-ptq`` mode."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(float_path),
        str(out),
        _calibration(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def _answers(session: Any, x: np.ndarray, *, mirror_average: bool) -> np.ndarray:
    def run(batch: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                session.run(None, {"pixels": batch[i : i + 256]})[0]
                for i in range(0, len(batch), 256)
            ]
        )

    probs = run(x)
    return (probs + run(mirrored(x))) / 2 if mirror_average else probs


def time_model(
    path: str,
    inputs: str,
    answers: str,
    *,
    threads: tuple[int, ...],
    repeats: int,
    mirror_average: bool,
) -> dict[str, Any]:
    """Answer every image of ``inputs`` (.npy, uint8 N×28×28×1) into ``answers`` (.npy of
    probabilities; with ``mirror_average``, averaged over each image and its mirror image, as
    the shipped model answers), then time one image per call at each thread count.

    Returns ``{"version", "timings"}``, each timing a :class:`PeerTiming` as JSON.
    Runs in the peer's own process (see :func:`peer_runs`), which never imports TensorFlow.
    """
    import onnxruntime as ort

    x = np.load(inputs).astype(np.float32)
    timings = []
    for n in threads:
        options = ort.SessionOptions()
        options.intra_op_num_threads = n
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        if not timings:  # the answers do not depend on the thread count
            np.save(answers, _answers(session, x, mirror_average=mirror_average))
        one = x[:1]
        for _ in range(WARMUP):
            session.run(None, {"pixels": one})
        whole = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            session.run(None, {"pixels": one})
            whole.append(time.perf_counter() - t0)
        binding = session.io_binding()
        binding.bind_ortvalue_input("pixels", ort.OrtValue.ortvalue_from_numpy(one))
        binding.bind_output("probabilities")
        session.run_with_iobinding(binding)
        invoke = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            session.run_with_iobinding(binding)
            invoke.append(time.perf_counter() - t0)
        timing = PeerTiming(threads=n, run_us=percentiles(whole), invoke_us=percentiles(invoke))
        timings.append(asdict(timing))
    return {"version": ort.__version__, "timings": timings}


def peer_runs(
    keras_path: Path,
    *,
    x: np.ndarray,
    y: np.ndarray,
    keras_pred: np.ndarray,
    calibration: np.ndarray,
    threads: tuple[int, ...],
    repeats: int,
    mirror_average: bool,
    work: Path,
    log: Callable[[str], None] = print,
) -> list[PeerRun]:
    """Build, quantize and measure the peer's models, in :data:`PEER_MODELS` order.

    ``x``/``y``: the run's test images (model input) and labels; ``keras_pred``: the Keras
    model's answers to them (for the agreement); ``calibration``: the int8 calibration images;
    ``mirror_average``: answer as the shipped model does (the timing is of one inference).
    """
    import keras
    import onnx

    model = keras.saving.load_model(keras_path, safe_mode=True)
    paths = {name: work / m.file for name, m in PEER_MODELS.items()}
    onnx.save(onnx_graph(model), paths["float32"])
    log(f"{ENGINE}: quantizing the ONNX graph (static QDQ, {len(calibration)} images)")
    quantize_int8(paths["float32"], paths["int8"], calibration)
    inputs = work / "peer-x.npy"
    np.save(inputs, x)
    runs = []
    for variant, path in paths.items():
        log(f"{path.name} on {ENGINE}")
        answers = work / f"peer-{variant}.npy"
        code = (
            "import json\nfrom benchmarks.peer import time_model\n"
            f"print(json.dumps(time_model({str(path)!r}, {str(inputs)!r}, {str(answers)!r}, "
            f"threads={tuple(threads)!r}, repeats={repeats}, mirror_average={mirror_average})))\n"
        )
        measured = run_python(["-c", code])
        pred = np.load(answers).argmax(1)
        runs.append(
            PeerRun(
                variant=variant,
                engine=ENGINE,
                engine_version=measured["version"],
                size_bytes=path.stat().st_size,
                accuracy=float(np.mean(pred == y)),
                agreement_with_keras=float(np.mean(pred == keras_pred)),
                timings=tuple(PeerTiming(**t) for t in measured["timings"]),
            )
        )
    return runs

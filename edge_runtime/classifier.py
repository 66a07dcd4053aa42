"""One ``Classifier`` around a TFLite interpreter: sidecar checks, (de)quantization, predictions.

``fmnist-edge classify``, the webcam loop, the converter's validation and the benchmarks all use
this class, so every number the project reports comes through the same code the Pi runs.

Interpreters: ai-edge-litert (preferred; the maintained successor) or tflite-runtime 2.14 (the
only one on 32-bit Pi OS). Neither is imported until a model is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge_runtime import CLASS_NAMES, INPUT_SHAPE
from edge_runtime.preprocess import model_input
from edge_runtime.sidecar import OUTPUT_KINDS, ModelError, Sidecar, TensorInfo, read_sidecar
from edge_runtime.vocab import DEFAULT_RUNTIME, NOT_SURE, RUNTIMES

MAX_BATCH = 500
"""Images per invoke; longer batches are classified in chunks of this size."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (numerically stable: the row maximum is subtracted first)."""
    z = np.asarray(logits, np.float32)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mirrored(batch: np.ndarray) -> np.ndarray:
    """Model input (N, 28, 28, 1) mirrored left to right."""
    return np.ascontiguousarray(batch[:, :, ::-1])


def mirror_mean(probs: np.ndarray) -> np.ndarray:
    """The answers of images whose probabilities (2N, 10) are the N images then their N
    mirror images: the mean of each pair."""
    half = len(probs) // 2
    return ((probs[:half] + probs[half:]) / 2).astype(np.float32)


class RuntimeMissingError(ImportError):
    """No usable TFLite interpreter is installed. The message names the extra to install."""


def load_runtime(runtime: str | None = None) -> tuple[ModuleType, str, str]:
    """Import a runtime's module (its ``Interpreter`` class runs models).

    Args:
        runtime: A name from :data:`edge_runtime.vocab.RUNTIMES`, or None for the first
            automatic one installed, in that order.

    Returns:
        ``(module, runtime name, runtime version)``.

    Raises:
        RuntimeMissingError: The requested runtime (or any, for None) is not installed.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    automatic = [r for r in RUNTIMES.values() if r.automatic]
    for candidate in [RUNTIMES[runtime]] if runtime else automatic:
        try:
            module = importlib.import_module(candidate.module)
        except ImportError:
            continue
        version = importlib.metadata.version(candidate.distribution)
        return module, candidate.name, version
    wanted = runtime or " or ".join(r.name for r in automatic)
    raise RuntimeMissingError(
        f"no TFLite interpreter: {wanted} is not installed. Install the edge extra: "
        f"pip install '.[edge]' (or pip install {RUNTIMES[runtime or DEFAULT_RUNTIME].distribution})"
    )


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as the interpreter reports it.

    ``scale == 0`` means the tensor is not quantized (float32): values pass through as they are.
    """

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> TensorSpec:
        scale, zero_point = details["quantization"]
        return cls(
            int(details["index"]),
            tuple(int(d) for d in details["shape"]),
            np.dtype(details["dtype"]),
            float(scale),
            int(zero_point),
        )

    def info(self) -> TensorInfo:
        """What the sidecar records of this tensor."""
        return TensorInfo(self.shape, self.dtype.name, self.scale, self.zero_point)


def quantize(
    values: np.ndarray, dtype: np.dtype | type, scale: float, zero_point: int
) -> np.ndarray:
    """Real values to a tensor's storage type: ``round(v / scale) + zero_point``, saturated.

    Args:
        values: Real values (for this model's input: raw pixels 0–255).
        dtype: The tensor's dtype (int8, uint8, int16, or float32).
        scale: The tensor's scale; 0 means not quantized, so values are only cast.
        zero_point: The tensor's zero point.
    """
    dtype = np.dtype(dtype)
    if scale == 0:
        return np.asarray(values).astype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"a quantized tensor must be integer, got {dtype}")
    info = np.iinfo(dtype)
    values = np.asarray(values)
    if scale == 1.0 and np.issubdtype(values.dtype, np.integer):
        # Raw pixels into this model's int8 input (scale 1): exact integers, nothing to round.
        q = values.astype(np.int32) + zero_point
    else:
        q = np.round(values.astype(np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """A tensor's stored values to real float32: ``(q - zero_point) * scale`` (or a cast if scale is 0)."""
    if scale == 0:
        return np.asarray(values, np.float32)
    return ((np.asarray(values, np.float32) - zero_point) * scale).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    """One image's result.

    Attributes:
        label: The best class's name.
        class_id: The best class's id.
        score: The best class's softmax probability (0–1).
        top_k: The best classes, best first: ``(name, id, probability)``.
        sure: False when ``score`` is below the model's threshold: the answer is then "not
            sure", and ``label`` only the best guess.
    """

    label: str
    class_id: int
    score: float
    top_k: list[tuple[str, int, float]]
    sure: bool = True

    @property
    def answer(self) -> str:
        """What a person is told: the label, or :data:`~edge_runtime.vocab.NOT_SURE`."""
        return self.label if self.sure else NOT_SURE

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "class_id": self.class_id,
            "score": round(self.score, 6),
            "not_sure": not self.sure,
            "top_k": [{"label": n, "class_id": i, "score": round(s, 6)} for n, i, s in self.top_k],
        }


def _check_model_bytes(path: Path, content: bytes) -> None:
    if not content:
        raise ModelError(path, "empty file")
    if content[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path):
        raise ModelError(
            path, "is a Keras model (.keras), not TFLite: convert it with fmnist-convert"
        )
    if content[4:8] != b"TFL3":
        raise ModelError(path, "not a TFLite model (no TFL3 identifier)")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C++ logging) while the interpreter is created.

    Both runtimes print "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." there, which
    would break the one-line-per-problem stderr of the CLI. Load failures still surface as the
    Python exception they raise.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Classifier:
    """A Fashion-MNIST TFLite model ready to classify.

    Build one with :meth:`from_file` (a .tflite on disk, checked against its sidecar) or with
    the constructor (model bytes in memory, as the converter validates them before writing), then
    call :meth:`classify` for one image or :meth:`probabilities` for a batch of model input.
    """

    def __init__(
        self,
        content: bytes,
        *,
        labels: tuple[str, ...] = CLASS_NAMES,
        threads: int = 1,
        runtime: str | None = None,
        output_is: str = "probabilities",
        not_sure_below: float | None = None,
        mirror_average: bool = False,
        name: str = "<model>",
    ) -> None:
        """Load a model from its bytes. Prefer :meth:`from_file` for files on disk.

        Args:
            content: The .tflite flatbuffer.
            labels: Class names by output index.
            threads: Interpreter threads (1 is best for single images on a Pi).
            runtime: A name from :data:`edge_runtime.vocab.RUNTIMES`, or None for automatic.
            output_is: What the model's output holds: ``probabilities`` (a softmax inside the
                model) or ``logits`` (the softmax is applied here); the sidecar says which.
            not_sure_below: Answer "not sure" when the best probability is below this (0–1);
                None never does.
            mirror_average: Answer with the average of the probabilities of each image and its
                mirror image (left-right): two invokes per image; the sidecar says whether the
                model was made for it.
            name: What to call the model in errors.

        Raises:
            ModelError: The bytes are not a model this runtime can run.
            RuntimeMissingError: No interpreter is installed.
        """
        if output_is not in OUTPUT_KINDS:
            raise ValueError(f"output_is must be one of {OUTPUT_KINDS}, got {output_is!r}")
        module, self.runtime, self.runtime_version = load_runtime(runtime)
        self.output_is = output_is
        self.not_sure_below = not_sure_below
        self.mirror_average = mirror_average
        self.labels = tuple(labels)
        self.name = name
        self.threads = threads
        self.sidecar: Sidecar | None = None  # when loaded by from_file
        self._interpreter = self._load(module, content)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                name, f"expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}"
            )
        self.input = TensorSpec.from_details(inputs[0])
        self.output = TensorSpec.from_details(outputs[0])
        if self.input.shape[1:] != INPUT_SHAPE or self.output.shape[-1] != len(self.labels):
            raise ModelError(
                name,
                f"input {self.input.shape} / output {self.output.shape} do not fit "
                f"a 28x28x1 image and {len(self.labels)} labels",
            )
        self._batch = self.input.shape[0]

    def _load(self, module: ModuleType, content: bytes) -> Any:
        """An allocated interpreter for ``content``.

        Raises:
            ModelError: The runtime cannot load the model, as one line.
        """
        try:
            with _quiet_stderr():
                interpreter = module.Interpreter(model_content=content, num_threads=self.threads)
                interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - TFLite Micro's reader fails on bad bytes with
            # struct.error, TypeError or IndexError, the interpreters with ValueError or
            # RuntimeError: each means the same to the user, the model cannot be loaded.
            problem = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "Didn't find op" in str(e):
                problem += f" (this model needs a newer runtime than {self.runtime} {self.runtime_version})"
            raise ModelError(self.name, f"cannot load with {self.runtime}: {problem}") from None
        return interpreter

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        threads: int = 1,
        runtime: str | None = None,
        not_sure_below: float | None = None,
    ) -> Classifier:
        """Load ``path`` and its sidecar ``path.with_suffix('.json')``.

        The sidecar must exist and its SHA-256 must match the model: a model copied without its
        metadata, or replaced after conversion, is refused rather than run with wrong labels or
        wrong quantization. ``not_sure_below`` None takes the threshold the sidecar records
        (calibrated when the model was made), if any.

        Raises:
            ModelError: Missing, unreadable, not TFLite, or not matching its sidecar.
            RuntimeMissingError: No interpreter is installed.
        """
        path = Path(path)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(
                path, "no such model file (run `make convert`, or pass --model)"
            ) from None
        except IsADirectoryError:
            raise ModelError(path, "is a directory, not a model file") from None
        except OSError as e:
            raise ModelError(path, f"cannot read ({e.strerror or e})") from None
        _check_model_bytes(path, content)
        sidecar = read_sidecar(path)
        digest = hashlib.sha256(content).hexdigest()
        if sidecar.tflite_sha256 != digest:
            raise ModelError(
                path,
                f"SHA-256 {digest[:12]}... does not match its sidecar "
                f"({sidecar.tflite_sha256[:12]}...): model and metadata are from different conversions",
            )
        classifier = cls(
            content,
            labels=sidecar.labels,
            threads=threads,
            runtime=runtime,
            output_is=sidecar.output_is,
            not_sure_below=sidecar.not_sure_below if not_sure_below is None else not_sure_below,
            mirror_average=sidecar.mirror_average,
            name=str(path),
        )
        if sidecar.input.dtype != classifier.input.dtype.name:
            raise ModelError(
                path,
                f"input dtype {classifier.input.dtype.name} does not match sidecar "
                f"{sidecar.input.dtype}",
            )
        classifier.sidecar = sidecar
        return classifier

    def outputs(self, batch: np.ndarray) -> np.ndarray:
        """The model's output for a batch of model input, dequantized: probabilities or logits
        (see ``output_is``). Comparisons between runtimes are made on these.

        Args:
            batch: uint8 (N, 28, 28, 1) raw pixels from :func:`edge_runtime.preprocess.model_input`,
                of any length (classified :data:`MAX_BATCH` at a time).

        Returns:
            float32 (N, 10), dequantized with the output tensor's scale and zero point.
        """
        if len(batch) <= MAX_BATCH:
            return self._invoke(batch)
        # Chunks keep the resized input tensor (and its arena) small for a whole test set.
        chunks = [self._invoke(batch[i : i + MAX_BATCH]) for i in range(0, len(batch), MAX_BATCH)]
        return np.concatenate(chunks)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of model input, of any length: the answers.

        Args:
            batch: uint8 (N, 28, 28, 1) raw pixels from :func:`edge_runtime.preprocess.model_input`.

        Returns:
            float32 (N, 10) probabilities: the model's own softmax, or a softmax of its logits;
            with :attr:`mirror_average`, their average over each image and its mirror image.
        """
        return self.outputs_and_answers(batch)[1]

    def outputs_and_answers(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`outputs` (one invoke per image) and :meth:`probabilities` (the answers) of
        one batch, for the invokes of the answers alone: runtimes are compared on both."""
        if not self.mirror_average:
            outputs = self.outputs(batch)
            return outputs, self._probabilities(outputs)
        both = self.outputs(np.concatenate([batch, mirrored(batch)]))
        return both[: len(batch)], mirror_mean(self._probabilities(both))

    def _probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return softmax(outputs) if self.output_is == "logits" else outputs

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if len(batch) != self._batch:
            self._interpreter.resize_tensor_input(self.input.index, [len(batch), *INPUT_SHAPE])
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        q = quantize(batch, self.input.dtype, self.input.scale, self.input.zero_point)
        self._interpreter.set_tensor(self.input.index, q)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self.output.index)
        return dequantize(raw, self.output.scale, self.output.zero_point)

    def arena_bytes(self) -> int | None:
        """The tensor arena the model uses, on runtimes that report it (TFLM), else None.

        Call after a classification; see :meth:`edge_runtime.micro.Interpreter.arena_bytes`.
        """
        measure = getattr(self._interpreter, "arena_bytes", None)
        return measure() if measure else None

    def invoke_only(self) -> None:
        """Run the interpreter on whatever input is set (for benchmarks that time invoke alone)."""
        self._interpreter.invoke()

    def predict_classes(self, batch: np.ndarray) -> np.ndarray:
        """Argmax class ids for a batch of model input of any length."""
        return np.argmax(self.probabilities(batch), axis=1)

    def prediction(self, probs: np.ndarray, top_k: int = 1) -> Prediction:
        """Turn one row of probabilities into a :class:`Prediction` with the ``top_k`` best
        ("not sure" below :attr:`not_sure_below`)."""
        order = np.argsort(probs)[::-1][: max(1, top_k)]
        top = [(self.labels[i], int(i), float(probs[i])) for i in order]
        label, class_id, score = top[0]
        sure = self.not_sure_below is None or score >= self.not_sure_below
        return Prediction(label, class_id, score, top, sure)

    def classify(self, image: Any, *, top_k: int = 1) -> Prediction:
        """Classify one image.

        Args:
            image: A Pillow image of any mode, or a uint8 array (H, W) or (H, W, 3) in **RGB**
                order (convert OpenCV's BGR first). It goes through
                :func:`edge_runtime.preprocess.model_input`.
            top_k: How many classes to list in ``Prediction.top_k``.
        """
        return self.prediction(self.probabilities(model_input([image]))[0], top_k)

"""The sidecar: the metadata that travels with every model, as one type.

``model_int8.tflite`` comes with ``model_int8.json``. ``fmnist-convert`` writes it
(:meth:`Sidecar.to_json`); the runtime, the server, the benchmark and the report read it
(:func:`read_sidecar`, :meth:`Sidecar.from_json`), which is where it is checked: a model without
its sidecar, or with a sidecar that is not one, is refused before anything runs. A field is
added here once and is then written and read everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_runtime.compare import RuntimePair
from edge_runtime.json_input import JsonInputError, parse_json, wrong_field

SIDECAR_FORMAT = "fmnist-tflite/1"
OUTPUT_KINDS = ("probabilities", "logits")
"""What a model's output holds: its own softmax, or logits (the runtime applies the softmax)."""


class ModelError(ValueError):
    """A model file that cannot be used. ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    """``model_int8.tflite`` → ``model_int8.json``."""
    return Path(model_path).with_suffix(".json")


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as the converter found it.

    Attributes:
        shape: Its shape, batch first (``[1, 28, 28, 1]``).
        dtype: Its numpy dtype name (``int8``, ``float32``...).
        scale: Its quantization scale; 0 for a float tensor.
        zero_point: Its quantization zero point.
    """

    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorInfo:
        return cls(
            shape=tuple(int(d) for d in data["shape"]),
            dtype=str(data["dtype"]),
            scale=float(data.get("scale", 0.0)),
            zero_point=int(data.get("zero_point", 0)),
        )


@dataclass(frozen=True, kw_only=True)
class Sidecar:
    """Everything known about one converted model.

    Only the first six fields are needed to run a model; the rest record how it was made and
    checked, and older or hand-made sidecars may lack them.

    Attributes:
        labels: Class names, by output index.
        quantization: The conversion mode (a name in :data:`edge_runtime.vocab.MODES`).
        tflite_sha256: SHA-256 of the .tflite file (hex): the model and its sidecar must match.
        input: The input tensor.
        output: The output tensor.
        output_is: One of :data:`OUTPUT_KINDS`.
        source_sha256: SHA-256 of the .keras file it was converted from.
        source_model: That file's path, as given to the converter.
        representative: How the calibration set was drawn (calibrated modes), else None.
        versions: Package versions at conversion (:func:`edge_runtime.provenance.package_versions`).
        min_runtime_version: The converter's ``min_runtime_version`` metadata.
        runtimes: Runtime name → whether it loads the model.
        runtime_errors: Runtime name → why it does not.
        cross_runtime: Each pair of runtimes that loads it, on the test set.
        microcontroller: ``{"flash_bytes", "arena_bytes"}`` measured by TFLite Micro.
        route: The int8 route's record (:mod:`converter.route`), for that mode only.
        size_bytes: The .tflite's size.
        size_vs_float32: ``size_bytes`` over the float32 model's (when converted in one run).
        test_accuracy: Accuracy on the Fashion-MNIST test set (0–1).
        float_test_accuracy: The Keras model's, on the same images.
        accuracy_drop_pp: ``float_test_accuracy - test_accuracy``, in percentage points.
        agreement_with_float: Share of test images with the Keras model's answer.
        per_class_delta_pp: Per class, accuracy change against the Keras model (pp).
        not_sure_below: The calibrated threshold: a best probability below it answers "not
            sure" (None: never).
        mirror_average: The model answers with the mean of an image's and its mirror image's
            probabilities (it was trained for it, with mirrored images).
        known_images: This model's accuracy on the known images the runtime carries
            (:mod:`edge_runtime.known`): ``{"count", "sha256", "accuracy"}``; a model that is
            swapped in must score within a band of it.
        photos: Its scores on the real-photo validation set (:mod:`edge_runtime.photos`).
        targets: The mode's targets as checked at conversion (``Target.check`` records).
    """

    labels: tuple[str, ...]
    quantization: str
    tflite_sha256: str
    input: TensorInfo
    output: TensorInfo
    output_is: str = "probabilities"
    source_sha256: str | None = None
    source_model: str | None = None
    representative: dict[str, Any] | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    min_runtime_version: str | None = None
    runtimes: dict[str, bool] = field(default_factory=dict)
    runtime_errors: dict[str, str] = field(default_factory=dict)
    cross_runtime: tuple[RuntimePair, ...] = ()
    microcontroller: dict[str, int] | None = None
    route: dict[str, Any] | None = None
    size_bytes: int | None = None
    size_vs_float32: float | None = None
    test_accuracy: float | None = None
    float_test_accuracy: float | None = None
    accuracy_drop_pp: float | None = None
    agreement_with_float: float | None = None
    per_class_delta_pp: dict[str, float] = field(default_factory=dict)
    not_sure_below: float | None = None
    mirror_average: bool = False
    known_images: dict[str, Any] | None = None
    photos: dict[str, Any] | None = None
    targets: tuple[dict[str, Any], ...] = ()

    @property
    def worst_cross_argmax(self) -> float | None:
        """The lowest argmax agreement of any pair of runtimes (None: fewer than two ran it)."""
        return min((p.argmax_agreement for p in self.cross_runtime), default=None)

    @property
    def worst_cross_steps(self) -> float | None:
        """The largest output difference of any pair, in output steps (None: float output)."""
        steps = [p.max_diff_steps for p in self.cross_runtime if p.max_diff_steps is not None]
        return max(steps, default=None)

    def measured(self, path: str) -> Any:
        """What ``path`` names: an attribute, or a dotted path into one
        (``photos.validation.strict``); None where it holds nothing."""
        first, *rest = path.split(".")
        value = getattr(self, first)
        for key in rest:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def to_json(self) -> dict[str, Any]:
        """The JSON object written beside the model."""
        data: dict[str, Any] = {"format": SIDECAR_FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "tflite_sha256":
                data["sha256"] = {"tflite": value, "source_keras": self.source_sha256}
            elif f.name == "source_sha256":
                continue
            elif isinstance(value, TensorInfo):
                data[f.name] = value.to_json()
            elif f.name == "cross_runtime":
                data[f.name] = [p.to_json() for p in value]
            elif isinstance(value, tuple):
                data[f.name] = list(value)
            else:
                data[f.name] = value
        return data

    @classmethod
    def from_json(cls, data: Any, *, name: str | os.PathLike[str] = "sidecar") -> Sidecar:
        """Check and read a sidecar's JSON object.

        Raises:
            ModelError: Not an fmnist sidecar, or lacking or malforming what a runtime needs.
        """
        if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
            raise ModelError(name, f"not an fmnist sidecar (format should be {SIDECAR_FORMAT})")
        try:
            labels, digests = data["labels"], data["sha256"]
            digest = digests["tflite"]
            tensors = {k: TensorInfo.from_json(data[k]) for k in ("input", "output")}
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(name, f"sidecar lacks or malforms {e}") from None
        if not (
            isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)
        ) or not isinstance(digest, str):
            raise ModelError(name, "sidecar labels or sha256 are malformed")
        output_is = data.get("output_is", "probabilities")
        if output_is not in OUTPUT_KINDS:
            raise ModelError(name, f"sidecar output_is must be one of {OUTPUT_KINDS}")
        read_here = {"labels", "quantization", "output_is", "cross_runtime", "targets", *tensors}
        plain = {f.name for f in fields(cls)} - read_here - {"tflite_sha256", "source_sha256"}
        given = {k: v for k, v in data.items() if k in plain}
        wrong = wrong_field(cls, given)
        if wrong is not None:
            raise ModelError(name, f"sidecar field {wrong!r} has the wrong type")
        threshold = data.get("not_sure_below")
        if threshold is not None and not 0.0 <= threshold <= 1.0:  # NaN fails too
            raise ModelError(name, "sidecar not_sure_below must be a score from 0 to 1")
        known = data.get("known_images")
        accuracy = known.get("accuracy") if known is not None else 0.0
        if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
            raise ModelError(name, "sidecar known_images lacks its accuracy")
        try:
            return cls(
                **given,
                labels=tuple(labels),
                output_is=output_is,
                tflite_sha256=digest,
                source_sha256=digests.get("source_keras"),
                cross_runtime=tuple(
                    RuntimePair.from_json(p) for p in data.get("cross_runtime") or ()
                ),
                targets=tuple(data.get("targets") or ()),
                quantization=str(data.get("quantization", "unknown")),
                **tensors,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ModelError(name, f"sidecar malforms {e}") from None


def read_sidecar(model_path: str | os.PathLike[str]) -> Sidecar:
    """Read and check the sidecar beside ``model_path``.

    Raises:
        ModelError: Missing, not JSON, or not a sidecar a runtime can use.
    """
    path = sidecar_path(model_path)
    try:
        data = parse_json(path.read_bytes())
    except FileNotFoundError:
        raise ModelError(
            model_path, f"its sidecar {path.name} is missing; copy it beside the model"
        ) from None
    except (OSError, JsonInputError) as e:
        raise ModelError(path, f"unreadable sidecar ({e})") from None
    return Sidecar.from_json(data, name=path)

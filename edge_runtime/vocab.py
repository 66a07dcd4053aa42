"""The project's vocabulary, defined once: runtimes, conversion modes, model file names, targets.

Every other module, CLI choice, sidecar key, table heading and target label derives from the
names here, so a runtime or a threshold is never spelled twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Runtime:
    """A TFLite interpreter this project can load models with.

    Attributes:
        name: The name used everywhere: CLI ``--runtime``, sidecars, benchmark rows.
        module: The module holding its ``Interpreter`` class.
        distribution: The pip distribution, for its version and for install hints.
        automatic: Whether ``--runtime auto`` may pick it (the Pi runtimes; TFLM only on request).
    """

    name: str
    module: str
    distribution: str
    automatic: bool = True


RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("ai-edge-litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
        Runtime("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
        # The microcontroller interpreter, run on this machine (x86-64 wheels only).
        Runtime("tflite-micro", "edge_runtime.micro", "tflite-micro", automatic=False),
    )
}
"""Known runtimes; automatic selection tries the ``automatic`` ones in this order."""

PI_RUNTIMES = tuple(name for name, r in RUNTIMES.items() if r.automatic)
"""The runtimes a Pi runs (the automatic ones), in that order."""

MICRO_RUNTIME = "tflite-micro"

DEFAULT_RUNTIME = "ai-edge-litert"

ARTIFACTS = Path("artifacts")
"""Where every step writes, and the edge commands look for a model, unless told otherwise."""


@dataclass(frozen=True)
class Mode:
    """A conversion mode: how the Keras model becomes a .tflite, and what the result promises.

    Each mode has one builder in :data:`converter.pipeline.BUILDERS`; adding a mode means adding
    it here and writing that builder.

    Attributes:
        name: The name used everywhere: ``--quantize``, file names, sidecars, table rows.
        calibrated: Whether its activations are quantized, so it needs a representative
            (calibration) set.
        io_dtype: Its input and output dtype as converted by default (numpy name).
        output_is: ``probabilities`` (the model ends in its softmax) or ``logits`` (the runtime
            applies the softmax).
        float_tolerance: How far the float outputs of two runtimes, or of two architectures,
            may be apart (absolute); None for a quantized output, which is compared in output
            steps against :data:`TARGETS` ``cross_steps``.
        keras_tolerance: How far its probabilities may be from the Keras model's (absolute);
            None where only the answers (argmax) are compared.
        targets: ``(target key in TARGETS, what of the Sidecar it checks)`` for each promise the
            converter checks on this mode: an attribute, or a dotted path into one
            (``photos.validation.strict``).
    """

    name: str
    calibrated: bool
    io_dtype: str
    output_is: str = "probabilities"
    float_tolerance: float | None = None
    keras_tolerance: float | None = None
    targets: tuple[tuple[str, str], ...] = ()

    @property
    def file(self) -> str:
        """The file name of its model: ``int8`` → ``model_int8.tflite``."""
        return model_file(self.name)

    @property
    def target_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.targets)


HYBRID_MODE = "dynamic"
"""Dynamic-range quantization: int8 weights, float activations quantized on the fly."""
ROUTE_MODE = "int8"
"""The int8 model the Pi runs: label-smoothed training, an exact rewrite, quantization-aware
fine-tuning and a chosen logit grid (:mod:`converter.route`)."""
PTQ_MODE = "int8-ptq"
"""Plain post-training int8 quantization of the Keras model, kept to compare against."""

MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("float32", False, "float32", float_tolerance=1e-4, keras_tolerance=1e-5),
        Mode(
            "float16",
            False,
            "float32",
            float_tolerance=1e-4,
            keras_tolerance=5e-3,
            targets=(("float16_drop_pp", "accuracy_drop_pp"),),
        ),
        # Its hybrid kernels quantize activations on the fly, each runtime and architecture
        # with its own rounding: its float outputs differ by more than float32's.
        Mode(HYBRID_MODE, False, "float32", float_tolerance=0.01),
        Mode(PTQ_MODE, True, "int8"),
        Mode(
            ROUTE_MODE,
            True,
            "int8",
            output_is="logits",
            targets=(
                ("int8_drop_pp", "accuracy_drop_pp"),
                ("int8_agreement", "agreement_with_float"),
                ("int8_size_ratio", "size_vs_float32"),
                ("cross_argmax", "worst_cross_argmax"),
                ("cross_steps", "worst_cross_steps"),
                ("photo_int8_agreement", "photos.agreement_with_float"),
                ("photo_strict", "photos.validation.strict"),
                ("photo_family", "photos.validation.family"),
                ("photo_worst_folder", "photos.worst_folder"),
                ("photo_not_sure_mapped", "photos.validation.not_sure_mapped"),
                ("photo_not_sure_unmapped", "photos.validation.not_sure_unmapped"),
            ),
        ),
        Mode("int16x8", True, "int16", keras_tolerance=2e-2),
    )
}
"""Conversion modes, in the order tables list them."""


def model_file(mode: str) -> str:
    """The file name of a converted model: ``int8`` → ``model_int8.tflite``."""
    return f"model_{mode}.tflite"


def mode_of_file(path: str | os.PathLike[str]) -> Mode | None:
    """The mode whose model file ``path`` is named after, or None."""
    return next((m for m in MODES.values() if Path(path).name == m.file), None)


def model_files(folder: str | os.PathLike[str]) -> list[tuple[Mode, Path]]:
    """The converted models present in ``folder``, as ``(mode, path)`` in :data:`MODES` order."""
    candidates = ((mode, Path(folder) / mode.file) for mode in MODES.values())
    return [(mode, path) for mode, path in candidates if path.is_file()]


NOT_SURE = "not sure"
"""The answer when the best class's probability is below the model's threshold."""


@dataclass(frozen=True)
class PhotoFolder:
    """A folder of labelled photos, and which answers are right for the photos in it.

    The folders of the real-photo collection (``data/real-photos/classes.json``), plus one per
    class no folder covers and ``none`` for "none of these": the layout the trainer reads and
    the server's labelled captures are filed in.

    Attributes:
        name: The folder name.
        strict: Class ids that count as right; empty for garments of no class (skirts, hats),
            for which "not sure" is the honest answer.
        family: The coarse kind (``top``, ``trouser``, ``dress``, ``footwear``, ``bag``), or None.
    """

    name: str
    strict: tuple[int, ...]
    family: str | None


FAMILY_OF_CLASS = ("top", "trouser", "top", "dress", "top", "footwear", "top", "footwear", "bag",
                   "footwear")  # fmt: skip
"""The coarse kind of each class id (Fashion-MNIST order)."""

PHOTO_FOLDERS: dict[str, PhotoFolder] = {
    f.name: f
    for f in (
        PhotoFolder("t-shirt", (0,), "top"),
        PhotoFolder("shirt", (6,), "top"),
        PhotoFolder("longsleeve", (2, 6), "top"),  # sweaters and long-sleeved shirts
        PhotoFolder("pants", (1,), "trouser"),
        PhotoFolder("dress", (3,), "dress"),
        PhotoFolder("outwear", (4,), "top"),
        PhotoFolder("shoes", (5, 7, 9), "footwear"),  # pairs from above: any footwear
        PhotoFolder("skirt", (), None),
        PhotoFolder("shorts", (), None),
        PhotoFolder("hat", (), None),
        PhotoFolder("bag", (8,), "bag"),  # no folder of the collection has bags
        PhotoFolder("none", (), None),  # labelled "none of these" on the device
    )
}
"""Every folder of labelled photos this project reads; the first ten are the collection's."""


def label_folder(label: str) -> PhotoFolder:
    """Where a photo labelled with a class name (or ``none``) is filed: the folder whose right
    answers are that class alone, else the one that includes it (``Sandal`` → ``shoes``).

    Raises:
        KeyError: Not a class name of the model, nor ``none``.
    """
    from edge_runtime import CLASS_NAMES

    if label == "none":
        return PHOTO_FOLDERS["none"]
    class_id = CLASS_NAMES.index(label) if label in CLASS_NAMES else None
    if class_id is None:
        raise KeyError(label)
    holding = [f for f in PHOTO_FOLDERS.values() if class_id in f.strict]
    return min(holding, key=lambda f: len(f.strict))


@dataclass(frozen=True)
class Target:
    """A number the project promises, with its threshold, unit and direction.

    Attributes:
        what: What is measured, as a reader sees it ("int8 agreement with float").
        limit: The threshold, in the unit the measured value is given in.
        at_most: True when the measured value must be ≤ ``limit``, False for ≥.
        unit: How values print: ``pp`` (percentage points), ``%`` (a 0–1 fraction shown as a
            percentage), ``x`` (a ratio), ``s``, ``ms``, ``FPS``, ``/s``, ``errors`` or
            ``steps`` (int8 quantization steps).
    """

    what: str
    limit: float
    at_most: bool
    unit: str

    def format(self, value: float) -> str:
        """``value`` in this target's unit, e.g. ``97.63%``, ``+0.31 pp``, ``0.263×``, ``114×``."""
        if self.unit == "%":
            return f"{value:.2%}"
        if self.unit == "pp":
            return f"{value:+.2f} pp"
        if self.unit == "x":
            # Three decimals below 10, so that a ratio just over its limit (1.001×) does not
            # print as the limit itself.
            return f"{value:.3f}".rstrip("0").rstrip(".") + "×" if value < 10 else f"{value:.0f}×"
        if self.unit in ("FPS", "/s", "errors", "steps"):
            return f"{value:,.0f} {self.unit}"
        return f"{value:.2f} {self.unit}"

    def label(self, context: str | None = None) -> str:
        """The target as text, derived from the threshold.

        Args:
            context: Which configuration it applies to, shown in brackets after ``what``.

        Returns:
            For example ``int8 agreement with float ≥ 98.50%``.
        """
        what = f"{self.what} ({context})" if context else self.what
        return f"{what} {'≤' if self.at_most else '≥'} {self.format(self.limit).lstrip('+')}"

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the threshold."""
        return value <= self.limit if self.at_most else value >= self.limit

    def check(self, value: float, *, context: str | None = None) -> dict[str, object]:
        """A JSON-ready record ``{"target", "measured", "met"}`` for a measured ``value``."""
        return {
            "target": self.label(context),
            "measured": self.format(value),
            "met": self.met(value),
        }


def check_line(check: dict[str, object]) -> str:
    """One line of a command's target summary: ``met    <target>: <measured>``."""
    return f"{'met   ' if check['met'] else 'MISSED'} {check['target']}: {check['measured']}"


TARGETS: dict[str, Target] = {
    # Conversion (checked by fmnist-convert on the full test set, recorded in each sidecar).
    "float16_drop_pp": Target("float16 accuracy drop vs float", 0.05, True, "pp"),
    "int8_drop_pp": Target("int8 accuracy drop vs float", 0.05, True, "pp"),
    "int8_agreement": Target("int8 agreement with float", 0.995, False, "%"),
    "int8_size_ratio": Target("int8 size vs float32", 0.28, True, "x"),
    "cross_argmax": Target("int8 argmax agreement between runtimes", 0.999, False, "%"),
    "cross_steps": Target("int8 output difference between runtimes", 2, True, "steps"),
    # Real photos (the vendored validation split; the int8 model as shipped, as classify runs it).
    "photo_strict": Target("real photos, strict", 0.80, False, "%"),
    "photo_family": Target("real photos, family", 0.95, False, "%"),
    "photo_worst_folder": Target("real photos, worst folder (strict)", 0.60, False, "%"),
    "photo_int8_agreement": Target("int8 agreement with float on real photos", 0.99, False, "%"),
    "photo_not_sure_mapped": Target("real photos of a class answered 'not sure'", 0.10, True, "%"),
    "photo_not_sure_unmapped": Target(
        "real photos of no class (skirt, shorts, hat) answered 'not sure'", 0.50, False, "%"
    ),
    "camera_majority": Target(
        "camera clip of validation photos, 640x480, garments whose majority answer is right",
        0.75,
        False,
        "%",
    ),
    # Benchmarks (fmnist-bench, ratios measured in one run).
    "int8_speedup": Target("int8 single image speed-up vs Keras eager", 50.0, False, "x"),
    "cold_start_s": Target("cold start (fmnist-edge classify one.png)", 0.5, True, "s"),
    "webcam_fps": Target("webcam pipeline, 640x480, headless", 100.0, False, "FPS"),
    "photo_ms": Target("one 400x534 photo, JPEG decode to answer, 1 core, p50", 5.0, True, "ms"),
    "training_time_ratio": Target("training wall time vs the seed recipe", 1.0, True, "x"),
    "training_accuracy": Target("training test accuracy", 0.915, False, "%"),
    # Serving (fmnist-bench --serve: wrk at 16 connections on the same machine).
    "serve_rps": Target("serve, 28x28 PNG, requests/s", 2000.0, False, "/s"),
    "serve_p99_ms": Target("serve, 28x28 PNG, p99 latency", 20.0, True, "ms"),
    "serve_errors": Target("serve, errors under load", 0, True, "errors"),
    "stream_fps": Target("MJPEG stream at 640x480, as received", 25.0, False, "FPS"),
}

"""``fmnist-convert``'s one library call, :func:`convert_models`, as named steps.

For each mode: :func:`convert_mode` in memory (post-training quantization, or for ``int8`` the
route of :mod:`converter.route`) → :func:`converter.route.runtime_outputs`, the test set on every
runtime in a worker each → :func:`validate` → :func:`build_sidecar` → :func:`write_model`.
Nothing is written for a mode that fails, and the model is written before its sidecar: a model
whose sidecar is missing or stale is refused by the runtime, so a crash between the two writes
never leaves a loadable-but-wrong pair. With ``debug``, :mod:`converter.layer_error` then shows
where each int8 model's error sits.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter import layer_error
from converter.convert import (
    POST_TRAINING,
    ConvertError,
    c_array,
    convert_bytes,
    load_keras,
    min_runtime_version,
    representative_images,
    validate,
)
from converter.exact import build_rewritten, fold_batchnorm
from converter.photos import PhotoReference, calibration_photos, load_photos, photo_record
from converter.route import quantize_int8, runtime_outputs
from edge_runtime import CLASS_NAMES, known
from edge_runtime.atomic import write_bytes, write_text
from edge_runtime.classifier import Classifier
from edge_runtime.compare import pairwise
from edge_runtime.preprocess import model_input
from edge_runtime.provenance import package_versions
from edge_runtime.sidecar import Sidecar, sidecar_path
from edge_runtime.vocab import (
    ARTIFACTS,
    DEFAULT_RUNTIME,
    MICRO_RUNTIME,
    MODES,
    PTQ_MODE,
    ROUTE_MODE,
    TARGETS,
    Mode,
)
from edge_runtime.worker import Report
from trainer.model import answers as keras_answers

if TYPE_CHECKING:
    import keras

    from trainer.data import Dataset

DEBUG_IMAGES = 500
"""Test images the per-layer error report runs on (image by image, every tensor kept)."""


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """Options of ``fmnist-convert``.

    Attributes:
        model: The trained .keras model.
        modes: Modes from :data:`edge_runtime.vocab.MODES`, converted in this order.
        out_dir: Where the .tflite, .json (and .cc/.h) files go.
        samples: Representative training images for calibration (stratified by class).
        io_type: Input/output dtype of the ``int8-ptq`` model (``int8`` has int8 I/O).
        target_runtime: A mode that does not load on this runtime is an error.
        data_dir: Fashion-MNIST folder (None: the usual lookup).
        c_array: Also write ``model_<mode>.cc/.h`` for TFLite Micro.
        debug: Also write the per-layer error report of the int8 models,
            ``int8_debug.json/.png``.
        mirror_average: The models answer with the mean over an image and its mirror image
            (recorded in each sidecar); None: as the Keras model was trained, which the
            ``metrics.json`` beside it says (a model trained with flips is fit for it), and
            False when there is none.
        real_photos: Calibrate and fine-tune the int8 models on the vendored real photos too,
            and score every model on them (False: Fashion-MNIST only).
    """

    model: Path = ARTIFACTS / "model.keras"
    modes: tuple[Mode, ...] = tuple(MODES.values())
    out_dir: Path = ARTIFACTS
    samples: int = 500
    io_type: str = "int8"
    target_runtime: str = DEFAULT_RUNTIME
    data_dir: Path | None = None
    c_array: bool = False
    debug: bool = False
    mirror_average: bool | None = None
    real_photos: bool = True


@dataclass(frozen=True)
class Reference:
    """What every mode is converted from and validated against.

    Attributes:
        model: The float Keras model.
        source_sha256: SHA-256 of its .keras file, recorded in every sidecar.
        data: The dataset.
        x_test: The test set as model input (uint8 N×28×28×1).
        float_pred: The float model's answer (class) per test image.
        rep: The calibration set (model input: training images, and training photos), or None
            when no mode needs one.
        photos: The real photos (None without them).
        mirror_average: Whether answers average an image and its mirror image.
    """

    model: keras.Model
    source_sha256: str
    data: Dataset
    x_test: np.ndarray
    float_pred: np.ndarray
    rep: np.ndarray | None
    photos: PhotoReference | None
    mirror_average: bool

    def answers(self, x: np.ndarray) -> np.ndarray:
        """The float model's answers (N, 10) for model input."""
        return keras_answers(self.model, x, mirror_average=self.mirror_average)

    @property
    def images(self) -> np.ndarray:
        """What every model runs on: the test set, then the photos."""
        if self.photos is None:
            return self.x_test
        return np.concatenate([self.x_test, self.photos.images])


@dataclass(frozen=True)
class Built:
    """A model made in memory: its bytes, and for the int8 route the record of how."""

    content: bytes
    route: dict[str, Any] | None = None


def _post_training(ref: Reference, mode: Mode, options: ConvertOptions) -> Built:
    return Built(convert_bytes(ref.model, mode, rep=ref.rep, io_type=options.io_type))


def _route(ref: Reference, mode: Mode, options: ConvertOptions) -> Built:
    content, route = quantize_int8(ref, data_dir=options.data_dir)
    return Built(content, route)


BUILDERS: dict[str, Callable[[Reference, Mode, ConvertOptions], Built]] = {
    **dict.fromkeys(POST_TRAINING, _post_training),
    ROUTE_MODE: _route,
}
"""How each mode of :data:`edge_runtime.vocab.MODES` is made, by name."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvertError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ConvertError(f"{out_dir}: output folder is not writable")


def trained_for_mirror(model: Path) -> bool:
    """Whether the model's training says it answers with the mirror average
    (``metrics.json`` beside it, as ``fmnist-train fit`` writes it)."""
    metrics = model.with_name("metrics.json")
    try:
        return bool(json.loads(metrics.read_text()).get("mirror_average", False))
    except (OSError, ValueError):
        return False


def prepare(options: ConvertOptions) -> Reference:
    """Load the model and the data; predict the test set with the float model.

    Raises:
        ConvertError, DataError: One line each.
    """
    from trainer.data import load_data

    _check_out_dir(options.out_dir)
    model = load_keras(options.model)
    data = load_data(options.data_dir)
    x_test = model_input(data.x_test)
    mirror = options.mirror_average
    if mirror is None:
        mirror = trained_for_mirror(options.model)
    _log(f"Evaluating the float Keras model on {len(x_test):,} test images")
    probs = keras_answers(model, x_test, mirror_average=mirror)
    photos = None
    if options.real_photos:
        _log("Reading the real photos (training, held-out and validation)")
        photos = load_photos(lambda x: keras_answers(model, x, mirror_average=mirror))
    rep = None
    if any(m.calibrated for m in options.modes):
        rep = representative_images(data.x_train, data.y_train, options.samples)
        if photos is not None:
            rep = np.concatenate([rep, calibration_photos(photos)])
    return Reference(
        model=model,
        source_sha256=hashlib.sha256(options.model.read_bytes()).hexdigest(),
        data=data,
        x_test=x_test,
        float_pred=np.argmax(probs, axis=1),
        rep=rep,
        photos=photos,
        mirror_average=mirror,
    )


def convert_mode(ref: Reference, mode: Mode, *, options: ConvertOptions) -> Built:
    """One model in memory, by its mode's builder.

    Raises:
        ConvertError: The mode has no builder.
    """
    builder = BUILDERS.get(mode.name)
    if builder is None:
        raise ConvertError(f"no builder for mode {mode.name!r}; modes: {', '.join(BUILDERS)}")
    return builder(ref, mode, options)


def target_checks(mode: Mode, sidecar: Sidecar) -> tuple[dict[str, object], ...]:
    """The mode's targets, checked on its sidecar (those it has a measurement for)."""
    return tuple(
        TARGETS[key].check(value)
        for key, path in mode.targets
        if (value := sidecar.measured(path)) is not None
    )


def build_sidecar(
    mode: Mode,
    built: Built,
    *,
    ref: Reference,
    validation: dict[str, Any],
    reports: dict[str, Report],
    outputs: dict[str, np.ndarray],
    answers: dict[str, np.ndarray],
    photos: dict[str, Any] | None,
    options: ConvertOptions,
    float32_size: int | None,
) -> Sidecar:
    """The metadata that travels with a model: labels, quantization, checks and provenance.

    ``outputs`` and ``answers`` are each runtime's raw outputs and answers on the test set.
    """
    content = built.content
    micro = reports.get(MICRO_RUNTIME)
    arena = micro.arena_bytes if micro is not None else None
    sidecar = Sidecar(
        labels=CLASS_NAMES,
        quantization=mode.name,
        output_is=mode.output_is,
        tflite_sha256=hashlib.sha256(content).hexdigest(),
        source_sha256=ref.source_sha256,
        source_model=str(options.model),
        representative=(
            {
                "samples": len(ref.rep),
                "source": (
                    f"{options.samples} training images"
                    + (
                        f" and {len(ref.rep) - options.samples} training photos"
                        if ref.photos
                        else ""
                    )
                ),
                "drawn": "stratified by class (photos: by folder), seed 0",
                "preprocessing": "edge_runtime.preprocess.model_input",
            }
            if mode.calibrated and ref.rep is not None
            else None
        ),
        versions=package_versions(),
        min_runtime_version=min_runtime_version(content),
        runtimes={name: report.ok for name, report in reports.items()},
        runtime_errors={n: r.error for n, r in reports.items() if not r.ok and r.error},
        cross_runtime=tuple(pairwise(outputs, scale=validation["output"].scale, answers=answers)),
        microcontroller={"flash_bytes": len(content), "arena_bytes": arena} if arena else None,
        route=built.route,
        size_bytes=len(content),
        size_vs_float32=round(len(content) / float32_size, 4) if float32_size else None,
        known_images=known.record(
            Classifier(content, output_is=mode.output_is, mirror_average=ref.mirror_average)
        ),
        mirror_average=ref.mirror_average,
        not_sure_below=photos["not_sure_below"] if photos else None,
        photos=photos,
        **validation,
    )
    return replace(sidecar, targets=target_checks(mode, sidecar))


def write_model(out_dir: Path, content: bytes, sidecar: Sidecar, *, with_c_array: bool) -> Path:
    """Write the model, then its sidecar (then the C array), each atomically.

    Returns:
        The .tflite path.
    """
    path = out_dir / MODES[sidecar.quantization].file
    write_bytes(path, content)
    write_text(sidecar_path(path), json.dumps(sidecar.to_json(), indent=1))
    if with_c_array:
        header, source = c_array(content, header_file=path.with_suffix(".h").name)
        write_text(path.with_suffix(".h"), header)
        write_text(path.with_suffix(".cc"), source)
        _log(f"[{sidecar.quantization}] wrote {path.stem}.cc/.h ({len(content):,}-byte array)")
    return path


def _seed_activations(model: keras.Model, images: np.ndarray) -> list[np.ndarray]:
    return layer_error.seed_activations(model, images)


def _rewritten_activations(model: keras.Model, images: np.ndarray) -> list[np.ndarray]:
    import keras

    rewritten = build_rewritten(keras, fold_batchnorm(model))
    return layer_error.rewritten_activations(rewritten, images)


LAYER_REPORTS: dict[str, tuple[tuple[tuple[str, str], ...], Callable[..., list[np.ndarray]]]] = {
    PTQ_MODE: (layer_error.PTQ_LAYERS, _seed_activations),
    ROUTE_MODE: (layer_error.ROUTE_LAYERS, _rewritten_activations),
}
"""The int8 modes ``--debug`` reports on: their graph's (layer, op) points, and the float
model's values at those points."""


def debug_report(ref: Reference, models: dict[str, bytes], *, out_dir: Path) -> dict[str, Any]:
    """``int8_debug.json/.png``: the per-layer error of each model of :data:`LAYER_REPORTS`
    (before the route, PTQ, and after it), on the first :data:`DEBUG_IMAGES` test images."""
    images = ref.x_test[:DEBUG_IMAGES]
    reports = {}
    for name, content in models.items():
        layers, activations = LAYER_REPORTS[name]
        floats = activations(ref.model, images)
        reports[name] = layer_error.layer_errors(
            content, layers=layers, floats=floats, images=images
        )
    return layer_error.write_report(reports, images=len(images), out_dir=out_dir)


def convert_models(options: ConvertOptions) -> list[Sidecar]:
    """Convert, validate and write every mode in ``options.modes``.

    Returns:
        The sidecars written, in ``options.modes`` order.

    Raises:
        ConvertError, DataError, WorkerError: One line each; nothing half-written is left.
    """
    ref = prepare(options)
    float32_size = None
    written, int8_models = [], {}
    for mode in options.modes:
        start = time.perf_counter()
        _log(f"[{mode.name}] converting")
        built = convert_mode(ref, mode, options=options)
        n = len(ref.x_test)
        photos = f" and {len(ref.images) - n:,} photos" if ref.photos else ""
        _log(f"[{mode.name}] running the {n:,} test images{photos} on every runtime")
        with tempfile.TemporaryDirectory() as tmp:
            outputs, answers, reports = runtime_outputs(
                built.content,
                ref.images,
                output_is=mode.output_is,
                mirror_average=ref.mirror_average,
                work=Path(tmp),
            )
        target = reports[options.target_runtime]
        if not target.ok:
            raise ConvertError(
                f"[{mode.name}] does not load on {options.target_runtime}: {target.error}"
            )
        validation = validate(
            built.content,
            answers=answers[DEFAULT_RUNTIME][:n],
            output_is=mode.output_is,
            y_test=ref.data.y_test,
            float_pred=ref.float_pred,
        )
        on_photos = photo_record(answers[DEFAULT_RUNTIME][n:], ref.photos) if ref.photos else None
        if mode.name == "float32":
            float32_size = len(built.content)
        sidecar = build_sidecar(
            mode,
            built,
            ref=ref,
            validation=validation,
            reports=reports,
            outputs={runtime: o[:n] for runtime, o in outputs.items()},
            answers={runtime: a[:n] for runtime, a in answers.items()},
            photos=on_photos,
            options=options,
            float32_size=float32_size,
        )
        write_model(options.out_dir, built.content, sidecar, with_c_array=options.c_array)
        if mode.name in LAYER_REPORTS:
            int8_models[mode.name] = built.content
        loads = ", ".join(
            f"{n}: {'loads' if ok else 'FAILS'}" for n, ok in sidecar.runtimes.items()
        )
        scores = on_photos["validation"] if on_photos else None
        shown = (
            f"; real photos {scores['strict']:.1%} strict, {scores['family']:.1%} family"
            if scores
            else ""
        )
        _log(
            f"[{mode.name}] {len(built.content):,} bytes, accuracy {sidecar.test_accuracy:.4f} "
            f"(float {sidecar.float_test_accuracy:.4f}, drop {sidecar.accuracy_drop_pp:+.2f} pp), "
            f"agreement {sidecar.agreement_with_float:.4f}{shown}; {loads}  "
            f"[{time.perf_counter() - start:.0f} s]"
        )
        written.append(sidecar)
    if options.debug and int8_models:
        _log("per-layer error of the int8 models (int8_debug.json/.png)")
        debug_report(ref, int8_models, out_dir=options.out_dir)
    return written

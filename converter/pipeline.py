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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter import layer_error
from converter.convert import (
    ConvertError,
    c_array,
    convert_bytes,
    load_keras,
    min_runtime_version,
    representative_images,
    validate,
)
from converter.exact import build_rewritten, fold_batchnorm
from converter.route import quantize_int8, runtime_outputs
from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import write_bytes, write_text
from edge_runtime.classifier import SIDECAR_FORMAT, sidecar_path
from edge_runtime.compare import pairwise
from edge_runtime.preprocess import model_input
from edge_runtime.provenance import package_versions
from edge_runtime.vocab import (
    CALIBRATED_MODES,
    DEFAULT_RUNTIME,
    MICRO_RUNTIME,
    MODES,
    PTQ_MODE,
    ROUTE_MODE,
    TARGETS,
    model_file,
)

if TYPE_CHECKING:
    import keras

    from trainer.data import Dataset

MODE_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "float16": (("float16_drop_pp", "accuracy_drop_pp"),),
    ROUTE_MODE: (
        ("int8_drop_pp", "accuracy_drop_pp"),
        ("int8_agreement", "agreement_with_float"),
        ("int8_size_ratio", "size_vs_float32"),
    ),
}
"""Per mode: (target in :data:`edge_runtime.vocab.TARGETS`, the sidecar field it checks)."""

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
    """

    model: Path = Path("artifacts/model.keras")
    modes: tuple[str, ...] = MODES
    out_dir: Path = Path("artifacts")
    samples: int = 500
    io_type: str = "int8"
    target_runtime: str = DEFAULT_RUNTIME
    data_dir: Path | None = None
    c_array: bool = False
    debug: bool = False


@dataclass(frozen=True)
class Reference:
    """What every mode is converted from and validated against.

    Attributes:
        model: The float Keras model.
        source_sha256: SHA-256 of its .keras file, recorded in every sidecar.
        data: The dataset.
        x_test: The test set as model input (uint8 N×28×28×1).
        float_pred: The float model's predicted class per test image.
        rep: The calibration set (model input), or None when no mode needs one.
    """

    model: keras.Model
    source_sha256: str
    data: Dataset
    x_test: np.ndarray
    float_pred: np.ndarray
    rep: np.ndarray | None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvertError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ConvertError(f"{out_dir}: output folder is not writable")


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
    _log(f"Evaluating the float Keras model on {len(x_test):,} test images")
    probs = model.predict(x_test.astype(np.float32), batch_size=1000, verbose=0)
    needs_rep = any(m in CALIBRATED_MODES for m in options.modes)
    return Reference(
        model=model,
        source_sha256=hashlib.sha256(options.model.read_bytes()).hexdigest(),
        data=data,
        x_test=x_test,
        float_pred=np.argmax(probs, axis=1),
        rep=representative_images(data.x_train, data.y_train, options.samples)
        if needs_rep
        else None,
    )


def convert_mode(
    ref: Reference, mode: str, *, options: ConvertOptions
) -> tuple[bytes, str, dict[str, Any] | None]:
    """One model in memory.

    Returns:
        ``(content, output_is, route)``: the .tflite, what its output holds, and for ``int8``
        the record of its route (else None).
    """
    if mode == ROUTE_MODE:
        content, route = quantize_int8(
            ref.model,
            data=ref.data,
            calibration=ref.rep,
            x_test=ref.x_test,
            data_dir=options.data_dir,
        )
        return content, "logits", route
    return (
        convert_bytes(ref.model, mode, rep=ref.rep, io_type=options.io_type),
        "probabilities",
        None,
    )


def target_checks(mode: str, sidecar: dict[str, Any]) -> list[dict[str, object]]:
    """The targets that apply to ``mode``, checked on its sidecar (the route's also on the
    agreement between runtimes)."""
    checks = [
        TARGETS[key].check(sidecar[field])
        for key, field in MODE_TARGETS.get(mode, ())
        if sidecar.get(field) is not None
    ]
    pairs = sidecar.get("cross_runtime") or []
    if mode == ROUTE_MODE and len(pairs) > 0:
        checks.append(TARGETS["cross_argmax"].check(min(p["argmax_agreement"] for p in pairs)))
        checks.append(TARGETS["cross_steps"].check(max(p["max_diff_steps"] for p in pairs)))
    return checks


def build_sidecar(
    mode: str,
    content: bytes,
    *,
    ref: Reference,
    output_is: str,
    validation: dict[str, Any],
    reports: dict[str, dict],
    cross: list[dict[str, Any]],
    route: dict[str, Any] | None,
    options: ConvertOptions,
    float32_size: int | None,
) -> dict[str, Any]:
    """The metadata that travels with a model: labels, quantization, checks and provenance."""
    arena = reports.get(MICRO_RUNTIME, {}).get("arena_bytes")
    sidecar = {
        "format": SIDECAR_FORMAT,
        "labels": list(CLASS_NAMES),
        "quantization": mode,
        "output_is": output_is,
        "input": validation["input"],
        "output": validation["output"],
        "representative": (
            {
                "samples": len(ref.rep),
                "source": "training set",
                "drawn": "stratified by class, seed 0",
                "preprocessing": "edge_runtime.preprocess.model_input",
            }
            if mode in CALIBRATED_MODES and ref.rep is not None
            else None
        ),
        "sha256": {
            "tflite": hashlib.sha256(content).hexdigest(),
            "source_keras": ref.source_sha256,
        },
        "source_model": str(options.model),
        "versions": package_versions(),
        "min_runtime_version": min_runtime_version(content),
        "runtimes": {name: report["ok"] for name, report in reports.items()},
        "runtime_errors": {n: r["error"] for n, r in reports.items() if not r["ok"]},
        "cross_runtime": cross,
        "microcontroller": {"flash_bytes": len(content), "arena_bytes": arena} if arena else None,
        "route": route,
        "size_bytes": len(content),
        "size_vs_float32": round(len(content) / float32_size, 4) if float32_size else None,
        **{k: v for k, v in validation.items() if k not in ("input", "output")},
    }
    sidecar["targets"] = target_checks(mode, sidecar)
    return sidecar


def write_model(
    out_dir: Path, content: bytes, sidecar: dict[str, Any], *, with_c_array: bool
) -> Path:
    """Write the model, then its sidecar (then the C array), each atomically.

    Returns:
        The .tflite path.
    """
    mode = sidecar["quantization"]
    path = out_dir / model_file(mode)
    write_bytes(path, content)
    write_text(sidecar_path(path), json.dumps(sidecar, indent=1))
    if with_c_array:
        header, source = c_array(content, header_file=path.with_suffix(".h").name)
        write_text(path.with_suffix(".h"), header)
        write_text(path.with_suffix(".cc"), source)
        _log(f"[{mode}] wrote {path.stem}.cc/.h ({len(content):,}-byte array)")
    return path


def debug_report(ref: Reference, models: dict[str, bytes], *, out_dir: Path) -> dict[str, Any]:
    """``int8_debug.json/.png``: the per-layer error of each int8 model, before (PTQ) and after
    (the route), on the first :data:`DEBUG_IMAGES` test images."""
    import keras

    images = ref.x_test[:DEBUG_IMAGES]
    reports = {}
    if PTQ_MODE in models:
        floats = layer_error.seed_activations(ref.model, images)
        reports[PTQ_MODE] = layer_error.layer_errors(
            models[PTQ_MODE], layers=layer_error.PTQ_LAYERS, floats=floats, images=images
        )
    if ROUTE_MODE in models:
        rewritten = build_rewritten(keras, fold_batchnorm(ref.model))
        floats = layer_error.rewritten_activations(rewritten, images)
        reports[ROUTE_MODE] = layer_error.layer_errors(
            models[ROUTE_MODE], layers=layer_error.ROUTE_LAYERS, floats=floats, images=images
        )
    return layer_error.write_report(reports, images=len(images), out_dir=out_dir)


def convert_models(options: ConvertOptions) -> list[dict[str, Any]]:
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
        _log(f"[{mode}] converting")
        content, output_is, route = convert_mode(ref, mode, options=options)
        _log(f"[{mode}] running the {len(ref.x_test):,} test images on every runtime")
        with tempfile.TemporaryDirectory() as tmp:
            outputs, reports = runtime_outputs(
                content, ref.x_test, output_is=output_is, work=Path(tmp)
            )
        if not reports[options.target_runtime]["ok"]:
            raise ConvertError(
                f"[{mode}] does not load on {options.target_runtime}: "
                f"{reports[options.target_runtime]['error']}"
            )
        validation = validate(
            content,
            outputs=outputs[DEFAULT_RUNTIME],
            output_is=output_is,
            y_test=ref.data.y_test,
            float_pred=ref.float_pred,
        )
        scale = validation["output"]["scale"]
        if mode == "float32":
            float32_size = len(content)
        sidecar = build_sidecar(
            mode,
            content,
            ref=ref,
            output_is=output_is,
            validation=validation,
            reports=reports,
            cross=pairwise(outputs, scale=scale),
            route=route,
            options=options,
            float32_size=float32_size,
        )
        write_model(options.out_dir, content, sidecar, with_c_array=options.c_array)
        if mode in (PTQ_MODE, ROUTE_MODE):
            int8_models[mode] = content
        loads = ", ".join(
            f"{n}: {'loads' if ok else 'FAILS'}" for n, ok in sidecar["runtimes"].items()
        )
        _log(
            f"[{mode}] {len(content):,} bytes, accuracy {validation['test_accuracy']:.4f} "
            f"(float {validation['float_test_accuracy']:.4f}, drop "
            f"{validation['accuracy_drop_pp']:+.2f} pp), agreement "
            f"{validation['agreement_with_float']:.4f}; {loads}  [{time.perf_counter() - start:.0f} s]"
        )
        written.append(sidecar)
    if options.debug and int8_models:
        _log("per-layer error of the int8 models (int8_debug.json/.png)")
        debug_report(ref, int8_models, out_dir=options.out_dir)
    return written

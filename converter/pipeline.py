"""``fmnist-convert``'s one library call, :func:`convert_models`, as named steps.

For each mode: :func:`convert_bytes` in memory → :func:`validate` on the full test set with the
edge Classifier → :func:`runtime_support` (each other runtime, in a worker process) →
:func:`build_sidecar` → :func:`write_model`. Nothing is written for a mode that fails, and the
model is written before its sidecar: a model whose sidecar is missing or stale is refused by the
runtime, so a crash between the two writes never leaves a loadable-but-wrong pair.
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

from converter.convert import (
    ConvertError,
    c_array,
    convert_bytes,
    debug_int8,
    load_keras,
    min_runtime_version,
    representative_images,
    validate,
)
from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import write_bytes, write_text
from edge_runtime.classifier import SIDECAR_FORMAT, sidecar_path
from edge_runtime.preprocess import model_input
from edge_runtime.provenance import package_versions
from edge_runtime.vocab import (
    CALIBRATED_MODES,
    DEFAULT_RUNTIME,
    MODES,
    RUNTIMES,
    TARGETS,
    model_file,
)
from edge_runtime.worker import Job, run_job

if TYPE_CHECKING:
    import keras

MODE_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "float16": (("float16_drop_pp", "accuracy_drop_pp"),),
    "int8": (
        ("int8_drop_pp", "accuracy_drop_pp"),
        ("int8_agreement", "agreement_with_float"),
        ("int8_size_ratio", "size_vs_float32"),
    ),
}
"""Per mode: (target in :data:`edge_runtime.vocab.TARGETS`, the sidecar field it checks)."""


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """Options of ``fmnist-convert``.

    Attributes:
        model: The trained .keras model.
        modes: Modes from :data:`edge_runtime.vocab.MODES`, converted in this order.
        out_dir: Where the .tflite, .json (and .cc/.h) files go.
        samples: Representative training images for calibration (stratified by class).
        io_type: Input/output dtype of the int8 model.
        target_runtime: A mode that does not load on this runtime is an error (every mode loads
            everywhere as converted here; the check stays for other TensorFlow versions).
        data_dir: Fashion-MNIST folder (None: the usual lookup).
        c_array: Also write ``model_<mode>.cc/.h`` for TFLite Micro.
        debug: With int8, also write the per-layer error report ``int8_debug.json/.png``.
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
        x_test: The test set as model input (uint8 N×28×28×1).
        y_test: Test labels.
        float_pred: The float model's predicted class per test image.
        rep: The calibration set (model input), or None when no mode needs one.
    """

    model: keras.Model
    source_sha256: str
    x_test: np.ndarray
    y_test: np.ndarray
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
        x_test=x_test,
        y_test=data.y_test,
        float_pred=np.argmax(probs, axis=1),
        rep=representative_images(data.x_train, data.y_train, options.samples)
        if needs_rep
        else None,
    )


def runtime_support(content: bytes) -> dict[str, str | None]:
    """Load ``content`` on every runtime other than the validating one, each in a worker.

    Returns:
        Runtime name → None when it loads, else the one-line error.
    """
    errors: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(content)
        for name in RUNTIMES:
            if name != DEFAULT_RUNTIME:
                report = run_job(Job(model=str(path), runtime=name), timeout=600)
                errors[name] = None if report["ok"] else report.get("error", "does not load")
    return errors


def target_checks(mode: str, sidecar: dict[str, Any]) -> list[dict[str, object]]:
    """The targets that apply to ``mode`` (see :data:`MODE_TARGETS`), checked on its sidecar."""
    return [
        TARGETS[key].check(sidecar[field])
        for key, field in MODE_TARGETS.get(mode, ())
        if sidecar.get(field) is not None
    ]


def build_sidecar(
    mode: str,
    content: bytes,
    *,
    ref: Reference,
    validation: dict[str, Any],
    load_errors: dict[str, str | None],
    options: ConvertOptions,
    float32_size: int | None,
) -> dict[str, Any]:
    """The metadata that travels with a model: labels, quantization, checks and provenance."""
    sidecar = {
        "format": SIDECAR_FORMAT,
        "labels": list(CLASS_NAMES),
        "quantization": mode,
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
        "runtimes": {DEFAULT_RUNTIME: True, **{n: e is None for n, e in load_errors.items()}},
        "runtime_errors": {n: e for n, e in load_errors.items() if e is not None},
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
        header, source = c_array(content, path.stem)
        write_text(path.with_suffix(".h"), header)
        write_text(path.with_suffix(".cc"), source)
        _log(f"[{mode}] wrote {path.stem}.cc/.h ({len(content):,}-byte array)")
    return path


def convert_models(options: ConvertOptions) -> list[dict[str, Any]]:
    """Convert, validate and write every mode in ``options.modes``.

    Returns:
        The sidecars written, in ``options.modes`` order.

    Raises:
        ConvertError, DataError: One line each; nothing half-written is left behind.
    """
    ref = prepare(options)
    float32_size = None
    written = []
    for mode in options.modes:
        start = time.perf_counter()
        _log(f"[{mode}] converting")
        content = convert_bytes(ref.model, mode, rep=ref.rep, io_type=options.io_type)
        _log(f"[{mode}] validating on {len(ref.x_test):,} test images ({DEFAULT_RUNTIME})")
        validation = validate(
            content, x_test=ref.x_test, y_test=ref.y_test, float_pred=ref.float_pred
        )
        _log(f"[{mode}] loading on {', '.join(n for n in RUNTIMES if n != DEFAULT_RUNTIME)}")
        load_errors = runtime_support(content)
        if load_errors.get(options.target_runtime):
            raise ConvertError(
                f"[{mode}] does not load on {options.target_runtime}: "
                f"{load_errors[options.target_runtime]}"
            )
        if mode == "float32":
            float32_size = len(content)
        sidecar = build_sidecar(
            mode,
            content,
            ref=ref,
            validation=validation,
            load_errors=load_errors,
            options=options,
            float32_size=float32_size,
        )
        write_model(options.out_dir, content, sidecar, with_c_array=options.c_array)
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
        if options.debug and mode == "int8":
            _log("[int8] per-layer quantization debugger")
            report = debug_int8(ref.model, ref.rep, options.out_dir)
            _log(
                f"[int8] wrote int8_debug.json/.png; largest error (in steps) at {report['worst']}"
            )
    return written

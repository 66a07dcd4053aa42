"""``fmnist-convert``'s one library call: convert, validate and write every requested mode."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from converter.convert import (
    MODES,
    ConvertError,
    c_array,
    convert_bytes,
    debug_int8,
    load_keras,
    min_runtime_version,
    probe_runtime,
    representative_images,
    tool_versions,
    validate,
)
from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import write_bytes, write_text
from edge_runtime.classifier import SIDECAR_FORMAT, sidecar_path
from edge_runtime.preprocess import model_input

DROP_LIMITS_PP = {
    "float16": 0.05,  # max accuracy drop vs float, percentage points
    "int8": 0.3,
}
INT8_AGREEMENT_TARGET = 0.985
INT8_SIZE_RATIO_TARGET = 0.28


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvertError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ConvertError(f"{out_dir}: output folder is not writable")


def convert_models(
    model_path: Path,
    modes: list[str],
    out_dir: Path,
    samples: int = 500,
    io_type: str = "int8",
    target: str = "ai-edge-litert",
    data_dir: Path | None = None,
    c_format: bool = False,
    debug: bool = False,
) -> list[dict[str, Any]]:
    """Convert ``model_path`` to each of ``modes``, validate each on the test set, write each.

    Call order per mode: convert in memory → evaluate with the edge Classifier (ai-edge-litert) →
    load on tflite-runtime 2.14 in a subprocess → write ``model_<mode>.tflite`` then its sidecar.
    Nothing is written for a mode that fails.

    Args:
        model_path: The trained .keras model.
        modes: Modes from :data:`converter.convert.MODES`.
        out_dir: Where the .tflite, .json (and .cc/.h) files go.
        samples: Representative training images for int8/int16x8 calibration (stratified).
        io_type: I/O dtype for int8 models.
        target: With ``tflite-runtime-2.14``, a mode that does not load there is an error (every
            mode loads there as converted here; the check stays for other TF versions).
        data_dir: Fashion-MNIST folder (default: the usual lookup).
        c_format: Also write ``model_<mode>.cc/.h`` for TFLite Micro.
        debug: With int8, also write the per-layer error report ``int8_debug.json/.png``.

    Returns:
        The sidecars written, in ``modes`` order.

    Raises:
        ConvertError, DataError: One line each; nothing half-written is left behind.
    """
    from trainer.data import load_data

    _check_out_dir(out_dir)
    model = load_keras(model_path)
    source_sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    data = load_data(data_dir)
    x_test = model_input(data.x_test)
    _log(f"Evaluating the float Keras model on {len(x_test):,} test images")
    float_pred = np.argmax(
        model.predict(x_test.astype(np.float32), batch_size=1000, verbose=0), axis=1
    )
    rep = None
    if any(m in ("int8", "int16x8") for m in modes):
        rep = representative_images(data.x_train, data.y_train, samples)
    versions = tool_versions()
    float32_size = None
    written = []
    for mode in modes:
        start = time.perf_counter()
        _log(f"[{mode}] converting")
        content = convert_bytes(model, mode, rep, io_type)
        _log(f"[{mode}] validating on {len(x_test):,} test images (ai-edge-litert)")
        result = validate(content, x_test, data.y_test, float_pred)
        result.pop("predictions")
        _log(f"[{mode}] checking it loads on tflite-runtime 2.14 (separate process)")
        probe, _ = probe_runtime(content, "tflite-runtime")
        if mode == "float32":
            float32_size = len(content)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "labels": list(CLASS_NAMES),
            "quantization": mode,
            "input": result.pop("input"),
            "output": result.pop("output"),
            "representative": (
                {
                    "samples": int(len(rep)),
                    "source": "training set",
                    "drawn": "stratified by class, seed 0",
                    "preprocessing": "edge_runtime.preprocess.model_input",
                }
                if mode in ("int8", "int16x8")
                else None
            ),
            "sha256": {"tflite": hashlib.sha256(content).hexdigest(), "source_keras": source_sha},
            "source_model": str(model_path),
            "versions": versions,
            "min_runtime_version": min_runtime_version(content),
            "runtimes": {
                "ai-edge-litert": True,
                "tflite-runtime-2.14": bool(probe.get("ok")),
                **({"tflite-runtime-2.14-error": probe["error"]} if not probe.get("ok") else {}),
            },
            "size_bytes": len(content),
            "size_vs_float32": round(len(content) / float32_size, 4) if float32_size else None,
            **result,
        }
        if target == "tflite-runtime-2.14" and not probe.get("ok"):
            raise ConvertError(
                f"[{mode}] does not load on tflite-runtime 2.14: {probe.get('error')}"
            )
        path = out_dir / f"model_{mode}.tflite"
        write_bytes(path, content)
        write_text(sidecar_path(path), json.dumps(sidecar, indent=1))
        if c_format:
            header, source = c_array(content, f"model_{mode}")
            write_text(out_dir / f"model_{mode}.h", header)
            write_text(out_dir / f"model_{mode}.cc", source)
            _log(f"[{mode}] wrote model_{mode}.cc/.h ({len(content):,}-byte array)")
        _log(
            f"[{mode}] {len(content):,} bytes, accuracy {result['test_accuracy']:.4f} "
            f"(float {result['float_test_accuracy']:.4f}, drop {result['accuracy_drop_pp']:+.2f} pp), "
            f"agreement {result['agreement_with_float']:.4f}, tflite-runtime 2.14: "
            f"{'loads' if probe.get('ok') else 'FAILS'}  [{time.perf_counter() - start:.0f} s]"
        )
        written.append(sidecar)
        if debug and mode == "int8":
            _log("[int8] per-layer quantization debugger")
            report = debug_int8(model, rep, out_dir)
            _log(
                f"[int8] wrote int8_debug.json/.png; largest error (in steps) at {report['worst']}"
            )
    return written


def target_checks(sidecars: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The issue's targets, each as (what, measured, met)."""
    by_mode = {s["quantization"]: s for s in sidecars}
    checks = []
    for mode, limit in DROP_LIMITS_PP.items():
        if mode in by_mode:
            drop = by_mode[mode]["accuracy_drop_pp"]
            checks.append(
                (f"{mode} accuracy within {limit} pp of float", f"{drop:+.2f} pp", drop <= limit)
            )
    if "int8" in by_mode:
        s = by_mode["int8"]
        checks.append(
            (
                f"int8 agreement with float ≥ {INT8_AGREEMENT_TARGET:.1%}",
                f"{s['agreement_with_float']:.2%}",
                s["agreement_with_float"] >= INT8_AGREEMENT_TARGET,
            )
        )
        if s.get("size_vs_float32"):
            checks.append(
                (
                    f"int8 size ≤ {INT8_SIZE_RATIO_TARGET} × float32",
                    f"{s['size_vs_float32']:.3f}×",
                    s["size_vs_float32"] <= INT8_SIZE_RATIO_TARGET,
                )
            )
    return checks


def _debug_figure(out_dir: Path) -> str:
    png = out_dir / "int8_debug.png"
    if not png.is_file():
        return ""
    data = base64.b64encode(png.read_bytes()).decode()
    return f'<h3>int8 per-layer error</h3><img src="data:image/png;base64,{data}" alt="int8 debug">'


def write_report_section(out_dir: Path) -> Path:
    """Write ``conversion.html``, the report's section comparing float and every converted model."""
    sidecars = [json.loads(p.read_text()) for p in sorted(out_dir.glob("model_*.json"))]
    sidecars.sort(
        key=lambda s: MODES.index(s["quantization"]) if s["quantization"] in MODES else 99
    )
    rows = "".join(
        f"<tr><td>{html.escape(s['quantization'])}</td><td>{s['size_bytes']:,}</td>"
        f"<td>{s['test_accuracy']:.4f}</td><td>{s['accuracy_drop_pp']:+.2f}</td>"
        f"<td>{s['agreement_with_float']:.4f}</td><td>{s['input']['dtype']}</td>"
        f"<td>{'yes' if s['runtimes']['tflite-runtime-2.14'] else 'no'}</td></tr>"
        for s in sidecars
    )
    deltas = "".join(
        f"<tr><td>{html.escape(s['quantization'])}</td>"
        + "".join(f"<td>{s['per_class_delta_pp'][n]:+.1f}</td>" for n in CLASS_NAMES)
        + "</tr>"
        for s in sidecars
    )
    checks = "".join(
        f"<li>{html.escape(w)}: {html.escape(m)} — {'met' if ok else '<b>missed</b>'}</li>"
        for w, m, ok in target_checks(sidecars)
    )
    float_acc = sidecars[0]["float_test_accuracy"] if sidecars else float("nan")
    section = f"""<h2>Quantized models</h2>
<p>Float Keras test accuracy {float_acc:.4f}. Every model below was evaluated on all 10,000 test images
through the edge runtime's Classifier (ai-edge-litert) and loaded on tflite-runtime 2.14.</p>
<table><tr><th>mode</th><th>bytes</th><th>accuracy</th><th>drop (pp)</th><th>agreement with float</th>
<th>input dtype</th><th>loads on tflite-runtime 2.14</th></tr>{rows}</table>
<ul>{checks}</ul>
{_debug_figure(out_dir)}
<h3>Per-class accuracy change vs float (pp)</h3>
<table><tr><th>mode</th>{"".join(f"<th>{html.escape(n)}</th>" for n in CLASS_NAMES)}</tr>{deltas}</table>
"""
    path = out_dir / "conversion.html"
    write_text(path, section)
    return path

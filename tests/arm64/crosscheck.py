"""Compare TFLite outputs across architectures (used by ``make test-arm64``).

    python -m tests.arm64.crosscheck dump OUT.npz        # on each architecture
    python -m tests.arm64.crosscheck compare A.npz B.npz  # exit 1 when a target is missed

``dump`` runs every model it finds (the committed fixtures on 500 test images; each converted
``artifacts/model_<mode>.tflite`` on all 10,000) with each of the Pi's runtimes, default kernels.
``compare`` requires, for every model and runtime, the targets of
:data:`edge_runtime.vocab.TARGETS` between the two architectures (argmax agreement ≥ 99.9%;
quantized outputs within 2 steps, float ones within 1e-4, 0.01 for the dynamic-range model), and
writes what it measured to
``artifacts/crosscheck_arm64.json`` when that folder exists, for ``fmnist-bench`` and the report.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

from edge_runtime.atomic import write_text
from edge_runtime.classifier import Classifier, RuntimeMissingError
from edge_runtime.compare import agreement
from edge_runtime.preprocess import model_input
from edge_runtime.vocab import HYBRID_MODE, RUNTIMES, TARGETS, model_file, model_files

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
FIXTURES = [ROOT / "tests/fixtures/tiny_int8.tflite", ROOT / "tests/fixtures/tiny_float32.tflite"]
PI_RUNTIMES = [r.name for r in RUNTIMES.values() if r.automatic]
FLOAT_TOLERANCE = 1e-4
"""Largest difference allowed between float outputs of the two architectures."""
HYBRID_TOLERANCE = 0.01
"""The same for the dynamic-range model: its hybrid kernels quantize activations on the fly,
each architecture with its own rounding (tflite-runtime: 0.0036 measured)."""
HYBRID_MODEL = model_file(HYBRID_MODE)


def models() -> list[tuple[Path, int]]:
    """(model, how many test images) to run."""
    return [(p, 500) for p in FIXTURES] + [(p, 10_000) for _, p in model_files(ARTIFACTS)]


def dump(out: Path) -> None:
    from trainer.data import load_data

    x = model_input(load_data(allow_download=False).x_test)
    arrays = {}
    for model, count in models():
        for runtime in PI_RUNTIMES:
            try:
                clf = Classifier.from_file(model, runtime=runtime)
            except RuntimeMissingError:
                continue
            key = f"{model.name}|{runtime}"
            arrays[f"{key}|outputs"] = clf.outputs(x[:count])
            arrays[f"{key}|scale"] = np.array(clf.output.scale)
            arrays[f"{key}|sha256"] = np.array(hashlib.sha256(model.read_bytes()).hexdigest())
    np.savez(out, machine=np.array(platform.machine()), **arrays)
    print(f"{out.name} ({platform.machine()}): {len(arrays) // 3} model x runtime outputs")


def compare(a_path: Path, b_path: Path) -> int:
    a, b = np.load(a_path), np.load(b_path)
    keys = sorted(k[: -len("|outputs")] for k in a.files if k.endswith("|outputs"))
    failures, records = 0, []
    for key in keys:
        if f"{key}|outputs" not in b.files:
            print(f"MISSING {key} in {b_path.name}")
            failures += 1
            continue
        scale = float(a[f"{key}|scale"])
        stats = agreement(a[f"{key}|outputs"], b[f"{key}|outputs"], scale=scale)
        model, runtime = key.split("|")
        tolerance = HYBRID_TOLERANCE if model == HYBRID_MODEL else FLOAT_TOLERANCE
        ok = TARGETS["cross_argmax"].met(stats["argmax_agreement"]) and (
            TARGETS["cross_steps"].met(stats["max_diff_steps"])
            if scale
            else stats["max_abs_diff"] <= tolerance
        )
        failures += not ok
        records.append(
            {
                "model": model,
                "sha256": str(a[f"{key}|sha256"]),
                "runtime": runtime,
                "machines": [str(a["machine"]), f"{b['machine']} (emulated)"],
                "images": len(a[f"{key}|outputs"]),
                **stats,
            }
        )
        steps = "–" if stats["max_diff_steps"] is None else f"{stats['max_diff_steps']:.0f}"
        print(
            f"{'ok  ' if ok else 'FAIL'} {key}: argmax agreement {stats['argmax_agreement']:.4f}, "
            f"max diff {stats['max_abs_diff']:.3g} ({steps} steps), "
            f"bit-identical images {stats['bit_identical']:.4f}"
        )
    if ARTIFACTS.is_dir():
        write_text(ARTIFACTS / "crosscheck_arm64.json", json.dumps(records, indent=1))
    print(f"{len(keys) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"]:
        dump(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["compare"]:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)

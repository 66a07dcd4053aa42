"""Compare TFLite outputs across architectures (used by ``make test-arm64``).

    python -m tests.arm64.crosscheck dump OUT.npz        # on each architecture
    python -m tests.arm64.crosscheck compare A.npz B.npz  # exit 1 when a target is missed

``dump`` runs every model it finds (the committed fixtures on 500 test images; each converted
``artifacts/model_<mode>.tflite`` on all 10,000) with each of the Pi's runtimes, default kernels,
and TensorFlow Lite Micro where it is installed (x86: it has no aarch64 wheel).
``compare`` requires, for every model and runtime, the targets of
:data:`edge_runtime.vocab.TARGETS` between the two architectures (argmax agreement ≥ 99.9%;
quantized outputs within 2 steps, float ones within their mode's ``float_tolerance``). For a
mode with cross-runtime targets (the shipped int8 model) it also requires them of every other
pair that involves the second architecture (its two runtimes against each other, and against
x86's other runtimes, TFLite Micro included); for the other quantized models those pairs are
measured and shown, not required.
It writes what it measured to ``artifacts/crosscheck_arm64.json`` when that folder exists, for
``fmnist-bench`` and the report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import sys
from pathlib import Path

import numpy as np

from edge_runtime import vocab
from edge_runtime.atomic import write_text
from edge_runtime.classifier import Classifier, RuntimeMissingError
from edge_runtime.compare import agreement
from edge_runtime.preprocess import model_input
from edge_runtime.sidecar import read_sidecar
from edge_runtime.vocab import MICRO_RUNTIME, MODES, PI_RUNTIMES, TARGETS, model_files

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / vocab.ARTIFACTS
FIXTURES = [ROOT / "tests/fixtures/tiny_int8.tflite", ROOT / "tests/fixtures/tiny_float32.tflite"]


def models() -> list[tuple[Path, int]]:
    """(model, how many test images) to run."""
    return [(p, 500) for p in FIXTURES] + [(p, 10_000) for _, p in model_files(ARTIFACTS)]


def dump(out: Path) -> None:
    from trainer.data import load_data

    x = model_input(load_data(allow_download=False).x_test)
    arrays = {}
    for model, count in models():
        # TFLite Micro only for quantized outputs: float ones are compared runtime to same
        # runtime across architectures, and TFLM has no aarch64 build (nor float16 kernels).
        quantized = bool(read_sidecar(model).output.scale)
        for runtime in [*PI_RUNTIMES, *([MICRO_RUNTIME] if quantized else [])]:
            try:
                clf = Classifier.from_file(model, runtime=runtime)
            except RuntimeMissingError:
                continue  # not installed on this architecture (compare notices a Pi runtime)
            key = f"{model.name}|{runtime}"
            # What a user gets (a mirror average when the sidecar asks for one): the same
            # answer is judged on the answers, steps apart on the outputs of one invoke.
            arrays[f"{key}|outputs"], arrays[f"{key}|answers"] = clf.outputs_and_answers(x[:count])
            arrays[f"{key}|scale"] = np.array(clf.output.scale)
            arrays[f"{key}|sha256"] = np.array(hashlib.sha256(model.read_bytes()).hexdigest())
            arrays[f"{key}|mode"] = np.array(read_sidecar(model).quantization)
    np.savez(out, machine=np.array(platform.machine()), **arrays)
    print(f"{out.name} ({platform.machine()}): {len(arrays) // 5} model x runtime outputs")


def _entries(npz: np.lib.npyio.NpzFile) -> dict[str, list[str]]:
    """Model file name → the runtimes it was dumped with."""
    entries: dict[str, list[str]] = {}
    for key in sorted(k for k in npz.files if k.endswith("|outputs")):
        model, runtime, _ = key.split("|")
        entries.setdefault(model, []).append(runtime)
    return entries


def _pairs(a: list[str], b: list[str], *, quantized: bool, required: bool) -> list[tuple]:
    """``((side, runtime), (side, runtime), required)`` for one model run with runtimes ``a`` on
    one side and ``b`` on the other: the same runtime on both sides, always required; then, for
    quantized outputs only, every other pair with a runtime of side ``b``, ``required`` as given.
    """
    same = [(("a", r), ("b", r), True) for r in b if r in a]
    if not quantized:
        return same  # float outputs: only the same runtime across architectures
    within_b = [(("b", r), ("b", q), required) for r, q in itertools.combinations(b, 2)]
    across = [(("a", r), ("b", q), required) for r in a for q in b if r != q]
    return same + within_b + across


def check_pairs(a_path: Path, b_path: Path) -> int:
    npz = {"a": np.load(a_path), "b": np.load(b_path)}
    machine = {"a": str(npz["a"]["machine"]), "b": f"{npz['b']['machine']}, emulated"}
    a_entries, b_entries = _entries(npz["a"]), _entries(npz["b"])
    failures, records, checked = 0, [], 0
    for model in sorted(a_entries):
        missing = [
            r for r in a_entries[model] if r in PI_RUNTIMES and r not in b_entries.get(model, [])
        ]
        if missing:
            # Every Pi runtime measured on the first architecture must run on the second.
            print(f"MISSING {model} on {', '.join(missing)} in {b_path.name}")
            checked += len(missing)
            failures += len(missing)
            continue
        first = f"{model}|{a_entries[model][0]}"
        scale = float(npz["a"][f"{first}|scale"])
        mode = MODES[str(npz["a"][f"{first}|mode"])]
        pairs = _pairs(
            a_entries[model],
            b_entries[model],
            quantized=bool(scale),
            required="cross_argmax" in mode.target_keys,
        )
        for (side_x, rx), (side_y, ry), required in pairs:
            stats = agreement(
                npz[side_x][f"{model}|{rx}|outputs"],
                npz[side_y][f"{model}|{ry}|outputs"],
                scale=scale,
                answers=(
                    npz[side_x][f"{model}|{rx}|answers"],
                    npz[side_y][f"{model}|{ry}|answers"],
                ),
            )
            ok = TARGETS["cross_argmax"].met(stats.argmax_agreement) and (
                TARGETS["cross_steps"].met(stats.max_diff_steps)
                if scale
                else stats.max_abs_diff <= (mode.float_tolerance or 0.0)
            )
            runtimes = [f"{rx} ({machine[side_x]})", f"{ry} ({machine[side_y]})"]
            records.append(
                {
                    "model": model,
                    "sha256": str(npz["a"][f"{first}|sha256"]),
                    "runtimes": runtimes,
                    "images": len(npz[side_x][f"{model}|{rx}|outputs"]),
                    "required": required,
                    **stats.to_json(),
                }
            )
            checked += required
            failures += required and not ok
            verdict = ("ok  " if ok else "FAIL") if required else "info"
            steps = "–" if stats.max_diff_steps is None else f"{stats.max_diff_steps:.0f}"
            print(
                f"{verdict} {model}: {' vs '.join(runtimes)}: argmax agreement "
                f"{stats.argmax_agreement:.4f}, max diff {stats.max_abs_diff:.3g} "
                f"({steps} steps), bit-identical images {stats.bit_identical:.4f}"
            )
    if ARTIFACTS.is_dir():
        write_text(ARTIFACTS / "crosscheck_arm64.json", json.dumps(records, indent=1))
    print(f"{checked - failures} of {checked} required pairs passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"]:
        dump(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["compare"]:
        sys.exit(check_pairs(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)

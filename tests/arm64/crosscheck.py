"""Compare TFLite outputs across architectures (used by ``make test-arm64``).

    python -m tests.arm64.crosscheck dump OUT.npz        # on each architecture
    python -m tests.arm64.crosscheck compare A.npz B.npz  # exit 1 on a mismatch

``dump`` runs every int8/float32 model it finds (the committed fixtures, and the trained
``artifacts/model_int8.tflite`` if present) on 500 real test images with each installed runtime.
``compare`` requires the same argmax everywhere and, for quantized outputs, values within one
quantization step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge_runtime.classifier import Classifier, RuntimeMissingError
from edge_runtime.preprocess import model_input
from edge_runtime.vocab import RUNTIMES

ROOT = Path(__file__).resolve().parents[2]
MODELS = [
    ROOT / "tests/fixtures/tiny_int8.tflite",
    ROOT / "tests/fixtures/tiny_float32.tflite",
    ROOT / "artifacts/model_int8.tflite",
]


def dump(out: Path) -> None:
    from trainer.data import load_data

    x = model_input(load_data(allow_download=False).x_test[:500])
    arrays = {}
    for model in (m for m in MODELS if m.is_file()):
        for runtime in RUNTIMES:
            try:
                clf = Classifier.from_file(model, runtime=runtime)
            except RuntimeMissingError:
                continue
            arrays[f"{model.stem}|{runtime}|probs"] = clf.probabilities(x)
            arrays[f"{model.stem}|{runtime}|scale"] = np.array(clf.output.scale)
    np.savez(out, **arrays)
    print(f"{out.name}: {len(arrays) // 2} model x runtime outputs")


def compare(a_path: Path, b_path: Path) -> int:
    a, b = np.load(a_path), np.load(b_path)
    keys = sorted(k for k in a.files if k.endswith("|probs"))
    missing = [k for k in keys if k not in b.files]
    failures = len(missing)
    for k in missing:
        print(f"MISSING {k} in {b_path.name}")
    for key in (k for k in keys if k in b.files):
        pa, pb = a[key], b[key]
        scale = float(a[key.replace("|probs", "|scale")])
        argmax = float(np.mean(pa.argmax(1) == pb.argmax(1)))
        steps = float(np.abs(pa - pb).max() / scale) if scale else float(np.abs(pa - pb).max())
        ok = argmax == 1.0 and (steps <= 1.0 + 1e-6 if scale else steps < 1e-4)
        failures += not ok
        unit = "steps" if scale else "abs"
        print(
            f"{'ok  ' if ok else 'FAIL'} {key[:-6]}: argmax agreement {argmax:.4f}, max diff {steps:.3g} {unit}"
        )
    print(f"{len(keys) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"]:
        dump(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["compare"]:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)

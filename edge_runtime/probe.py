"""Run a model on saved inputs in a fresh process: ``python -m edge_runtime.probe``.

tflite-runtime 2.14 fails (``vector::reserve``) in a process that has imported TensorFlow, so the
converter and the benchmarks check that runtime through this module in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edge_runtime.classifier import RUNTIMES, Classifier, ModelError, RuntimeMissingError


def main(argv: list[str] | None = None) -> int:
    """Load MODEL with RUNTIME, run it on INPUTS (.npy, uint8 N×28×28×1), save probabilities to OUT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--runtime", choices=list(RUNTIMES), required=True)
    parser.add_argument("--inputs", type=Path, help="model input batch (.npy)")
    parser.add_argument("--out", type=Path, help="where to save the float32 probabilities (.npy)")
    args = parser.parse_args(argv)
    result: dict[str, object] = {"runtime": args.runtime}
    try:
        start = time.perf_counter()
        clf = Classifier(args.model.read_bytes(), runtime=args.runtime, name=str(args.model))
        result.update(version=clf.runtime_version, load_s=time.perf_counter() - start, ok=True)
        if args.inputs is not None:
            probs = np.concatenate(
                [clf.probabilities(c) for c in np.array_split(np.load(args.inputs), 20)]
            )
            if args.out is not None:
                np.save(args.out, probs)
    except (ModelError, RuntimeMissingError) as e:
        result.update(ok=False, error=str(e))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

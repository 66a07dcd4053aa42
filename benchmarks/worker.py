"""One TFLite model on one runtime, measured in its own process (no TensorFlow here).

``python -m benchmarks.worker MODEL --runtime R --threads 1,2 --batches 1,32 --repeats N
--inputs X.npy --probs OUT.npy`` prints one JSON list of rows. A process per model and runtime
keeps tflite-runtime 2.14 away from TensorFlow and makes ``peak_rss_mb`` mean "a process that
loaded this model and classified".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edge_runtime.classifier import Classifier

WARMUP = 10


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 of durations in seconds, returned in microseconds."""
    a = np.asarray(samples_s) * 1e6
    return {f"p{p}": round(float(np.percentile(a, p)), 1) for p in (50, 95, 99)}


def measure(
    model: Path, runtime: str, threads: int, batch: int, repeats: int, images: np.ndarray
) -> dict:
    """Latency and throughput of one configuration, after warm-up.

    ``latency_us`` times ``invoke()`` alone; ``classifier_latency_us`` times the whole
    :meth:`Classifier.probabilities` call (quantize, set, invoke, get, dequantize).
    """
    clf = Classifier(model.read_bytes(), runtime=runtime, threads=threads, name=str(model))
    x = images[:batch] if len(images) >= batch else np.resize(images, (batch, *images.shape[1:]))
    start = time.perf_counter()
    clf.probabilities(x)  # first call: allocation + first invoke
    first = time.perf_counter() - start
    for _ in range(WARMUP):
        clf.probabilities(x)
    whole, invoke = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.probabilities(x)
        whole.append(time.perf_counter() - t0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.invoke_only()
        invoke.append(time.perf_counter() - t0)
    return {
        "runtime": clf.runtime,
        "runtime_version": clf.runtime_version,
        "threads": threads,
        "batch": batch,
        "latency_us": percentiles(invoke),
        "classifier_latency_us": percentiles(whole),
        "first_invoke_us": round(first * 1e6, 1),
        "throughput_ips": round(batch / float(np.median(whole)), 1),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Read from VmHWM, not ``getrusage``: Linux carries ``ru_maxrss`` across exec, so a worker
    forked from a TensorFlow process would report TensorFlow's footprint as its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: the best available

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--threads", default="1")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    args = parser.parse_args(argv)
    images = np.load(args.inputs)
    threads = [int(t) for t in args.threads.split(",")]
    rows = [
        measure(args.model, args.runtime, t, int(b), args.repeats, images)
        for t in threads
        for b in args.batches.split(",")
    ]
    clf = Classifier(args.model.read_bytes(), runtime=args.runtime, threads=threads[0])
    np.save(
        args.probs,
        np.concatenate(
            [clf.probabilities(c) for c in np.array_split(images, max(1, len(images) // 500))]
        ),
    )
    peak = peak_rss_mb()
    for row in rows:
        row["peak_rss_mb"] = round(peak, 1)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

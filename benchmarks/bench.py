"""``fmnist-bench``: accuracy, size and latency of every variant against the Keras original.

Everything is measured in one run on one machine, and speed-ups are stated as ratios against
the Keras model measured in that same run. Absolute times from a shared 2-core box are noisy and
labelled as such. TFLite timings run in the TensorFlow-free worker (:mod:`edge_runtime.worker`).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import write_text
from edge_runtime.classifier import read_sidecar
from edge_runtime.compare import pairwise
from edge_runtime.preprocess import model_input
from edge_runtime.provenance import machine, package_versions
from edge_runtime.vocab import (
    DEFAULT_RUNTIME,
    MICRO_RUNTIME,
    ROUTE_MODE,
    RUNTIMES,
    TARGETS,
    model_files,
)
from edge_runtime.worker import Job, percentiles, run_job, run_python
from trainer.metrics import per_class_accuracy

KERAS = "keras"
"""The variant name of the reference rows."""
KERAS_EAGER = "keras-eager"
"""The reference every speed-up is a ratio against: one ``model(x)`` call per image."""
KERAS_PREDICT = "keras-predict"
"""``model.predict`` on batches: how Keras itself is fastest."""
RECOMMEND_WITHIN_PP = 0.1
"""The recommended variant is the smallest within this many points of the Keras accuracy."""


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """Options of ``fmnist-bench``.

    Attributes:
        models: Folder with model.keras and model_<mode>.tflite (+ sidecars).
        runtimes: Runtimes to measure every model on.
        threads: Interpreter thread counts to time.
        batches: Batch sizes to time.
        repeats: Timed calls per configuration (at most 50 with ``quick``).
        quick: 1,000 test images and short runs (CI).
        training: Also time ``make train`` against the seed recipe.
        seeds: With ``training``, train this many seeds and check their mean accuracy.
        serve: Also load a live ``fmnist-edge serve`` with wrk (see :mod:`benchmarks.serving`).
        data_dir: Fashion-MNIST folder (None: the usual lookup).
    """

    models: Path = Path("artifacts")
    runtimes: tuple[str, ...] = tuple(RUNTIMES)
    threads: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] = (1, 32)
    repeats: int = 300
    quick: bool = False
    training: bool = False
    seeds: int = 1
    serve: bool = False
    data_dir: Path | None = None

    @property
    def timed_repeats(self) -> int:
        """Timed calls per configuration in this run."""
        return min(self.repeats, 50) if self.quick else self.repeats


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def keras_rows(
    model_path: Path, x: np.ndarray, *, repeats: int, batch: int
) -> tuple[list[dict], np.ndarray]:
    """The Keras reference: eager call on one image, and ``predict`` on a batch."""
    import keras

    model = keras.saving.load_model(model_path, safe_mode=True)
    xf = x.astype(np.float32)
    probs = model.predict(xf, batch_size=1000, verbose=0)
    one = xf[:1]
    start = time.perf_counter()
    model(one, training=False)
    first = time.perf_counter() - start
    for _ in range(10):
        model(one, training=False)
    eager = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(one, training=False)
        eager.append(time.perf_counter() - t0)
    xb = xf[:batch]
    model.predict(xb, batch_size=batch, verbose=0)
    pred = []
    for _ in range(max(5, repeats // 10)):
        t0 = time.perf_counter()
        model.predict(xb, batch_size=batch, verbose=0)
        pred.append(time.perf_counter() - t0)
    base = {
        "peak_rss_mb": keras_peak_rss_mb(model_path),
        "variant": KERAS,
        "runtime_version": keras.__version__,
        "threads": os.cpu_count(),
        "size_bytes": model_path.stat().st_size,
    }
    rows = [
        {
            **base,
            "runtime": KERAS_EAGER,
            "batch": 1,
            "latency_us": percentiles(eager),
            "classifier_latency_us": percentiles(eager),
            "first_invoke_us": round(first * 1e6, 1),
            "throughput_ips": round(1 / statistics.median(eager), 1),
        },
        {
            **base,
            "runtime": KERAS_PREDICT,
            "batch": batch,
            "latency_us": percentiles(pred),
            "classifier_latency_us": percentiles(pred),
            "first_invoke_us": None,
            "throughput_ips": round(batch / statistics.median(pred), 1),
        },
    ]
    return rows, probs


def keras_peak_rss_mb(model_path: Path) -> float:
    """Peak RSS of a fresh process that imports TensorFlow, loads the .keras and classifies once."""
    code = (
        "import json, numpy as np, keras\n"
        "from edge_runtime.worker import peak_rss_mb\n"
        f"m = keras.saving.load_model({str(model_path)!r}, safe_mode=True)\n"
        "m(np.zeros((1, 28, 28, 1), np.float32), training=False)\n"
        "print(json.dumps({'peak_rss_mb': peak_rss_mb()}))\n"
    )
    return round(float(run_python(["-c", code])["peak_rss_mb"]), 1)


def median_wall(cmd: list[str], *, runs: int, env: dict[str, str] | None = None) -> float:
    """Median whole-process wall time of ``cmd`` over ``runs`` runs, in seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env={**os.environ, **(env or {})}, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_start(model: Path, image: Path, *, runs: int) -> dict[str, float]:
    """``fmnist-edge classify one.png`` against ``python -c "import tensorflow"``, same run."""
    edge = str(Path(sys.executable).parent / "fmnist-edge")
    classify = median_wall([edge, "classify", "--model", str(model), str(image)], runs=runs)
    tf_import = median_wall(
        [sys.executable, "-c", "import tensorflow"],
        runs=max(1, runs // 3),
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return {
        "classify_one_image_s": round(classify, 3),
        "import_tensorflow_s": round(tf_import, 3),
        "ratio": round(classify / tf_import, 3),
        "runs": runs,
    }


def write_clip(path: Path, *, frames: int, size: tuple[int, int] = (640, 480)) -> Path:
    """A synthetic MJPEG video: a dark item moving across a light background (W×H = size)."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    rng = np.random.default_rng(0)
    for i in range(frames):
        frame = np.full((height, width, 3), 235, np.uint8)
        x = width // 5 + (i * 7) % (width // 2)
        frame[height // 6 : height * 5 // 6, x : x + width // 4] = rng.integers(0, 90, 3)
        writer.write(frame)
    writer.release()
    return path


def webcam_fps(model: Path, *, frames: int, work: Path) -> dict[str, Any]:
    """Headless frame-loop FPS (decode, preprocess, invoke) on a generated 640×480 video."""
    clip = write_clip(work / "bench.avi", frames=frames)
    report = run_job(Job(model=str(model), runtime=DEFAULT_RUNTIME, video=str(clip)))
    if not report["ok"]:
        raise RuntimeError(f"webcam loop on {model.name}: {report['error']}")
    return {**report["video"], "resolution": "640x480", "model": model.name}


def per_class(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy within each true class (recall), by label."""
    return {
        name: round(float(a), 4)
        for name, a in zip(CLASS_NAMES, per_class_accuracy(y, pred), strict=True)
    }


def cross_runtime(
    outputs: dict[tuple[str, str], np.ndarray], scales: dict[str, float]
) -> list[dict[str, Any]]:
    """Every pair of runtimes on each variant (see :func:`edge_runtime.compare.pairwise`).

    Args:
        outputs: (variant, runtime) → dequantized outputs on the same images.
        scales: variant → its output scale (0 for float outputs).
    """
    return [
        {"variant": variant, **pair}
        for variant in dict.fromkeys(v for v, _ in outputs)
        for pair in pairwise(
            {r: o for (v, r), o in outputs.items() if v == variant}, scale=scales[variant]
        )
    ]


def aarch64_records(models_dir: Path) -> list[dict[str, Any]]:
    """The pairs with emulated aarch64 in them, from ``crosscheck_arm64.json`` (``make
    test-arm64`` writes it), for the models in ``models_dir`` whose bytes it was measured on."""
    path = models_dir / "crosscheck_arm64.json"
    if not path.is_file():
        return []
    current = {
        p.name: (mode, hashlib.sha256(p.read_bytes()).hexdigest())
        for mode, p in model_files(models_dir)
    }
    records = []
    for r in json.loads(path.read_text()):
        mode, sha = current.get(r["model"], (None, None))
        # Records without "runtimes" are from an older `make test-arm64`: it re-measures them.
        if sha == r["sha256"] and "runtimes" in r:
            stats = {k: r[k] for k in ("runtimes", "argmax_agreement", "max_abs_diff",
                                       "max_diff_steps", "within_one_step", "bit_identical")}  # fmt: skip
            records.append({"variant": mode, **stats})
    return records


def measure_models(
    options: BenchOptions, *, x: np.ndarray, y: np.ndarray, keras_pred: np.ndarray, work: Path
) -> tuple[list[dict], list[dict], list[dict]]:
    """Every converted model on every runtime, each in a fresh worker.

    Returns:
        ``(rows, cross_runtime, unsupported)``: the last lists the (variant, runtime) pairs
        that do not load, with the runtime's reason (TFLM runs no float16 or dynamic model).
    """
    models = model_files(options.models)
    if not models:
        raise FileNotFoundError(f"no model_<mode>.tflite in {options.models}: run `make convert`")
    inputs = work / "x.npy"
    np.save(inputs, x)
    rows: list[dict] = []
    unsupported: list[dict] = []
    outputs: dict[tuple[str, str], np.ndarray] = {}
    scales: dict[str, float] = {}
    for mode, path in models:
        sidecar = read_sidecar(path)
        scales[mode] = float(sidecar["output"]["scale"])
        for runtime in options.runtimes:
            _log(f"{path.name} on {runtime}")
            saved = work / f"{mode}-{runtime}.npy"
            report = run_job(
                Job(
                    model=str(path),
                    runtime=runtime,
                    threads=options.threads[0],
                    output_is=sidecar.get("output_is", "probabilities"),
                    inputs=str(inputs),
                    outputs=str(saved),
                    # A microcontroller has one core: TFLM ignores threads.
                    timing_threads=(1,) if runtime == MICRO_RUNTIME else options.threads,
                    timing_batches=options.batches,
                    repeats=options.timed_repeats,
                )
            )
            if not report["ok"]:
                unsupported.append({"variant": mode, "runtime": runtime, "error": report["error"]})
                continue
            outputs[(mode, runtime)] = np.load(saved)
            pred = outputs[(mode, runtime)].argmax(1)
            for row in report["rows"]:
                row.update(
                    variant=mode,
                    size_bytes=path.stat().st_size,
                    accuracy=float(np.mean(pred == y)),
                    agreement_with_keras=float(np.mean(pred == keras_pred)),
                    per_class_accuracy=per_class(y, pred),
                    peak_rss_mb=report["peak_rss_mb"],
                    arena_bytes=report["arena_bytes"],
                )
            rows.extend(report["rows"])
    return rows, cross_runtime(outputs, scales), unsupported


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Measure every variant × runtime × threads × batch and return the full result.

    Call order: Keras reference (this process) → one worker process per TFLite model and runtime →
    cross-runtime agreement → cold start → webcam FPS → (``training``) the training comparison →
    targets, tables and advice. ``quick`` uses 1,000 test images and shorter runs, for CI.
    """
    from trainer.data import load_data

    keras_path = options.models / "model.keras"
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path} is missing: run `make train` first")
    data = load_data(options.data_dir)
    n = 1000 if options.quick else len(data.y_test)
    x, y = model_input(data.x_test[:n]), data.y_test[:n]
    _log(f"Keras reference on {n:,} test images")
    rows, keras_probs = keras_rows(
        keras_path, x, repeats=options.timed_repeats, batch=max(options.batches)
    )
    keras_pred = keras_probs.argmax(1)
    for row in rows:
        row.update(
            accuracy=float(np.mean(keras_pred == y)),
            agreement_with_keras=1.0,
            per_class_accuracy=per_class(y, keras_pred),
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tflite_rows, cross, unsupported = measure_models(
            options, x=x, y=y, keras_pred=keras_pred, work=work
        )
        cross += aarch64_records(options.models)
        rows += tflite_rows
        sample = work / "one.png"
        from PIL import Image

        Image.fromarray(data.x_test[0]).save(sample)
        edge_model = (
            dict(model_files(options.models)).get(ROUTE_MODE) or model_files(options.models)[0][1]
        )
        _log("cold start: fmnist-edge classify one.png vs import tensorflow")
        cold = cold_start(edge_model, sample, runs=3 if options.quick else 9)
        _log("webcam pipeline FPS on a generated 640x480 video")
        webcam = webcam_fps(edge_model, frames=150 if options.quick else 1500, work=work)
        if options.serve:
            from benchmarks.serving import serve_bench

            _log("fmnist-edge serve under wrk, and its MJPEG stream")
            clip = write_clip(work / "camera.avi", frames=90)
            served = serve_bench(edge_model, png=sample, clip=clip, quick=options.quick, work=work)
    result: dict[str, Any] = {
        "machine": {**machine(), "packages": package_versions()},
        "note": "absolute times are from a shared machine and noisy; compare ratios from one run",
        "test_images": n,
        "repeats": options.timed_repeats,
        "rows": rows,
        "cross_runtime": cross,
        "unsupported": unsupported,
        "cold_start": cold,
        "webcam": webcam,
    }
    if options.serve:
        result["serve"] = served
    if options.training:
        from benchmarks.training import compare

        result["training"] = compare(seeds=options.seeds)
    result["targets"] = target_checks(result)
    result["recommendation"] = recommendation(result)
    result["tables"] = tables(result)
    return result


def _row(
    rows: list[dict], variant: str, runtime: str, *, threads: int | None = None, batch: int = 1
) -> dict | None:
    for r in rows:
        if (
            r["variant"] == variant
            and r["runtime"] == runtime
            and r["batch"] == batch
            and (threads is None or r["threads"] == threads)
        ):
            return r
    return None


def _p50(row: dict) -> float:
    return row["classifier_latency_us"]["p50"]


def target_checks(result: dict) -> list[dict]:
    """The benchmark targets of :data:`edge_runtime.vocab.TARGETS`, checked on this run."""
    rows = result["rows"]
    eager = _row(rows, KERAS, KERAS_EAGER)
    checks = []
    # The speed target is the Pi's: TFLite Micro is a reference interpreter for microcontrollers,
    # timed here only to compare with itself.
    for runtime in (name for name, r in RUNTIMES.items() if r.automatic):
        r = _row(rows, ROUTE_MODE, runtime, threads=1)
        if eager and r:
            checks.append(
                TARGETS["int8_speedup"].check(_p50(eager) / _p50(r), context=f"{runtime}, 1 thread")
            )
    checks.append(TARGETS["cold_start_s"].check(result["cold_start"]["classify_one_image_s"]))
    checks.append(TARGETS["webcam_fps"].check(result["webcam"]["fps"]))
    if "serve" in result:
        png = result["serve"]["load"][0]
        checks.append(TARGETS["serve_rps"].check(png["requests_per_s"]))
        checks.append(TARGETS["serve_p99_ms"].check(png["p99_ms"]))
        errors = sum(load["errors"] for load in result["serve"]["load"])
        checks.append(TARGETS["serve_errors"].check(errors))
        checks.append(TARGETS["stream_fps"].check(result["serve"]["stream"]["fps"]))
    if "training" in result:
        t = result["training"]
        checks.append(TARGETS["training_time_ratio"].check(t["wall_time_ratio"]))
        seeds = len(t["ours"]["seed_accuracies"])
        over = f"mean of {seeds} seeds" if seeds > 1 else "seed 0"
        mean = t["ours"]["mean_test_accuracy"]
        checks.append(TARGETS["training_accuracy"].check(mean, context=over))
    return checks


def recommendation(result: dict) -> str:
    """Deployment advice derived from this run's rows (single image, 1 thread, default runtime)."""
    rows = {
        r["variant"]: r
        for r in result["rows"]
        if r["variant"] != KERAS
        and r["batch"] == 1
        and r["threads"] == 1
        and r["runtime"] == DEFAULT_RUNTIME
    }
    keras_row = _row(result["rows"], KERAS, KERAS_EAGER)
    if not rows or keras_row is None:
        return "Not enough rows were measured to recommend a variant."
    keras_acc = keras_row["accuracy"]
    close = [r for r in rows.values() if keras_acc - r["accuracy"] <= RECOMMEND_WITHIN_PP / 100]
    pick = min(close or rows.values(), key=lambda r: (r["size_bytes"], _p50(r)))
    text = (
        f"On this machine deploy **{pick['variant']}**: the smallest model within "
        f"{RECOMMEND_WITHIN_PP} pp of the "
        f"Keras accuracy ({pick['accuracy']:.4f} vs {keras_acc:.4f}), {pick['size_bytes']:,} "
        f"bytes, {_p50(pick):.0f} µs per image on {DEFAULT_RUNTIME}."
    )
    dot = result["machine"].get("int8_dot_product")
    cpu = (
        f"this CPU has int8 dot-product instructions ({dot})"
        if dot
        else ("this CPU has no int8 dot-product instructions (VNNI / asimddp)")
    )
    if ROUTE_MODE in rows and pick["variant"] != ROUTE_MODE:
        r = rows[ROUTE_MODE]
        text += (
            f" Choose **int8** when the target needs integer-only arithmetic (microcontrollers, "
            f"the Coral Edge TPU) or where int8 kernels beat float ones, as they usually do on "
            f"ARM cores with dot-product instructions. It costs "
            f"{(keras_acc - r['accuracy']) * 100:.2f} pp and agrees with Keras on "
            f"{r['agreement_with_keras']:.2%} of images ({r['size_bytes']:,} bytes, "
            f"{_p50(r):.0f} µs here)."
        )
    if ROUTE_MODE in rows and "float32" in rows:
        ratio = _p50(rows["float32"]) / _p50(rows[ROUTE_MODE])
        text += f" Measured here, int8 runs at {ratio:.2f}× the speed of float32: {cpu}."
    if "int16x8" in rows and ROUTE_MODE in rows:
        r = rows["int16x8"]
        text += (
            f" int16x8 follows the float model more closely ({r['agreement_with_keras']:.2%} "
            f"agreement) at {r['size_bytes']:,} bytes, but its kernels are "
            f"{_p50(r) / _p50(rows[ROUTE_MODE]):.0f}× slower than int8 here."
        )
    return text


def _table(title: str, columns: list[str], rows: list[list[object]]) -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": [[str(c) for c in r] for r in rows]}


def tables(result: dict) -> list[dict[str, Any]]:
    """The result's tables as data (title, columns, rows of text): the markdown file and the
    report both render these, so the two always show the same figures."""
    out = []
    main = [
        [
            r["variant"],
            r["runtime"],
            r["threads"],
            r["batch"],
            f"{r['accuracy']:.4f}",
            f"{r['agreement_with_keras']:.4f}",
            f"{r['size_bytes']:,}",
            " / ".join(f"{r['latency_us'][p]:.0f}" for p in ("p50", "p95", "p99")),
            f"{_p50(r):.0f}",
            "–" if r["first_invoke_us"] is None else f"{r['first_invoke_us']:.0f}",
            f"{r['throughput_ips']:,.0f}",
            r["peak_rss_mb"],
        ]
        for r in result["rows"]
    ]
    out.append(
        _table(
            "Every variant",
            [
                "variant",
                "runtime",
                "threads",
                "batch",
                "accuracy",
                "agreement with Keras",
                "size (bytes)",
                "invoke p50/p95/p99 (µs)",
                "call p50 (µs)",
                "first call (µs)",
                "images/s",
                "peak RSS (MB)",
            ],
            main,
        )
    )
    eager = _row(result["rows"], KERAS, KERAS_EAGER)
    if eager:
        out.append(
            _table(
                f"Speed-up of one classification (whole call, p50) against the Keras eager call "
                f"({_p50(eager):.0f} µs)",
                ["variant", "runtime", "threads", "speed-up"],
                [
                    [r["variant"], r["runtime"], r["threads"], f"{_p50(eager) / _p50(r):.0f}×"]
                    for r in result["rows"]
                    if r["variant"] != KERAS and r["batch"] == 1
                ],
            )
        )
    out.append(
        _table(
            f"Per-class accuracy ({DEFAULT_RUNTIME}, 1 thread; Keras for reference)",
            ["variant", *CLASS_NAMES],
            [
                [r["variant"], *(f"{r['per_class_accuracy'][n]:.3f}" for n in CLASS_NAMES)]
                for r in result["rows"]
                if r["batch"] == 1
                and (
                    r["runtime"] == KERAS_EAGER
                    or (r["runtime"] == DEFAULT_RUNTIME and r["threads"] == 1)
                )
            ],
        )
    )
    if result["cross_runtime"]:
        arm = any("aarch64" in " ".join(r["runtimes"]) for r in result["cross_runtime"])
        out.append(
            _table(
                "Cross-runtime agreement (same model, same images; "
                + (
                    "aarch64 rows: all 10,000 test images, from `make test-arm64`)"
                    if arm
                    else "`make test-arm64` adds x86 against aarch64)"
                ),
                [
                    "variant",
                    "runtimes",
                    "argmax agreement",
                    "max difference",
                    "in output steps",
                    "within one step",
                    "bit-identical images",
                ],
                [
                    [
                        x["variant"],
                        " vs ".join(x["runtimes"]),
                        f"{x['argmax_agreement']:.4f}",
                        f"{x['max_abs_diff']:.4f}",
                        "–" if x["max_diff_steps"] is None else f"{x['max_diff_steps']:.0f}",
                        "–" if x["within_one_step"] is None else f"{x['within_one_step']:.4f}",
                        f"{x['bit_identical']:.4f}",
                    ]
                    for x in result["cross_runtime"]
                ],
            )
        )
    micro = [
        r
        for r in result["rows"]
        if r["runtime"] == MICRO_RUNTIME and r["batch"] == 1 and r.get("arena_bytes")
    ]
    if micro:
        out.append(
            _table(
                "Microcontroller footprint (TensorFlow Lite Micro, measured by its interpreter)",
                ["variant", "flash: model bytes", "arena bytes", "accuracy", "per image (µs, x86)"],
                [
                    [
                        r["variant"],
                        f"{r['size_bytes']:,}",
                        f"{r['arena_bytes']:,}",
                        f"{r['accuracy']:.4f}",
                        f"{_p50(r):.0f}",
                    ]
                    for r in micro
                ],
            )
        )
    if result.get("unsupported"):
        out.append(
            _table(
                "Models a runtime cannot load",
                ["variant", "runtime", "why"],
                [[u["variant"], u["runtime"], u["error"]] for u in result["unsupported"]],
            )
        )
    c, w = result["cold_start"], result["webcam"]
    out.append(
        _table(
            "Whole-process and pipeline figures",
            ["measurement", "value"],
            [
                [
                    f"`fmnist-edge classify one.png` (median of {c['runs']})",
                    f"{c['classify_one_image_s']:.2f} s",
                ],
                ['`python -c "import tensorflow"` alone', f"{c['import_tensorflow_s']:.2f} s"],
                [
                    f"webcam frame loop, {w['resolution']}, headless, {w['model']} "
                    f"({w['frames']} frames)",
                    f"{w['fps']:.0f} FPS",
                ],
            ],
        )
    )
    if "serve" in result:
        served = result["serve"]
        out.append(
            _table(
                f"fmnist-edge serve under load ({served['load_generator']}; {served['model']})",
                [
                    "upload",
                    "bytes",
                    "requests/s",
                    "p50 (ms)",
                    "p99 (ms)",
                    "errors",
                    "in-process Classifier, same bytes (µs)",
                    "in-process images/s",
                ],
                [
                    [
                        x["upload"],
                        f"{x['bytes']:,}",
                        f"{x['requests_per_s']:,.0f}",
                        f"{x['p50_ms']:.2f}",
                        f"{x['p99_ms']:.2f}",
                        x["errors"],
                        f"{x['in_process_us']:.0f}",
                        f"{x['in_process_per_s']:,.0f}",
                    ]
                    for x in served["load"]
                ]
                + [
                    [
                        f"MJPEG stream, {served['stream']['resolution']}, "
                        f"{served['stream']['source_fps']} FPS camera",
                        "",
                        f"{served['stream']['fps']:.1f} frames/s received",
                        "",
                        "",
                        "",
                        "",
                        "",
                    ]
                ],
            )
        )
    if "training" in result:
        t = result["training"]
        out.append(
            _table(
                f"Training, back to back in one run (wall-time ratio {t['wall_time_ratio']:.2f})",
                ["recipe", "wall time (s)", "epochs", "test accuracy"],
                [
                    [
                        "this project (`make train`)",
                        f"{t['ours']['wall_seconds']:.0f}",
                        t["ours"]["epochs"],
                        f"{t['ours']['test_accuracy']:.4f}",
                    ],
                    [
                        f"this project, `make train` + the {ROUTE_MODE} model's conversion "
                        f"({t['ours']['int8_route_seconds']:.0f} s; ratio "
                        f"{t['with_int8_route_ratio']:.2f})",
                        f"{t['ours']['wall_seconds'] + t['ours']['int8_route_seconds']:.0f}",
                        t["ours"]["epochs"],
                        "",
                    ],
                    *seed_rows(t["ours"]),
                    [
                        "seed (batch 32, 10 epochs)",
                        f"{t['seed_recipe']['wall_seconds']:.0f}",
                        t["seed_recipe"]["epochs"],
                        f"{t['seed_recipe']['test_accuracy']:.4f}",
                    ],
                ],
            )
        )
    return out


def seed_rows(ours: dict) -> list[list[str]]:
    """The mean-over-seeds row of the training table, when more than one seed was trained."""
    accuracies = ours.get("seed_accuracies", [])
    if len(accuracies) < 2:
        return []
    each = ", ".join(f"{a:.4f}" for a in accuracies)
    return [
        [
            f"this project, mean of seeds 0–{len(accuracies) - 1} ({each})",
            "",
            "",
            f"{ours['mean_test_accuracy']:.4f} ± {ours['std_test_accuracy']:.4f}",
        ]
    ]


def markdown(result: dict) -> str:
    """``benchmarks.md``: the machine, every table, the targets and what to deploy."""
    m = result["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['machine']}, Python {m['python']}, "
        f"int8 dot-product instructions: {m.get('int8_dot_product') or 'none'}. "
        f"{result['test_images']:,} test images, {result['repeats']} timed repeats after "
        "warm-up. Absolute times come from a shared machine and are noisy; the ratios are "
        "measured in one run.",
    ]
    for table in result["tables"]:
        lines += ["", f"## {table['title']}", ""]
        lines.append("| " + " | ".join(table["columns"]) + " |")
        lines.append("|" + "---|" * len(table["columns"]))
        lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
    lines += ["", "## Targets", ""]
    lines += [
        f"- {'met' if c['met'] else '**MISSED**'}: {c['target']}: {c['measured']}"
        for c in result["targets"]
    ]
    lines += ["", "## What to deploy", "", result["recommendation"]]
    return "\n".join(lines) + "\n"


def plot(result: dict, out_dir: Path) -> list[Path]:
    """Bar charts of size, p50 latency and accuracy per variant (default runtime, 1 thread)."""
    from trainer.plots import pyplot, save_figure

    plt = pyplot()
    rows = [
        r
        for r in result["rows"]
        if r["batch"] == 1
        and (r["variant"] == KERAS or (r["runtime"] == DEFAULT_RUNTIME and r["threads"] == 1))
    ]
    names = [r["variant"] if r["variant"] != KERAS else "keras (eager)" for r in rows]
    paths = []
    for key, label, value in (
        ("size", "model size (KB)", lambda r: r["size_bytes"] / 1024),
        ("latency", "p50 single-image call (µs, log)", _p50),
        ("accuracy", "test accuracy", lambda r: r["accuracy"]),
    ):
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(names, [value(r) for r in rows], color="#4a7ab7")
        ax.set_ylabel(label)
        if key == "latency":
            ax.set_yscale("log")
        if key == "accuracy":
            accs = [value(r) for r in rows]
            ax.set_ylim(min(accs) - 0.01, min(1.0, max(accs) + 0.005))
        ax.set_title(label)
        paths.append(save_figure(fig, out_dir / "plots" / f"bench_{key}.png"))
    return paths


def write_outputs(result: dict, out_dir: Path) -> None:
    """``benchmarks.json``, ``benchmarks.md`` and the bar charts under ``plots/``."""
    result["plots"] = [str(p.relative_to(out_dir)) for p in plot(result, out_dir)]
    write_text(out_dir / "benchmarks.json", json.dumps(result, indent=1))
    write_text(out_dir / "benchmarks.md", markdown(result))


def compare(old: dict, new: dict, *, noise: float = 0.15) -> list[str]:
    """What got faster, slower, bigger or less accurate between two runs, beyond the noise.

    Rows are matched on (variant, runtime, threads, batch). Latency changes count only when the
    p50 moved by more than ``noise`` (relative) *and* by more than the old run's p95−p50 spread;
    accuracy changes count above 0.1 percentage point; size changes always count.
    """

    def key(r: dict) -> tuple:
        return r["variant"], r["runtime"], r["threads"], r["batch"]

    before = {key(r): r for r in old["rows"]}
    notes = []
    for r in new["rows"]:
        o = before.get(key(r))
        if o is None:
            continue
        name = f"{r['variant']}/{r['runtime']}/{r['threads']}t/b{r['batch']}"
        p_old, p_new = _p50(o), _p50(r)
        spread = o["classifier_latency_us"]["p95"] - p_old
        if abs(p_new - p_old) > max(noise * p_old, spread):
            notes.append(
                f"{'SLOWER' if p_new > p_old else 'faster'} {name}: p50 {p_old:.0f} → {p_new:.0f} µs"
            )
        if r["accuracy"] < o["accuracy"] - 0.001:
            notes.append(f"LESS ACCURATE {name}: {o['accuracy']:.4f} → {r['accuracy']:.4f}")
        elif r["accuracy"] > o["accuracy"] + 0.001:
            notes.append(f"more accurate {name}: {o['accuracy']:.4f} → {r['accuracy']:.4f}")
        if r["size_bytes"] != o["size_bytes"]:
            notes.append(
                f"{'BIGGER' if r['size_bytes'] > o['size_bytes'] else 'smaller'} {name}: "
                f"{o['size_bytes']:,} → {r['size_bytes']:,} bytes"
            )
    return notes

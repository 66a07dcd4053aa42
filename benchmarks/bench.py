"""``fmnist-bench``: accuracy, size and latency of every variant against the Keras original.

Everything is measured in one run on one machine, and speed-ups are stated as ratios against
the Keras model measured in that same run. Absolute times from a shared 2-core box are noisy and
labelled as such.
"""

from __future__ import annotations

import html
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.worker import percentiles
from converter.convert import MODES
from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import atomic_path, write_text
from edge_runtime.preprocess import model_input
from trainer.metrics import per_class_accuracy

TARGETS = {
    "int8_speedup_vs_keras_eager": 50.0,
    "cold_start_s": 0.5,
    "webcam_fps": 300.0,
    "training_time_ratio": 1 / 3,
    "training_accuracy": 0.915,
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, Python and package versions."""
    import importlib.metadata as md

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in (
        "numpy",
        "tensorflow",
        "keras",
        "ai-edge-litert",
        "tflite-runtime",
        "opencv-python-headless",
        "pillow",
    ):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "packages": versions,
        "note": "absolute times are from a shared machine and noisy; compare ratios from one run",
    }


def keras_rows(
    model_path: Path, x: np.ndarray, repeats: int, batch: int
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
        "variant": "keras",
        "runtime_version": keras.__version__,
        "threads": os.cpu_count(),
        "size_bytes": model_path.stat().st_size,
    }
    rows = [
        {
            **base,
            "runtime": "keras-eager",
            "batch": 1,
            "latency_us": percentiles(eager),
            "classifier_latency_us": percentiles(eager),
            "first_invoke_us": round(first * 1e6, 1),
            "throughput_ips": round(1 / statistics.median(eager), 1),
        },
        {
            **base,
            "runtime": "keras-predict",
            "batch": batch,
            "latency_us": percentiles(pred),
            "classifier_latency_us": percentiles(pred),
            "first_invoke_us": None,
            "throughput_ips": round(batch / statistics.median(pred), 1),
        },
    ]
    return rows, probs


def _python_last_line(code: str) -> str:
    """Run ``code`` in a fresh interpreter (no stdin, quiet TensorFlow); return its last stdout line."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return proc.stdout.strip().splitlines()[-1]


def keras_peak_rss_mb(model_path: Path) -> float:
    """Peak RSS of a fresh process that imports TensorFlow, loads the .keras and classifies once."""
    code = (
        "import numpy as np, keras\n"
        "from benchmarks.worker import peak_rss_mb\n"
        f"m = keras.saving.load_model({str(model_path)!r}, safe_mode=True)\n"
        "m(np.zeros((1, 28, 28, 1), np.float32), training=False)\n"
        "print(peak_rss_mb())\n"
    )
    return round(float(_python_last_line(code)), 1)


def run_worker(
    model: Path,
    runtime: str,
    threads: list[int],
    batches: list[int],
    repeats: int,
    inputs: Path,
    probs_out: Path,
) -> list[dict]:
    """Measure one model on one runtime in a fresh process (see :mod:`benchmarks.worker`)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.worker",
        str(model),
        "--runtime",
        runtime,
        "--threads",
        ",".join(map(str, threads)),
        "--batches",
        ",".join(map(str, batches)),
        "--repeats",
        str(repeats),
        "--inputs",
        str(inputs),
        "--probs",
        str(probs_out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{model.name} on {runtime}: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median whole-process wall time of ``cmd`` over ``runs`` runs, in seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env={**os.environ, **(env or {})}, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_start(model: Path, image: Path, runs: int) -> dict[str, float]:
    """``fmnist-edge classify one.png`` against ``python -c "import tensorflow"``, same run."""
    edge = str(Path(sys.executable).parent / "fmnist-edge")
    classify = median_wall([edge, "classify", "--model", str(model), str(image)], runs)
    tf_import = median_wall(
        [sys.executable, "-c", "import tensorflow"],
        max(1, runs // 3),
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return {
        "classify_one_image_s": round(classify, 3),
        "import_tensorflow_s": round(tf_import, 3),
        "ratio": round(classify / tf_import, 3),
        "runs": runs,
    }


def webcam_fps(model: Path, frames: int, work: Path) -> dict[str, Any]:
    """Headless pipeline FPS (decode, preprocess, invoke) on a generated 640×480 video."""
    import cv2

    clip = work / "bench.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    rng = np.random.default_rng(0)
    for i in range(frames):
        frame = np.full((480, 640, 3), 235, np.uint8)
        x = 120 + (i * 7) % 300
        frame[80:400, x : x + 180] = rng.integers(0, 90, 3)
        writer.write(frame)
    writer.release()
    code = (
        "from edge_runtime.webcam import run_webcam; import json, sys\n"
        f"s = run_webcam({str(model)!r}, {str(clip)!r}, headless=True, as_json=False)\n"
        "print(json.dumps({'frames': s.frames, 'seconds': s.seconds}))"
    )
    result = json.loads(_python_last_line(code))
    return {
        "frames": result["frames"],
        "fps": round(result["frames"] / result["seconds"], 1),
        "resolution": "640x480",
        "model": model.name,
    }


def run_bench(
    models_dir: Path,
    runtimes: list[str],
    threads: list[int],
    batches: list[int],
    repeats: int,
    quick: bool = False,
    training: bool = False,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Measure every variant × runtime × threads × batch and return the full result.

    Call order: Keras reference (this process) → one worker process per TFLite model and runtime →
    cross-runtime agreement → cold start → webcam FPS → (``training``) the training comparison.
    ``quick`` uses 1,000 test images, fewer repeats and shorter runs, for CI.
    """
    from trainer.data import load_data

    keras_path = models_dir / "model.keras"
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path} is missing: run `make train` first")
    tflites = sorted(
        models_dir.glob("model_*.tflite"),
        key=lambda p: MODES.index(p.stem[6:]) if p.stem[6:] in MODES else 99,
    )
    if not tflites:
        raise FileNotFoundError(f"no model_*.tflite in {models_dir}: run `make convert` first")
    data = load_data(data_dir)
    n = 1000 if quick else len(data.y_test)
    x, y = model_input(data.x_test[:n]), data.y_test[:n]
    _log(f"Keras reference on {n:,} test images")
    rows, keras_probs = keras_rows(keras_path, x, repeats, max(batches))
    keras_pred = keras_probs.argmax(1)
    for row in rows:
        row.update(
            accuracy=float(np.mean(keras_pred == y)),
            agreement_with_keras=1.0,
            per_class_accuracy=per_class(y, keras_pred),
        )
    probs: dict[tuple[str, str], np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        np.save(work / "x.npy", x)
        for model in tflites:
            for runtime in runtimes:
                _log(f"{model.name} on {runtime}")
                out = work / f"{model.stem}-{runtime}.npy"
                measured = run_worker(
                    model, runtime, threads, batches, repeats, work / "x.npy", out
                )
                p = np.load(out)
                probs[(model.stem, runtime)] = p
                pred = p.argmax(1)
                for row in measured:
                    row.update(
                        variant=model.stem[6:],
                        size_bytes=model.stat().st_size,
                        accuracy=float(np.mean(pred == y)),
                        agreement_with_keras=float(np.mean(pred == keras_pred)),
                        per_class_accuracy=per_class(y, pred),
                    )
                rows.extend(measured)
        cross = cross_runtime(tflites, runtimes, probs)
        sample = work / "one.png"
        from PIL import Image

        Image.fromarray(data.x_test[0]).save(sample)
        int8 = models_dir / "model_int8.tflite"
        edge_model = int8 if int8.is_file() else tflites[0]
        _log("cold start: fmnist-edge classify one.png vs import tensorflow")
        cold = cold_start(edge_model, sample, 3 if quick else 9)
        _log("webcam pipeline FPS on a generated 640x480 video")
        webcam = webcam_fps(edge_model, 150 if quick else 1500, work)
    result: dict[str, Any] = {
        "machine": machine_facts(),
        "test_images": n,
        "repeats": repeats,
        "rows": rows,
        "cross_runtime": cross,
        "cold_start": cold,
        "webcam": webcam,
    }
    if training:
        from benchmarks.training import compare

        result["training"] = compare()
    result["targets"] = target_checks(result)
    return result


def per_class(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy within each true class (recall), by label."""
    return {
        name: round(float(a), 4)
        for name, a in zip(CLASS_NAMES, per_class_accuracy(y, pred), strict=True)
    }


def cross_runtime(tflites: list[Path], runtimes: list[str], probs: dict) -> list[dict]:
    """For each model: argmax agreement between the two runtimes and the max difference in steps."""
    if len(runtimes) < 2:
        return []
    out = []
    for model in tflites:
        a, b = probs[(model.stem, runtimes[0])], probs[(model.stem, runtimes[1])]
        meta = json.loads(model.with_suffix(".json").read_text())
        scale = meta["output"]["scale"]
        diff = np.abs(a - b)
        out.append(
            {
                "variant": model.stem[6:],
                "runtimes": runtimes,
                "argmax_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
                "max_abs_diff": float(diff.max()),
                "max_diff_steps": float(np.round(diff.max() / scale)) if scale else None,
                "within_one_step": float(np.mean(np.round(diff / scale) <= 1)) if scale else None,
            }
        )
    return out


def _row(
    rows: list[dict], variant: str, runtime: str, threads: int | None = None, batch: int = 1
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


def target_checks(result: dict) -> list[dict]:
    """The issue's targets as (target, measured, met) records."""
    rows = result["rows"]
    eager = _row(rows, "keras", "keras-eager")
    checks = []
    for runtime in ("ai-edge-litert", "tflite-runtime"):
        r = _row(rows, "int8", runtime, threads=1)
        if eager and r:
            speedup = eager["classifier_latency_us"]["p50"] / r["classifier_latency_us"]["p50"]
            checks.append(
                {
                    "target": f"int8 single image ≥ 50× faster than Keras eager ({runtime}, 1 thread)",
                    "measured": f"{speedup:.0f}×",
                    "met": speedup >= TARGETS["int8_speedup_vs_keras_eager"],
                }
            )
    cold = result["cold_start"]["classify_one_image_s"]
    checks.append(
        {
            "target": "cold start (fmnist-edge classify one.png) ≤ 0.5 s",
            "measured": f"{cold:.2f} s",
            "met": cold <= TARGETS["cold_start_s"],
        }
    )
    fps = result["webcam"]["fps"]
    checks.append(
        {
            "target": "webcam pipeline ≥ 300 FPS (640x480, headless)",
            "measured": f"{fps:.0f} FPS",
            "met": fps >= TARGETS["webcam_fps"],
        }
    )
    if "training" in result:
        t = result["training"]
        checks.append(
            {
                "target": "training ≤ 1/3 of the seed recipe's wall time",
                "measured": f"{t['wall_time_ratio']:.2f}×",
                "met": t["wall_time_ratio"] <= 1 / 3,
            }
        )
        checks.append(
            {
                "target": "training accuracy ≥ 91.5%",
                "measured": f"{t['ours']['test_accuracy']:.2%}",
                "met": t["ours"]["test_accuracy"] >= TARGETS["training_accuracy"],
            }
        )
    return checks


def markdown(result: dict) -> str:
    """The readable table, the targets, and what to deploy."""
    m = result["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['machine']}, Python {m['python']}. "
        f"{result['test_images']:,} test images, {result['repeats']} timed repeats after warm-up. "
        "Absolute times come from a shared machine and are noisy; the ratios are measured in one run.",
        "",
        "| variant | runtime | threads | batch | accuracy | agreement with Keras | size (bytes) | "
        "invoke p50/p95/p99 (µs) | call p50 (µs) | first call (µs) | images/s | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lat = r["latency_us"]
        lines.append(
            f"| {r['variant']} | {r['runtime']} | {r['threads']} | {r['batch']} | {r['accuracy']:.4f} | "
            f"{r['agreement_with_keras']:.4f} | {r['size_bytes']:,} | {lat['p50']:.0f} / {lat['p95']:.0f} / "
            f"{lat['p99']:.0f} | {r['classifier_latency_us']['p50']:.0f} | "
            f"{r['first_invoke_us'] if r['first_invoke_us'] is not None else '–'} | {r['throughput_ips']:,.0f} | "
            f"{r['peak_rss_mb']} |"
        )
    eager = _row(result["rows"], "keras", "keras-eager")
    if eager:
        lines += [
            "",
            "Speed-up of one classification (whole Classifier call, p50) against the Keras eager call "
            f"({eager['classifier_latency_us']['p50']:.0f} µs) in this run:",
            "",
        ]
        for r in result["rows"]:
            if r["variant"] != "keras" and r["batch"] == 1:
                lines.append(
                    f"- {r['variant']} on {r['runtime']}, {r['threads']} thread(s): "
                    f"{eager['classifier_latency_us']['p50'] / r['classifier_latency_us']['p50']:.0f}×"
                )
    lines += [
        "",
        "## Per-class accuracy (ai-edge-litert, 1 thread; Keras for reference)",
        "",
        "| variant | " + " | ".join(CLASS_NAMES) + " |",
        "|---|" + "---|" * len(CLASS_NAMES),
    ]
    for r in result["rows"]:
        if r["batch"] == 1 and (
            r["runtime"] == "keras-eager"
            or (r["runtime"] == "ai-edge-litert" and r["threads"] == 1)
        ):
            lines.append(
                f"| {r['variant']} | "
                + " | ".join(f"{r['per_class_accuracy'][n]:.3f}" for n in CLASS_NAMES)
                + " |"
            )
    c = result["cold_start"]
    lines += [
        "",
        f"Cold start: `fmnist-edge classify one.png` takes {c['classify_one_image_s']:.2f} s (median of "
        f'{c["runs"]}), against {c["import_tensorflow_s"]:.2f} s for `python -c "import tensorflow"` alone.',
        "",
        f"Webcam pipeline (decode, preprocess, invoke; headless; {result['webcam']['resolution']}, "
        f"{result['webcam']['model']}): {result['webcam']['fps']:.0f} FPS over {result['webcam']['frames']} frames.",
    ]
    if result["cross_runtime"]:
        lines += [
            "",
            "## Cross-runtime agreement (ai-edge-litert vs tflite-runtime, same model, same images)",
            "",
            "| variant | argmax agreement | max difference | in output steps | outputs within one step |",
            "|---|---|---|---|---|",
        ]
        for x in result["cross_runtime"]:
            lines.append(
                f"| {x['variant']} | {x['argmax_agreement']:.4f} | {x['max_abs_diff']:.4f} | "
                f"{x['max_diff_steps'] if x['max_diff_steps'] is not None else '–'} | "
                f"{x['within_one_step'] if x['within_one_step'] is not None else '–'} |"
            )
    if "training" in result:
        t = result["training"]
        lines += [
            "",
            "## Training",
            "",
            "| recipe | wall time (s) | epochs | test accuracy |",
            "|---|---|---|---|",
            f"| this project (`make train`) | {t['ours']['wall_seconds']:.0f} | {t['ours']['epochs']} | "
            f"{t['ours']['test_accuracy']:.4f} |",
            f"| seed (batch 32, 10 epochs) | {t['seed_recipe']['wall_seconds']:.0f} | "
            f"{t['seed_recipe']['epochs']} | {t['seed_recipe']['test_accuracy']:.4f} |",
            "",
            f"Wall-time ratio: {t['wall_time_ratio']:.2f}.",
        ]
    lines += ["", "## Targets", ""]
    lines += [
        f"- {'met' if c['met'] else '**MISSED**'}: {c['target']}: {c['measured']}"
        for c in result["targets"]
    ]
    lines += ["", "## What to deploy", "", recommendation(result)]
    return "\n".join(lines) + "\n"


def recommendation(result: dict) -> str:
    """Deployment advice derived from this run's rows (single image, 1 thread, ai-edge-litert)."""
    rows = {
        r["variant"]: r
        for r in result["rows"]
        if r["variant"] != "keras"
        and r["batch"] == 1
        and r["threads"] == 1
        and r["runtime"] == "ai-edge-litert"
    }
    keras_row = _row(result["rows"], "keras", "keras-eager")
    if not rows or keras_row is None:
        return "Not enough rows were measured to recommend a variant."
    keras_acc = keras_row["accuracy"]

    def p50(r: dict) -> float:
        return r["classifier_latency_us"]["p50"]

    close = [r for r in rows.values() if keras_acc - r["accuracy"] <= 0.001]
    pick = min(close or rows.values(), key=lambda r: (r["size_bytes"], p50(r)))
    text = (
        f"On this machine deploy **{pick['variant']}**: the smallest model within 0.1 pp of the Keras accuracy "
        f"({pick['accuracy']:.4f} vs {keras_acc:.4f}), {pick['size_bytes']:,} bytes, "
        f"{p50(pick):.0f} µs per image on ai-edge-litert."
    )
    if "int8" in rows and pick["variant"] != "int8":
        r = rows["int8"]
        text += (
            f" Choose **int8** when the target needs integer-only arithmetic (microcontrollers, the Coral "
            f"Edge TPU) or where int8 kernels are faster than float, as they usually are on ARM cores (not "
            f"measured here: there is no Pi in this workplace, and this x86 CPU has no VNNI). It costs "
            f"{(keras_acc - r['accuracy']) * 100:.2f} pp and agrees with Keras on {r['agreement_with_keras']:.2%} "
            f"of images ({r['size_bytes']:,} bytes, {p50(r):.0f} µs here)."
        )
    if "int16x8" in rows and "int8" in rows:
        r = rows["int16x8"]
        text += (
            f" int16x8 follows the float model more closely ({r['agreement_with_keras']:.2%} agreement) at "
            f"{r['size_bytes']:,} bytes, but its kernels are {p50(r) / p50(rows['int8']):.0f}× slower than "
            "int8 here."
        )
    return text


def plot(result: dict, out_dir: Path) -> list[Path]:
    """Bar charts of size, p50 latency and accuracy per variant (runtime = ai-edge-litert, 1 thread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        r
        for r in result["rows"]
        if r["batch"] == 1
        and (r["variant"] == "keras" or (r["runtime"] == "ai-edge-litert" and r["threads"] == 1))
    ]
    names = [r["variant"] if r["variant"] != "keras" else "keras (eager)" for r in rows]
    paths = []
    for key, label, value in (
        ("size", "model size (KB)", lambda r: r["size_bytes"] / 1024),
        ("latency", "p50 single-image call (µs, log)", lambda r: r["classifier_latency_us"]["p50"]),
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
        path = out_dir / "plots" / f"bench_{key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def write_outputs(result: dict, out_dir: Path) -> None:
    """``benchmarks.json``, ``benchmarks.md``, the bar charts, and the report's section."""
    import base64

    write_text(out_dir / "benchmarks.json", json.dumps(result, indent=1))
    md = markdown(result)
    write_text(out_dir / "benchmarks.md", md)
    images = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" alt="{p.stem}">'
        for p in plot(result, out_dir)
    )
    write_text(
        out_dir / "benchmarks.html", f"<h2>Benchmarks</h2>{images}<pre>{html.escape(md)}</pre>"
    )


def compare(old: dict, new: dict, noise: float = 0.15) -> list[str]:
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
        p_old, p_new = o["classifier_latency_us"]["p50"], r["classifier_latency_us"]["p50"]
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

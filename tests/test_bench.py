"""fmnist-bench --quick on tiny converted models: schema, sizes, accuracies, --compare."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import tables, training
from benchmarks.measure import Result, Row
from benchmarks.tables import seed_rows
from benchmarks.verdicts import changes_since, target_checks
from edge_runtime.vocab import DEFAULT_RUNTIME, MODES, ROUTE_MODE, RUNTIMES, TARGETS
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

ROW_KEYS = {
    "variant",
    "runtime",
    "runtime_version",
    "threads",
    "batch",
    "accuracy",
    "agreement_with_keras",
    "size_bytes",
    "latency_us",
    "first_invoke_us",
    "throughput_ips",
    "peak_rss_mb",
}


def quick_bench(folder: Path, *args: str):
    """`fmnist-bench --quick` on ``folder`` with 1 thread and 5 repeats, plus ``args``."""
    return run_cli(
        "fmnist-bench",
        "--models",
        str(folder),
        "--quick",
        "--threads",
        "1",
        "--repeats",
        "5",
        *args,
    )


@pytest.fixture(scope="module")
def bench_run(tiny_keras, tmp_path_factory):
    """Convert the shared tiny model to two modes and run the quick benchmark once."""
    import shutil

    from converter.pipeline import ConvertOptions, convert_models

    folder = tmp_path_factory.mktemp("bench")
    shutil.copy(tiny_keras[1], folder / "model.keras")
    convert_models(
        ConvertOptions(
            model=folder / "model.keras",
            modes=(MODES["float32"], MODES["int8-ptq"]),
            out_dir=folder,
            samples=100,
        )
    )
    r = quick_bench(folder, "--batch", "1,8", "--serve")
    assert r.returncode == 0, r.stderr
    return folder, json.loads((folder / "benchmarks.json").read_text()), r


def test_schema_is_complete(bench_run):
    folder, result, _ = bench_run
    assert {"machine", "rows", "cross_runtime", "cold_start", "webcam", "targets"} <= set(result)
    assert {"cpu", "cores", "python", "packages"} <= set(result["machine"])
    combos = {(r["variant"], r["runtime"], r["batch"]) for r in result["rows"]}
    for variant in ("float32", "int8-ptq"):
        for runtime in ("ai-edge-litert", "tflite-runtime", "tflite-micro"):
            assert {(variant, runtime, 1), (variant, runtime, 8)} <= combos
    assert ("keras", "keras-eager", 1) in combos
    for row in result["rows"]:
        assert set(row) >= ROW_KEYS, ROW_KEYS - set(row)
        assert {"p50", "p95", "p99"} == set(row["latency_us"])
        assert len(row["per_class_accuracy"]) == 10
        assert row["peak_rss_mb"] > 10
        assert row["latency_us"]["p50"] <= row["latency_us"]["p95"] <= row["latency_us"]["p99"]
    assert (folder / "benchmarks.md").read_text().startswith("# Benchmarks")
    assert {p.name for p in (folder / "plots").glob("bench_*.png")} == {
        "bench_size.png",
        "bench_latency.png",
        "bench_accuracy.png",
    }


def test_serve_load_and_stream_are_measured(bench_run):
    """The schema of `--serve` (the figures themselves are for benchmarks.md, not for asserts)."""
    _, result, r = bench_run
    served = result["serve"]
    assert [x["upload"] for x in served["load"]] == ["28x28 PNG", "catalogue photo"]
    for load in served["load"]:
        assert load["requests"] > 0 and load["errors"] == 0, load
        assert 0 < load["p50_ms"] <= load["p99_ms"] and load["in_process_us"] > 0
    assert served["stream"]["frames"] > 0
    names = {c["target"].split(" ≥")[0].split(" ≤")[0] for c in result["targets"]}
    assert {"serve, 28x28 PNG, requests/s", "MJPEG stream at 640x480, as received"} <= names
    assert "fmnist-edge serve under load" in (bench_run[0] / "benchmarks.md").read_text()


def test_the_peer_runs_the_same_network(bench_run):
    """ONNX Runtime's graph, built from the Keras weights, answers as Keras does; the int8 model
    it quantizes is measured too, and both are set against their TFLite counterparts."""
    folder, result, _ = bench_run
    peers = {p["variant"]: p for p in result["peer"]}
    assert set(peers) == {"float32", "int8"}
    assert peers["float32"]["agreement_with_keras"] >= 0.999, peers["float32"]
    assert peers["int8"]["agreement_with_keras"] >= 0.95, peers["int8"]
    for peer in peers.values():
        assert peer["engine"] == "onnxruntime" and peer["size_bytes"] > 0
        assert [t["threads"] for t in peer["timings"]] == [1]
        for t in peer["timings"]:
            for timing in (t["invoke_us"], t["run_us"]):
                assert 0 < timing["p50"] <= timing["p95"] <= timing["p99"]
    (table,) = [t for t in result["tables"] if t["title"].startswith("Against the peer")]
    # The fixture converts no shipped int8 model, so static int8 meets int8-ptq only.
    assert [r[:3] for r in table["rows"]] == [
        ["float32", "onnxruntime float32", "1"],
        ["int8-ptq", "onnxruntime int8", "1"],
    ]
    assert "## Against the peer" in (folder / "benchmarks.md").read_text()
    assert "Against ONNX Runtime running the same trained weights" in result["recommendation"]


def row(variant: str, runtime: str, p50_us: float) -> Row:
    """A timed row with only its latency to go by."""
    latency = {"p50": p50_us, "p95": p50_us, "p99": p50_us}
    return Row(
        variant=variant,
        runtime=runtime,
        runtime_version="0",
        threads=1,
        batch=1,
        latency_us=latency,
        classifier_latency_us=latency,
        first_invoke_us=None,
        throughput_ips=1e6 / p50_us,
        size_bytes=1,
        accuracy=0.9,
        agreement_with_keras=1.0,
        per_class_accuracy={},
        peak_rss_mb=None,
    )


def result_of(rows: list[Row], **measured) -> Result:
    """A run that measured ``rows`` and little else."""
    return Result(
        machine={},
        test_images=1,
        repeats=1,
        rows=rows,
        cross_runtime=[],
        unsupported=[],
        cold_start={"classify_one_image_s": 0.2},
        webcam={"fps": 400},
        **measured,
    )


def test_speed_target_is_checked_on_the_pi_runtimes_only():
    """TFLite Micro is timed, but the speed-up target is the Pi's, so it is not checked there."""

    rows = [row("keras", "keras-eager", 5000.0)]
    rows += [row(ROUTE_MODE, runtime, 100.0) for runtime in RUNTIMES]
    result = result_of(rows)
    speed = TARGETS["int8_speedup"]
    checked = {c["target"] for c in target_checks(result) if c["target"].startswith(speed.what)}
    pi = {speed.label(f"{name}, 1 thread") for name, r in RUNTIMES.items() if r.automatic}
    assert checked == pi and len(pi) < len(RUNTIMES)


def test_the_peer_meets_only_the_rows_measured_at_its_thread_count():
    """Each peer timing is set against its counterparts measured at the same threads on the
    default runtime; one with no such row is left out of the table and of the advice."""
    from benchmarks.peer import PeerRun, PeerTiming
    from benchmarks.verdicts import peer_advice

    def timing(threads: int, p50_us: float) -> PeerTiming:
        latency = {"p50": p50_us, "p95": p50_us, "p99": p50_us}
        return PeerTiming(threads=threads, run_us=latency, invoke_us=latency)

    def peer(variant: str, *timings: PeerTiming) -> PeerRun:
        return PeerRun(
            variant=variant,
            engine="onnxruntime",
            engine_version="0",
            size_bytes=1,
            accuracy=0.9,
            agreement_with_keras=1.0,
            timings=timings,
        )

    rows = [row("float32", DEFAULT_RUNTIME, 100.0), row(ROUTE_MODE, DEFAULT_RUNTIME, 50.0)]
    result = result_of(
        rows,
        peer=[peer("float32", timing(1, 50.0), timing(2, 40.0)), peer("int8", timing(1, 100.0))],
    )
    pairs = [(p.ours.variant, p.peer.variant, p.timing.threads) for p in result.peer_pairs()]
    assert pairs == [("float32", "float32", 1), (ROUTE_MODE, "int8", 1)]
    table = tables.against_peer(result)
    assert table is not None and [r[6] for r in table.rows] == ["0.50×", "2.00×"]
    advice = peer_advice(result)
    assert (
        f"float32 100 µs against onnxruntime's float32 50 µs ({DEFAULT_RUNTIME} 2.00× slower)"
        in advice
    )
    assert (
        f"{ROUTE_MODE} 50 µs against onnxruntime's int8 100 µs ({DEFAULT_RUNTIME} 2.00× faster)"
        in advice
    )
    assert peer_advice(result_of(rows)) == ""


def training_result(accuracies: list[float]) -> Result:
    ours = {"test_accuracy": accuracies[0], "seed_accuracies": accuracies}
    ours |= {"mean_test_accuracy": float(np.mean(accuracies)), "std_test_accuracy": 0.003}
    return result_of([], training={"ours": ours, "wall_time_ratio": 0.9})


@pytest.mark.parametrize(
    ("accuracies", "met"),
    [([0.9191, 0.9131, 0.9168], True), ([0.9191, 0.9100, 0.9100], False), ([0.9160], True)],
)
def test_training_accuracy_target_is_the_mean_over_seeds(accuracies: list[float], met: bool):
    (check,) = [c for c in target_checks(training_result(accuracies)) if "accuracy" in c["target"]]
    assert check["met"] is met
    over = f"mean of {len(accuracies)} seeds" if len(accuracies) > 1 else "seed 0"
    assert f"({over})" in check["target"]
    rows = seed_rows(training_result(accuracies).training["ours"])
    assert len(rows) == (len(accuracies) > 1)


def test_training_ratio_is_the_median_of_back_to_back_pairs(monkeypatch):
    # Pair ratios 0.5, 1.0 and 0.6: their median is 0.6, where the medians' ratio would be 0.8.
    metrics = {"test_accuracy": 0.915, "train_seconds": 1.0, "epochs": 12, "config": {}}
    ours = iter([(100.0, metrics), (80.0, metrics), (60.0, metrics)])
    seed_recipe = {"test_accuracy": 0.89, "fit_seconds": 1.0}
    theirs = iter([(200.0, seed_recipe), (80.0, seed_recipe), (100.0, seed_recipe)])
    order = []
    monkeypatch.setattr(training, "_ours", lambda n, _: order.append(("ours", n)) or next(ours))
    monkeypatch.setattr(training, "_theirs", lambda n: order.append(("seed", n)) or next(theirs))
    monkeypatch.setattr(training, "_timed", lambda *_: 50.0)
    t = training.time_both_recipes(seeds=3)
    assert order == [("ours", 0), ("seed", 0), ("ours", 1), ("seed", 1), ("ours", 2), ("seed", 2)]
    assert t["pair_ratios"] == [0.5, 1.0, 0.6] and t["wall_time_ratio"] == 0.6
    assert t["ours"]["wall_seconds"] == 80.0 and t["seed_recipe"]["wall_seconds"] == 100.0
    table = tables.training(result_of([], training=t))
    assert "0.60, the median of 3 pairs: 0.50, 1.00, 0.60" in table.title
    assert table.rows[-1][1] == "100 (200, 80, 100)"


def test_sizes_equal_the_files(bench_run):
    folder, result, _ = bench_run
    for row in result["rows"]:
        name = "model.keras" if row["variant"] == "keras" else f"model_{row['variant']}.tflite"
        assert row["size_bytes"] == (folder / name).stat().st_size


def test_accuracies_match_an_independent_evaluation(bench_run, dataset):
    """Recompute with the Classifier directly, on the same 1,000 images --quick uses."""
    from edge_runtime.classifier import Classifier
    from edge_runtime.preprocess import model_input

    folder, result, _ = bench_run
    x, y = model_input(dataset.x_test[:1000]), dataset.y_test[:1000]
    for variant in ("float32", "int8-ptq"):
        pred = Classifier.from_file(folder / f"model_{variant}.tflite").predict_classes(x)
        expected = float(np.mean(pred == y))
        rows = [
            r
            for r in result["rows"]
            if r["variant"] == variant and r["runtime"] == "ai-edge-litert"
        ]
        assert rows, f"no {variant} rows on ai-edge-litert"
        for row in rows:
            assert row["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert result["test_images"] == 1000


def test_compare_flags_a_planted_regression(bench_run, tmp_path: Path):
    folder, data, _ = bench_run
    result = Result.from_json(data)
    assert changes_since(result, result) == []
    worse = copy.deepcopy(data)
    row = next(r for r in worse["rows"] if r["variant"] == "int8-ptq" and r["batch"] == 1)
    # A shift of every percentile by the same 10 ms keeps the run's own p95-p50 spread, which
    # changes_since uses as its noise floor: scaling them would scale that floor too, and a
    # noisy tail on a loaded machine could then hide the planted change.
    row["classifier_latency_us"] = {k: v + 10_000 for k, v in row["classifier_latency_us"].items()}
    row["accuracy"] -= 0.02
    notes = changes_since(result, Result.from_json(worse))
    assert any(n.startswith("SLOWER int8-ptq/") for n in notes)
    assert any(n.startswith("LESS ACCURATE int8-ptq/") for n in notes)
    old = tmp_path / "old.json"
    # Only the doctored row: other rows would be compared on timing noise alone.
    old.write_text(json.dumps({**worse, "rows": [row]}))
    r = quick_bench(
        folder,
        "--batch",
        "1",
        "--no-peer",
        "--compare",
        str(old),
        "--out-dir",
        str(tmp_path / "new"),
    )
    assert r.returncode == 0, r.stderr
    assert "faster int8-ptq/" in r.stdout and "more accurate int8-ptq/" in r.stdout


def test_seeds_go_with_training():
    r = run_cli("fmnist-bench", "--seeds", "3")
    assert r.returncode == 2 and "--seeds trains models: it goes with --training" in r.stderr

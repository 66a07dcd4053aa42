"""The data that crosses processes has a schema: the sidecar and the worker's report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.compare import RuntimePair, pairwise
from edge_runtime.sidecar import ModelError, Sidecar, read_sidecar
from edge_runtime.worker import Job, Report, Timing, run_job, work
from tests.helpers import TINY_INT8

FIXTURES = [TINY_INT8, TINY_INT8.with_name("tiny_float32.tflite")]


@pytest.mark.parametrize("model", FIXTURES, ids=lambda p: p.stem)
def test_a_converter_written_sidecar_round_trips(model: Path):
    written = json.loads(model.with_suffix(".json").read_text())
    sidecar = read_sidecar(model)
    assert sidecar.quantization in ("int8-ptq", "float32") and len(sidecar.labels) == 10
    assert Sidecar.from_json(sidecar.to_json()) == sidecar
    # Every field the converter wrote is read, and written back the same way.
    assert json.loads(json.dumps(sidecar.to_json())) == written


def test_worst_pair_is_derived_from_the_pairs():
    sidecar = read_sidecar(TINY_INT8)
    a = np.array([[0.1, 0.9], [0.6, 0.4]])
    pairs = pairwise({"x": a, "y": a + [[0.02, 0], [0, 0.3]], "z": a}, scale=0.01)
    both = replace(sidecar, cross_runtime=tuple(pairs))
    assert both.worst_cross_argmax == 0.5 and both.worst_cross_steps == 30
    assert replace(sidecar, cross_runtime=()).worst_cross_steps is None
    assert all(isinstance(p, RuntimePair) for p in Sidecar.from_json(both.to_json()).cross_runtime)


def test_the_same_answer_is_judged_on_answers_and_steps_on_outputs():
    """A mirror-averaged model's answer is two invokes: one invoke's outputs may differ in
    their best class where the answers agree, and the other way round."""
    a = np.array([[0.50, 0.49], [0.9, 0.1]])
    b = np.array([[0.49, 0.50], [0.9, 0.1]])
    same = np.array([[0.7, 0.3], [0.8, 0.2]])
    (pair,) = pairwise({"x": a, "y": b}, scale=0.01, answers={"x": same, "y": same})
    assert pair.argmax_agreement == 1.0 and pair.max_diff_steps == 1
    (pair,) = pairwise({"x": a, "y": b}, scale=0.01)
    assert pair.argmax_agreement == 0.5


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("labels"), "lacks or malforms 'labels'"),
        (lambda d: d.update(labels="T-shirt"), "labels or sha256 are malformed"),
        (lambda d: d["sha256"].pop("tflite"), "lacks or malforms 'tflite'"),
        (lambda d: d["input"].pop("dtype"), "lacks or malforms 'dtype'"),
        (lambda d: d.update(output_is="scores"), "output_is must be one of"),
        (lambda d: d.update(format="fmnist-tflite/0"), "not an fmnist sidecar"),
        # Fields a runtime reads later are checked here, so that a hand-edited sidecar is
        # refused at load, never a model that then fails every request.
        (lambda d: d.update(not_sure_below="high"), "'not_sure_below' has the wrong type"),
        (lambda d: d.update(not_sure_below=float("nan")), "a score from 0 to 1"),
        (lambda d: d.update(not_sure_below=1.5), "a score from 0 to 1"),
        (lambda d: d.update(mirror_average="no"), "'mirror_average' has the wrong type"),
        (lambda d: d.update(size_bytes=1.5), "'size_bytes' has the wrong type"),
        (lambda d: d.update(known_images="x"), "'known_images' has the wrong type"),
        (lambda d: d.update(known_images={"accuracy": "high"}), "known_images lacks its accuracy"),
        (lambda d: d.update(cross_runtime=[1]), "malforms"),
    ],
)
def test_a_malformed_sidecar_is_one_line(change, problem: str):
    data = read_sidecar(TINY_INT8).to_json()
    change(data)
    with pytest.raises(ModelError, match=problem) as err:
        Sidecar.from_json(data, name="m.json")
    assert str(err.value).startswith("m.json: ") and "\n" not in str(err.value)


def test_fields_it_does_not_know_are_ignored():
    data = {**read_sidecar(TINY_INT8).to_json(), "from_a_later_version": 1}
    assert Sidecar.from_json(data) == read_sidecar(TINY_INT8)


def test_the_worker_report_round_trips_through_its_process(tmp_path: Path):
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28, 1), np.uint8))
    job = Job(
        model=str(TINY_INT8),
        runtime="ai-edge-litert",
        inputs=str(tmp_path / "x.npy"),
        outputs=str(tmp_path / "y.npy"),
        timing_threads=(1,),
        timing_batches=(1, 2),
        repeats=5,
    )
    report = run_job(job)
    assert report.ok and report.error is None and report.peak_rss_mb > 10
    assert [t.batch for t in report.timings] == [1, 2]
    assert all(isinstance(t, Timing) and t.latency_us["p50"] > 0 for t in report.timings)
    assert Report.from_json(report.to_json()) == report
    assert np.load(tmp_path / "y.npy").shape == (3, 10)


def test_a_model_that_does_not_load_is_a_report_not_a_crash(tmp_path: Path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    report = work(Job(model=str(bad), runtime="ai-edge-litert"))
    assert not report.ok and "cannot load" in report.error and report.timings == ()


def test_a_target_prints_a_near_miss_apart_from_its_limit():
    from edge_runtime.vocab import TARGETS

    ratio = TARGETS["training_time_ratio"]
    check = ratio.check(1.001)
    assert check == {"target": check["target"], "measured": "1.001×", "met": False}
    assert check["target"].endswith("≤ 1×")
    assert TARGETS["int8_size_ratio"].format(0.2629) == "0.263×"
    assert TARGETS["int8_speedup"].format(108.4) == "108×"

"""The report renders every section from data files alone: no model, no dataset, no TensorFlow."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.measure import Result
from benchmarks.tables import markdown, tables
from edge_runtime import CLASS_NAMES
from tests.helpers import run_cli
from trainer.plots import PLOTS
from trainer.report import inline, render

FIXTURES = Path(__file__).parent / "fixtures"


def png(path: Path, shade: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (shade, 0, 0)).save(path)
    return path


def bench_result() -> dict:
    """A small but complete benchmarks.json, made with the benchmark's own table builder."""
    row = {
        "variant": "int8",
        "runtime": "ai-edge-litert",
        "runtime_version": "2.3.0",
        "threads": 1,
        "batch": 1,
        "accuracy": 0.9,
        "agreement_with_keras": 0.98,
        "size_bytes": 119_584,
        "latency_us": {"p50": 20.0, "p95": 25.0, "p99": 30.0},
        "classifier_latency_us": {"p50": 30.0, "p95": 35.0, "p99": 40.0},
        "first_invoke_us": 100.0,
        "throughput_ips": 33_000.0,
        "peak_rss_mb": 70.0,
        "per_class_accuracy": dict.fromkeys(CLASS_NAMES, 0.9),
    }
    keras = {
        **row,
        "variant": "keras",
        "runtime": "keras-eager",
        "classifier_latency_us": {"p50": 3000.0, "p95": 3500.0, "p99": 4000.0},
        "first_invoke_us": None,
    }
    result = {
        "machine": {"cpu": "test cpu", "cores": 2, "machine": "x86_64", "python": "3.11"},
        "note": "noisy",
        "test_images": 1000,
        "repeats": 5,
        "rows": [keras, row],
        "cross_runtime": [],
        "cold_start": {"classify_one_image_s": 0.1, "import_tensorflow_s": 2.0, "runs": 3},
        "webcam": {"fps": 500.0, "frames": 150, "resolution": "640x480", "model": "m.tflite"},
        "targets": [{"target": "speed ≥ 50×", "measured": "100×", "met": True}],
        "recommendation": "deploy **int8**",
        "plots": ["plots/bench_size.png", "plots/bench_latency.png"],
    }
    typed = Result.from_json(result)
    result["tables"] = [t.to_json() for t in tables(typed)]
    return result


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Every input the report reads, written by hand."""
    metrics = {
        "test_accuracy": 0.9165,
        "params": 107_598,
        "epochs": 26,
        "train_seconds": 223.0,
        "seed": 0,
        "config": {"epochs": 30, "batch_size": 256},
        "per_class": {
            n: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 1000} for n in CLASS_NAMES
        },
        "classification_report": "macro avg 0.9",
        "data": {
            "source": "/usr/share/datasets/fashion-mnist",
            "how_found": "Debian package",
            "train_counts": [6000] * 10,
            "test_counts": [1000] * 10,
        },
        "versions": {"numpy": "1.26.4"},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "model_summary.txt").write_text("Model: fmnist_cnn <layers>")
    for i, (name, _) in enumerate(PLOTS):
        png(tmp_path / "plots" / f"{name}.png", 10 + i)
    for mode in ("float32", "int8"):  # real models and sidecars, made by the converter
        for ext in (".tflite", ".json"):
            shutil.copy(FIXTURES / f"tiny_{mode}{ext}", tmp_path / f"model_{mode}{ext}")
    sidecar = json.loads((tmp_path / "model_int8.json").read_text())
    pair = {
        "argmax_agreement": 1.0,
        "max_abs_diff": 0.0,
        "max_diff_steps": 0.0,
        "bit_identical": 1.0,
    }
    sidecar.update(
        cross_runtime=[{"runtimes": ["ai-edge-litert", "tflite-micro"], **pair}],
        microcontroller={"flash_bytes": 5424, "arena_bytes": 5776},
        route={
            "rewrite": {"max_abs_diff": 2e-6},
            "qat": [{"seed": 0, "epochs": 2, "train_images": 55000, "seconds": 10.0}],
            "holdout_images": 5000,
            "candidates": [
                {
                    "seed": 0,
                    "step": 0.07,
                    "flips": 3,
                    "drop_pp": 0.04,
                    "agreement": 0.9978,
                    "cross_argmax": 0.9994,
                    "cross_steps": 2.0,
                    "met": True,
                    "chosen": True,
                }
            ],
        },
    )
    (tmp_path / "model_int8.json").write_text(json.dumps(sidecar))
    layer = {"layer": "bn1 ×a", "op": "MUL", "scale": 0.06, "rmse_steps": 1.7, "max_steps": 11.5}
    debug = {"images": 500, "kernels": "builtin", "measure": "RMSE against float", "models": {}}
    debug["models"] = {"int8-ptq": [layer], "int8": [{**layer, "layer": "logits"}]}
    (tmp_path / "int8_debug.json").write_text(json.dumps(debug))
    png(tmp_path / "int8_debug.png", 100)
    png(tmp_path / "plots" / "bench_size.png", 200)
    png(tmp_path / "plots" / "bench_latency.png", 210)
    (tmp_path / "benchmarks.json").write_text(json.dumps(bench_result()))
    png(tmp_path / "serve.png", 220)
    return tmp_path


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_every_section_and_every_figure(artifacts: Path):
    page = render(artifacts)
    for heading in ("Training", "Quantized models", "Benchmarks", "Serve"):
        assert f"<h2>{heading}</h2>" in page
    for fragment in (
        "Classification report",
        "Per-class accuracy change",
        "Targets",
        "The int8 route",
        "Where the int8 error sits",
        "bn1 ×a",
        "The same answer on every runtime",
        "ai-edge-litert vs tflite-micro",
        "Microcontroller footprint",
        "5,776",
    ):
        assert fragment in page
    for table in bench_result()["tables"]:
        assert inline(table["title"]) in page
    figures = sorted(artifacts.rglob("*.png"))
    assert len(figures) == len(PLOTS) + 4
    shown = embedded_pngs(page)
    assert sorted(shown) == sorted(p.read_bytes() for p in figures), "each figure exactly once"
    for data in shown:
        Image.open(io.BytesIO(data)).verify()  # a real, decodable PNG
    assert 'src="http' not in page, "the report must be self-contained"


def test_sections_appear_only_with_their_data(artifacts: Path):
    (artifacts / "benchmarks.json").unlink()
    (artifacts / "serve.png").unlink()
    for p in [*artifacts.glob("model_*.tflite"), *artifacts.glob("model_*.json")]:
        p.unlink()
    page = render(artifacts)
    assert "<h2>Training</h2>" in page
    assert "Quantized models" not in page and "Benchmarks" not in page and "Serve" not in page


def test_markdown_and_report_show_the_same_tables(artifacts: Path):
    result = bench_result()
    md, page = markdown(Result.from_json(result)), render(artifacts)
    for table in result["tables"]:
        for row in table["rows"]:
            assert "| " + " | ".join(row) + " |" in md
            assert all(inline(cell) in page for cell in row)


def test_inline_markdown_is_escaped_first():
    assert inline("`make <x>` & **best**") == "<code>make &lt;x&gt;</code> &amp; <b>best</b>"
    assert inline("a*b `c") == "a*b `c"


def test_report_command_without_training_artifacts_is_one_line(tmp_path: Path):
    r = run_cli("fmnist-train", "report", "--out-dir", str(tmp_path))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "metrics.json is missing: run `make train` first" in r.stderr


def test_only_the_report_writes_html():
    """No other module renders HTML (the serve page is a static file, not rendered)."""
    root = Path(__file__).resolve().parents[1]
    tag = re.compile(r"</?(html|body|table|tr|td|th|img|h[1-6]|p|div|span|ul|ol|li|code|b|a)[\s>]")
    writers = sorted(
        str(p.relative_to(root))
        for package in ("edge_runtime", "trainer", "converter", "benchmarks")
        for p in (root / package).rglob("*.py")
        if tag.search(p.read_text())
    )
    assert writers == ["trainer/report.py"]

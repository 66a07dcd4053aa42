"""fmnist-train: help, usage errors, one-line data errors, and the make-all entry points end to end."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import cli, run_cli
from trainer.data import FILES, _file_in, read_payload


@pytest.mark.parametrize(
    "script", ["fmnist-train", "fmnist-convert", "fmnist-edge", "fmnist-bench"]
)
def test_console_scripts_are_installed(script: str):
    r = subprocess.run([cli(script), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Usage:" in r.stdout


def test_help_lists_commands():
    r = run_cli("fmnist-train", "--help")
    assert r.returncode == 0
    for command in ("fit", "report", "data"):
        assert command in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--epochs", "0"], "Invalid value for '--epochs'"),
        (["fit", "--augment", "vertical-flip"], "Invalid value for '--augment'"),
        (["fit", "--bogus"], "No such option '--bogus'"),
        (["nonsense"], "No such command 'nonsense'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str):
    r = run_cli("fmnist-train", *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_data_is_one_line(tmp_path: Path):
    r = run_cli("fmnist-train", "data", "info", "--data-dir", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert str(tmp_path) in r.stderr and "make data" in r.stderr


def test_corrupt_data_is_one_line(tmp_path: Path, dataset):
    for name in FILES.values():
        payload = read_payload(_file_in(dataset.source, name))
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(payload, compresslevel=1))
    damaged = tmp_path / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    r = run_cli("fmnist-train", "data", "info", "--data-dir", str(tmp_path))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert (
        r.stderr.strip()
        == f"error: {damaged}: truncated gzip file (the download or copy was cut short). "
        "Delete it and run `make data` again."
    )


def test_data_info_on_real_data(dataset):
    r = run_cli("fmnist-train", "data", "info", "--data-dir", str(dataset.source))
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "Ankle boot        6000    1000" in r.stdout


@pytest.mark.slow
def test_make_all_entry_points_end_to_end(dataset, tmp_path: Path):
    """`fmnist-train fit` then `report` on a small config produce every artifact."""
    out = tmp_path / "artifacts"
    r = run_cli(
        "fmnist-train",
        "fit",
        "--epochs",
        "1",
        "--limit",
        "4000",
        "--batch-size",
        "32",
        "--out-dir",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "per_class",
        "confusion_matrix",
        "params",
        "train_seconds",
        "epochs",
        "seed",
        "versions",
        "classification_report",
    ):
        assert key in metrics
    assert metrics["params"] == 107_598 and metrics["epochs"] == 1
    assert 0.3 < metrics["test_accuracy"] <= 1  # 1 short epoch: ~0.43 seen; chance is 0.1
    assert len(json.loads((out / "history.json").read_text())["val_accuracy"]) == 1
    assert "macro avg" in (out / "classification_report.txt").read_text()

    r = run_cli("fmnist-train", "report", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    pngs = {p.stem for p in (out / "plots").glob("*.png")}
    assert pngs == {
        "samples_per_class",
        "class_distribution",
        "preprocessing",
        "curves",
        "confusion_matrix",
        "confused_pairs",
        "misclassified",
    }
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "Classification report" in page
    assert 'src="http' not in page, "the report must be self-contained"


@pytest.mark.slow
def test_kill_9_then_rerun_resumes(dataset, tmp_path: Path):
    """A kill -9 mid-run leaves no model.keras; running again resumes instead of starting over."""
    out = tmp_path / "artifacts"
    args = [cli("fmnist-train"), "fit", "--epochs", "4", "--limit", "4000", "--out-dir", str(out)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # wait until epoch 2 is under way, so epoch 1 is backed up
        log.append(line)
        if line.startswith("Epoch 2/4") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(line.startswith("Epoch 2/4") for line in log), "".join(log)
    assert not (out / "model.keras").exists()
    assert (out / ".train-backup").is_dir()

    r = run_cli("fmnist-train", "fit", "--epochs", "4", "--limit", "4000", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    # Keras prints its per-epoch lines on stdout.
    assert "Epoch 1/4" not in r.stdout and "Epoch 2/4" in r.stdout, "must resume after epoch 1"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 4
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 4
    assert not (out / ".train-backup").exists()


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("0", "0")])
def test_tensorflow_is_asked_for_onednn_unless_told_otherwise(given: str | None, seen: str):
    """Every process that trains, converts or benchmarks imports ``trainer`` before TensorFlow,
    and so asks for oneDNN's kernels; a TF_ENABLE_ONEDNN_OPTS the user set still wins."""
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    code = "import os, converter.cli, benchmarks.cli; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == seen

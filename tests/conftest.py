"""Shared fixtures. Tests marked ``slow`` need TensorFlow; ``dataset`` tests need the real data.

Under CI (``CI=true``) a missing dataset is a failure, not a skip: ``make test`` installs it first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Console script → module. Tests run `python -m module` with this interpreter, so an emulated
# aarch64 Python (make test-arm64) never picks up an x86 script from PATH by accident.
MODULES = {
    "fmnist-train": "trainer.cli",
    "fmnist-convert": "converter.cli",
    "fmnist-edge": "edge_runtime.cli",
    "fmnist-bench": "benchmarks.cli",
}


def cli(name: str) -> str:
    """Path of an installed console script beside this interpreter."""
    return str(BIN / name)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a command (by its console-script name) as ``python -m module`` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", MODULES[args[0]], *args[1:]],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def dataset():
    """The real, verified Fashion-MNIST. Fails (never skips) under CI when it is missing."""
    from trainer.data import DataError, load_data

    try:
        return load_data(allow_download=False)
    except DataError as e:
        if os.environ.get("CI"):
            pytest.fail(f"the real dataset is required in CI: {e}")
        pytest.skip(f"real dataset not installed (run `make data`): {e}")


@pytest.fixture(scope="session")
def tiny_keras(dataset, tmp_path_factory):
    """A tiny CNN (tests.fixtures.make_fixtures.build_tiny) trained 2 epochs on 10,000 real
    images and saved as .keras: ``(model, path)``. Shared by the converter and bench tests."""
    import keras
    import numpy as np

    from edge_runtime.preprocess import model_input
    from tests.fixtures.make_fixtures import build_tiny
    from trainer.train import save_model

    keras.utils.set_random_seed(0)
    model = build_tiny()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(
        model_input(dataset.x_train[:10000]).astype(np.float32),
        dataset.y_train[:10000],
        epochs=2,
        batch_size=64,
        verbose=0,
    )
    path = tmp_path_factory.mktemp("tiny") / "model.keras"
    save_model(model, path)
    return model, path

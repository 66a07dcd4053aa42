"""Shared fixtures. Tests marked ``slow`` need TensorFlow; ``dataset`` tests need the real data.

Under CI (``CI=true``) a missing dataset is a failure, not a skip: ``make test`` installs it first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cli(name: str) -> str:
    """Path of a console script installed beside this interpreter."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a console script in a subprocess and capture its text output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [cli(args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
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

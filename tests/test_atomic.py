"""Atomic writes: all or nothing, no temp files left, normal permissions."""

import os
from pathlib import Path

import pytest

from edge_runtime.atomic import atomic_path, write_text


def test_failure_leaves_old_file_and_no_temp(tmp_path: Path):
    target = tmp_path / "model.tflite"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_success_replaces_and_uses_umask_mode(tmp_path: Path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").read_text() == "{}"
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_temp_keeps_suffix_for_writers_that_check_it(tmp_path: Path):
    with atomic_path(tmp_path / "m.keras") as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")

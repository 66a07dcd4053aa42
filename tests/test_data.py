"""The data layer on hand-built bytes: IDX parsing, gzip damage, checksums, lookup order."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from trainer import data as fdata
from trainer.data import DataError, parse_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(a)), a)


def test_parse_idx_labels_1d():
    a = np.array([3, 1, 4, 1, 5], np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(a)), a)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "bad magic"),
        (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "bad magic"),
        (
            b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00\x00\x00\x00",
            "unsupported IDX dtype 0x0d",
        ),
        (b"\x00\x00\x08\x03\x00\x00", "header truncated"),
        (b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x00" * 9, "holds 17 bytes"),
        (b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x00" * 11, "holds 19 bytes"),
    ],
)
def test_parse_idx_rejects_bad_input(payload: bytes, message: str):
    with pytest.raises(DataError, match=message):
        parse_idx(payload, "f")


def test_truncated_gzip_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"x" * 10_000)[:-20])
    with pytest.raises(DataError, match="truncated gzip"):
        fdata.read_payload(path)


def test_bit_flip_in_gzip_is_a_clear_error(tmp_path: Path):
    blob = bytearray(gzip.compress(bytes(range(256)) * 100))
    blob[-6] ^= 0x01  # inside the CRC32 trailer
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt gzip"):
        fdata.read_payload(path)


def fake_dataset(folder: Path, n_train: int = 20, n_test: int = 10) -> dict[str, str]:
    """Write four small, valid IDX files; return their SHA-256 for patching IDX_SHA256."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, arr in arrays.items():
        payload = idx_bytes(arr)
        (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        sums[name] = hashlib.sha256(payload).hexdigest()
    return sums


@pytest.fixture
def small_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fdata, "EXPECTED_COUNTS", {"train": 20, "test": 10})


def test_checksum_mismatch_is_rejected(tmp_path: Path, small_counts: None):
    fake_dataset(tmp_path)  # valid IDX, but not the genuine bytes
    with pytest.raises(DataError, match="SHA-256 of the decompressed data.*not the genuine"):
        fdata.load_from(tmp_path)


def test_verified_small_dataset_loads(
    tmp_path: Path, small_counts: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(fdata, "IDX_SHA256", fake_dataset(tmp_path))
    ds = fdata.load_from(tmp_path, "test")
    assert ds.x_train.shape == (20, 28, 28) and ds.y_test.shape == (10,)
    assert ds.x_train.dtype == np.uint8


def test_raw_uncompressed_files_are_accepted(
    tmp_path: Path, small_counts: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(fdata, "IDX_SHA256", fake_dataset(tmp_path))
    for gz in tmp_path.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert fdata.load_from(tmp_path).x_test.shape == (10, 28, 28)


def test_wrong_shape_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(fdata, "IDX_SHA256", fake_dataset(tmp_path, n_train=20))
    with pytest.raises(
        DataError, match=r"train images have shape \(20, 28, 28\), expected \(60000"
    ):
        fdata.load_from(tmp_path)


@pytest.fixture
def isolated_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, cache and the Debian folder all point into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "debian")
    return tmp_path


def test_lookup_order(isolated_lookup: Path):
    t = isolated_lookup
    keras_dir, debian, cache = (
        t / "home/.keras/datasets/fashion-mnist",
        t / "debian",
        t / "cache/fmnist",
    )
    assert [d for d, _ in fdata.candidate_dirs()] == [keras_dir, debian, cache]
    assert fdata.find_data_dir() is None
    for folder in (cache, debian, keras_dir):  # each newly added folder takes precedence
        fake_dataset(folder)
        assert fdata.find_data_dir()[0] == folder


def test_explicit_dir_wins_and_never_falls_back(
    isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch
):
    t = isolated_lookup
    fake_dataset(t / "debian")
    fake_dataset(t / "mine")
    assert fdata.find_data_dir(t / "mine") == (t / "mine", "--data-dir")
    monkeypatch.setenv("FMNIST_DATA_DIR", str(t / "mine"))
    assert fdata.find_data_dir() == (t / "mine", "$FMNIST_DATA_DIR")
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte"):
        fdata.find_data_dir(t / "empty")


def test_no_data_and_no_network_is_a_clear_error(isolated_lookup: Path):
    with pytest.raises(DataError, match="not found in any of"):
        fdata.load_data(allow_download=False)
    # A closed port on loopback: the downloader must say "cannot download", not raise URLError.
    with pytest.raises(DataError, match="cannot download .*No network"):
        fdata.download(isolated_lookup / "dl", base_url="http://127.0.0.1:9/", timeout=2)
    assert not list((isolated_lookup / "dl").glob("*.gz")), "nothing half-downloaded may remain"


def test_download_verifies_and_renames(isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch):
    """Serve fake files on loopback: good files land; a file with a wrong hash is not kept."""
    import functools
    import http.server
    import threading

    served = isolated_lookup / "served"
    fake_dataset(served)
    gz_sums = {
        n: hashlib.sha256((served / f"{n}.gz").read_bytes()).hexdigest()
        for n in fdata.FILES.values()
    }
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        monkeypatch.setattr(fdata, "GZ_SHA256", gz_sums)
        dest = fdata.download(isolated_lookup / "dl", base_url=url)
        assert sorted(p.name for p in dest.iterdir()) == sorted(
            f"{n}.gz" for n in fdata.FILES.values()
        )

        bad = {**gz_sums, "t10k-labels-idx1-ubyte": "0" * 64}
        monkeypatch.setattr(fdata, "GZ_SHA256", bad)
        (dest / "t10k-labels-idx1-ubyte.gz").unlink()
        with pytest.raises(DataError, match="wrong SHA-256; not kept"):
            fdata.download(dest, base_url=url)
        assert not (dest / "t10k-labels-idx1-ubyte.gz").exists()
        assert not [p for p in dest.iterdir() if p.name.startswith(".")], (
            "temp files must be cleaned up"
        )
    finally:
        server.shutdown()


def test_a_missing_requirement_fails_even_outside_ci(monkeypatch):
    from tests.helpers import unavailable

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="no model"):
        unavailable("no model")

"""Fashion-MNIST: find it, verify it, parse it.

Lookup order (the first folder that holds all four files wins):

1. ``data_dir`` argument, else ``$FMNIST_DATA_DIR``;
2. ``~/.keras/datasets/fashion-mnist`` (where Keras users already have it);
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``);
4. the download cache, ``$XDG_CACHE_HOME/fmnist`` (default ``~/.cache/fmnist``);
5. otherwise download the official files into the cache.

Every load verifies the SHA-256 of the **decompressed** IDX bytes: Debian recompressed its .gz
files, so the compressed hashes differ from upstream while the payloads are identical.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime import CLASS_NAMES, IMAGE_SIZE
from edge_runtime.atomic import atomic_path

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# SHA-256 of the decompressed IDX payloads (identical for upstream and Debian).
IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# SHA-256 of the official .gz files, checked on download before anything is kept.
GZ_SHA256 = {
    "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
EXPECTED_COUNTS = {"train": 60_000, "test": 10_000}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

_IDX_DTYPES = {0x08: np.uint8}
_FIX = (
    "Install it with `make data` (Debian: apt-get install dataset-fashion-mnist), "
    "or point --data-dir / FMNIST_DATA_DIR at a folder holding the four official files."
)


class DataError(Exception):
    """The dataset is missing, corrupt or unreachable. ``str()`` says what and how to fix it."""


@dataclass
class Dataset:
    """Fashion-MNIST in memory. Images are uint8 (N, 28, 28), labels uint8 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: Path
    how_found: str
    sha256: dict[str, str] = field(default_factory=dict)


def cache_dir() -> Path:
    """The folder that holds downloaded files: ``$XDG_CACHE_HOME/fmnist`` or ``~/.cache/fmnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fmnist"


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """The folders to look in, in order, each with a label saying why it is on the list.

    An explicit ``data_dir`` (or ``$FMNIST_DATA_DIR``) is the only candidate when given: a user
    who names a folder wants that folder or an error, not a silent fallback.
    """
    explicit = data_dir or os.environ.get("FMNIST_DATA_DIR")
    if explicit:
        label = "--data-dir" if data_dir else "$FMNIST_DATA_DIR"
        return [(Path(explicit).expanduser(), label)]
    return [
        (Path.home() / ".keras" / "datasets" / "fashion-mnist", "Keras cache"),
        (DEBIAN_DIR, "Debian package dataset-fashion-mnist"),
        (cache_dir(), "download cache"),
    ]


def _file_in(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _holds_dataset(folder: Path) -> bool:
    return all(_file_in(folder, name) for name in FILES.values())


def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str] | None:
    """Return the first candidate folder holding all four files, with its label, or None."""
    candidates = candidate_dirs(data_dir)
    for folder, label in candidates:
        if _holds_dataset(folder):
            return folder, label
    if data_dir or os.environ.get("FMNIST_DATA_DIR"):
        folder, label = candidates[0]
        missing = [n for n in FILES.values() if not _file_in(folder, n)]
        raise DataError(f"{folder} (from {label}) lacks {', '.join(missing)} (.gz or raw). {_FIX}")
    return None


def read_payload(path: Path) -> bytes:
    """Read an IDX file, decompressing it if it ends in .gz.

    Raises:
        DataError: The file is unreadable, or the gzip stream is truncated or corrupt.
    """
    try:
        raw = path.read_bytes()
        if path.suffix != ".gz":
            return raw
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(
            f"{path}: truncated gzip file (the download or copy was cut short). "
            "Delete it and run `make data` again."
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(
            f"{path}: corrupt gzip file ({e}). Delete it and run `make data` again."
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}).") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an IDX payload (the format of MNIST and Fashion-MNIST).

    Layout: two zero bytes, a dtype code (0x08 = uint8), the number of dimensions, then each
    dimension as a big-endian uint32, then the values in C order.

    Args:
        data: The decompressed file contents.
        name: What to call the data in error messages.

    Returns:
        A read-only-safe copy as a numpy array of the declared shape.

    Raises:
        DataError: Bad magic, unsupported dtype, or a length that does not match the dims.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}).")
    dtype = _IDX_DTYPES.get(data[2])
    if dtype is None:
        raise DataError(
            f"{name}: unsupported IDX dtype 0x{data[2]:02x} (only 0x08 uint8 is used here)."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: IDX header truncated or declares {ndim} dimensions.")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{name}: IDX declares shape {dims} ({expected:,} bytes) but holds {len(data):,} bytes."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).copy()


def _check_arrays(images: np.ndarray, labels: np.ndarray, split: str) -> None:
    n = EXPECTED_COUNTS[split]
    if images.shape != (n, IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{split} images have shape {images.shape}, expected ({n}, 28, 28).")
    if labels.shape != (n,):
        raise DataError(f"{split} labels have shape {labels.shape}, expected ({n},).")
    if labels.max() >= len(CLASS_NAMES):
        raise DataError(
            f"{split} labels hold class {labels.max()}, expected 0-{len(CLASS_NAMES) - 1}."
        )


def load_from(folder: Path, how_found: str = "given") -> Dataset:
    """Load and verify the four files in ``folder``.

    Raises:
        DataError: A file is missing, corrupt, or fails its checksum.
    """
    arrays: dict[str, np.ndarray] = {}
    hashes: dict[str, str] = {}
    for key, name in FILES.items():
        path = _file_in(folder, name)
        if path is None:
            raise DataError(f"{folder}: missing {name}(.gz). {_FIX}")
        payload = read_payload(path)
        digest = hashlib.sha256(payload).hexdigest()
        if digest != IDX_SHA256[name]:
            raise DataError(
                f"{path}: SHA-256 of the decompressed data is {digest[:16]}..., expected "
                f"{IDX_SHA256[name][:16]}... It is not the genuine Fashion-MNIST file (wrong file, "
                "or damaged). Delete it and run `make data` again."
            )
        hashes[name] = digest
        arrays[key] = parse_idx(payload, str(path))
    for split in ("train", "test"):
        _check_arrays(arrays[f"{split}_images"], arrays[f"{split}_labels"], split)
    return Dataset(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        source=folder,
        how_found=how_found,
        sha256=hashes,
    )


def _progress(name: str, done: int, total: int) -> None:
    if total > 0:
        width = 30
        filled = int(width * done / total)
        print(
            f"\r  {name:<28} [{'#' * filled}{'.' * (width - filled)}] {done / 1e6:5.1f}/{total / 1e6:.1f} MB",
            end="",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(f"\r  {name:<28} {done / 1e6:5.1f} MB", end="", file=sys.stderr, flush=True)


def download(
    dest: Path | None = None, *, base_url: str | None = None, timeout: float = 30.0
) -> Path:
    """Download the four official .gz files into ``dest`` (default: the cache), verifying each.

    Each file goes to a temporary name, is checked against the official .gz SHA-256 and then
    renamed, so an interrupted download never leaves a file that looks complete.

    Args:
        dest: The folder to download into.
        base_url: Where the four files are: ``$FMNIST_DATA_URL`` (a mirror, for machines that
            cannot reach the official host) or else :data:`DOWNLOAD_URL`. Whatever the
            source, the files must have the official SHA-256.
        timeout: Seconds to wait for the server.

    Raises:
        DataError: No network, an HTTP error, or a checksum mismatch.
    """
    dest = dest or cache_dir()
    base_url = base_url or os.environ.get("FMNIST_DATA_URL") or DOWNLOAD_URL
    print(f"Downloading Fashion-MNIST into {dest}", file=sys.stderr)
    for name in FILES.values():
        target = dest / f"{name}.gz"
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == GZ_SHA256[name]:
            continue
        url = f"{base_url.rstrip('/')}/{name}.gz"
        try:
            with (
                urllib.request.urlopen(url, timeout=timeout) as response,
                atomic_path(target) as tmp,
            ):
                total = int(response.headers.get("Content-Length") or 0)
                digest, done = hashlib.sha256(), 0
                with open(tmp, "wb") as out:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        _progress(f"{name}.gz", done, total)
                print(file=sys.stderr)
                if digest.hexdigest() != GZ_SHA256[name]:
                    raise DataError(
                        f"{url}: downloaded file has the wrong SHA-256; not kept. Try again."
                    )
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            raise DataError(f"cannot download {url} ({reason}). No network? {_FIX}") from None
    return dest


def load_data(
    data_dir: str | os.PathLike[str] | None = None, allow_download: bool = True
) -> Dataset:
    """Find, verify and load Fashion-MNIST. See the module docstring for the lookup order.

    Args:
        data_dir: A folder to use instead of the lookup (overrides ``$FMNIST_DATA_DIR``).
        allow_download: Whether step 5 (download) may run when nothing is found locally.

    Returns:
        The verified dataset.

    Raises:
        DataError: With a one-line message saying what is wrong and how to fix it.
    """
    found = find_data_dir(data_dir)
    if found is None:
        if not allow_download:
            raise DataError(
                f"Fashion-MNIST not found in any of: "
                f"{', '.join(str(d) for d, _ in candidate_dirs())}. {_FIX}"
            )
        found = (download(), "downloaded")
    folder, how_found = found
    return load_from(folder, how_found)


def class_counts(labels: np.ndarray) -> np.ndarray:
    """Number of examples per class id, as an int array of length 10."""
    return np.bincount(labels, minlength=len(CLASS_NAMES))


def stratified_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Pick ``count`` indices with classes as balanced as possible, reproducibly.

    Args:
        labels: Class id per example.
        count: How many indices to pick (≤ len(labels)).
        seed: Seed for numpy's generator.

    Returns:
        Sorted int64 indices into ``labels``.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = np.full(len(classes), count // len(classes))
    per_class[: count % len(classes)] += 1
    picked = [
        rng.permutation(np.flatnonzero(labels == c))[:n]
        for c, n in zip(classes, per_class, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def summary(data: Dataset) -> dict[str, object]:
    """Where the data came from and its counts per class, JSON-ready (for metrics.json)."""
    return {
        "source": str(data.source),
        "how_found": data.how_found,
        "sha256_verified": sorted(data.sha256),
        "train_counts": class_counts(data.y_train).tolist(),
        "test_counts": class_counts(data.y_test).tolist(),
    }


def describe_data(data_dir: str | os.PathLike[str] | None = None) -> str:
    """A human-readable account of the dataset: source, checksums and counts per class.

    Never downloads: this is how ``make data`` tells whether the data is already here.
    """
    data = load_data(data_dir, allow_download=False)
    train, test = class_counts(data.y_train), class_counts(data.y_test)
    lines = [
        f"source: {data.source} ({data.how_found})",
        "checksums (SHA-256 of decompressed IDX): verified",
    ]
    lines += [f"  {name:<26} {digest}" for name, digest in data.sha256.items()]
    lines += [
        f"train: {len(data.y_train):,} images   test: {len(data.y_test):,} images",
        f"{'class':<14}{'train':>8}{'test':>8}",
    ]
    lines += [f"{n:<14}{a:>8}{b:>8}" for n, a, b in zip(CLASS_NAMES, train, test, strict=True)]
    return "\n".join(lines)

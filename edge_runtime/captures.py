"""Captures: what the device was unsure of, kept on its own disk to be labelled and trained on.

A capture is a folder of three files, ``frame.jpg`` (the frame or upload, as it came),
``seen.png`` (the 28×28 image the model saw) and ``capture.json`` (:class:`Capture`: when, from
where, which model, its top 3). It is written as a hidden temporary folder and renamed into
place, so a kill at any moment leaves either a whole capture or a temporary folder that the
next :class:`CaptureStore` removes, never part of one.

Layout under the capture folder ``DIR``::

    DIR/<id>/                        unlabelled
    DIR/labelled/<photo folder>/<id>/   labelled (the layout ``fmnist-train fit --photos`` reads)

The photo folders are :data:`edge_runtime.vocab.PHOTO_FOLDERS` (``shirt``, ``shoes``, ...,
``none`` for "none of these"). The disk is bounded: past ``max_bytes`` the oldest unlabelled
captures go first, labelled ones never. A full disk (or any write error) stops capturing, says
so once, and the server goes on answering.

Call order: make one :class:`CaptureStore` per folder; :meth:`CaptureStore.save` from any thread
(a lock orders them); :class:`CameraCapture` decides which camera frames are worth saving.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_runtime.classifier import Prediction
from edge_runtime.json_input import parse_json, wrong_field
from edge_runtime.vocab import PHOTO_FOLDERS, label_folder

LOG = logging.getLogger("uvicorn.error")
FRAME, SEEN, RECORD = "frame.jpg", "seen.png", "capture.json"
LABELLED = "labelled"
TMP_PREFIX = ".tmp-"
"""A capture being written is the folder TMP_PREFIX + its id, renamed to its id when whole."""
ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{8}\Z")
"""What a capture id looks like: when (UTC) and 32 random bits, ``20261201T093012-1a2b3c4d``."""
JPEG_QUALITY = 90
MIN_INTERVAL_S = 1.0
"""A camera saves at most one capture per this many seconds."""
SAME_SCENE = 4.0
"""Mean absolute difference (0–255) of two 32×24 greyscale thumbnails below which two frames
are the same still scene: a camera saves a scene once, however long it is unsure of it."""


class CaptureError(ValueError):
    """A capture request that cannot be met. ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, kw_only=True)
class Capture:
    """One capture's record (``capture.json``).

    Attributes:
        id: Its id (:data:`ID`).
        time: When it was saved (Unix seconds).
        source: Where it came from: ``upload``, or the camera's ``--source``.
        model_sha256: SHA-256 of the model that was unsure.
        top_k: That model's best three: ``[{"label", "class_id", "score"}, ...]``.
        label: The photo folder it is filed in, once labelled; None before.
        bytes: The three files' size on disk.
    """

    id: str
    time: float
    source: str
    model_sha256: str
    top_k: tuple[dict[str, Any], ...]
    label: str | None = None
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "top_k": list(self.top_k)}

    @classmethod
    def from_json(cls, data: Any) -> Capture:
        """Read a record, checking each field's type (the folder may hold hand-edited ones).

        Raises:
            ValueError: Not a capture record.
        """
        if not isinstance(data, dict) or not isinstance(data.get("top_k"), list):
            raise ValueError("not a capture record")
        values = {**data, "top_k": tuple(data["top_k"])}
        capture = cls(**values)
        if (
            wrong_field(cls, values)
            or not ID.match(capture.id)
            or not all(isinstance(t, dict) for t in capture.top_k)
        ):
            raise ValueError("a capture record with a field of the wrong type")
        return capture


@dataclass(frozen=True)
class CaptureState:
    """Whether the store is capturing: ``on``, or ``stopped`` with the reason (a full disk)."""

    state: str = "on"
    error: str | None = None


def jpeg_of(image: np.ndarray | Image.Image) -> bytes:
    """An RGB array or Pillow image as JPEG bytes."""
    picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def png_of(pixels: np.ndarray) -> bytes:
    """A 28×28 (or 28×28×1) uint8 image as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.squeeze(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


class CaptureStore:
    """The captures in one folder: save, list, label, delete, within a disk budget.

    Args:
        root: The capture folder (made if missing).
        max_bytes: The budget for all captures, labelled ones included.
    """

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.state = CaptureState()
        self._lock = threading.Lock()
        self._captures: dict[str, Capture] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f"{TMP_PREFIX}*"):
            # A kill mid-write leaves a temporary folder, never a capture: remove it (only a
            # folder named as save() names them; anything else here is not ours to delete).
            if ID.match(stale.name.removeprefix(TMP_PREFIX)) and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        for folder in self._capture_folders():
            try:
                capture = Capture.from_json(parse_json((folder / RECORD).read_bytes()))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not one of ours: left alone
            label = None if folder.parent == self.root else folder.parent.name
            self._captures[capture.id] = replace(capture, label=label, bytes=_folder_bytes(folder))

    def _capture_folders(self) -> Iterator[Path]:
        yield from (p for p in self.root.iterdir() if ID.match(p.name) and p.is_dir())
        labelled = self.root / LABELLED
        if labelled.is_dir():
            for folder in labelled.iterdir():
                if folder.name in PHOTO_FOLDERS and folder.is_dir():
                    yield from (p for p in folder.iterdir() if ID.match(p.name) and p.is_dir())

    @property
    def bytes(self) -> int:
        """The size of every capture, labelled ones included."""
        return sum(c.bytes for c in self._captures.values())

    def count(self, *, labelled: bool) -> int:
        return sum((c.label is not None) == labelled for c in self._captures.values())

    def folder(self, capture: Capture) -> Path:
        """Where ``capture``'s files are."""
        if capture.label is None:
            return self.root / capture.id
        return self.root / LABELLED / capture.label / capture.id

    # --- saving ---------------------------------------------------------------------------------

    def save(
        self,
        *,
        frame_jpeg: bytes,
        seen: np.ndarray,
        prediction: Prediction,
        source: str,
        model_sha256: str,
    ) -> Capture | None:
        """Write a capture atomically, then keep the folder within its budget.

        Args:
            frame_jpeg: The frame or upload as JPEG (see :func:`jpeg_of`).
            seen: The 28×28 model input it became.
            prediction: What the model answered, with its top 3.
            source: ``upload``, or the camera's ``--source`` text.
            model_sha256: The model's SHA-256.

        Returns:
            The capture, or None when capturing has stopped (a full disk) or the budget is
            taken by labelled captures alone.
        """
        with self._lock:
            if self.state.state != "on":
                return None
            now = time.time()
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
            capture = Capture(
                id=f"{stamp}-{secrets.token_hex(4)}",
                time=round(now, 3),
                source=source,
                model_sha256=model_sha256,
                top_k=tuple(prediction.as_json()["top_k"][:3]),
            )
            tmp = self.root / f"{TMP_PREFIX}{capture.id}"
            try:
                tmp.mkdir()
                seen_png = png_of(seen)
                _write(tmp / FRAME, frame_jpeg)
                _write(tmp / SEEN, seen_png)
                capture = replace(capture, bytes=len(frame_jpeg) + len(seen_png))
                _write(tmp / RECORD, json.dumps(capture.to_json(), indent=1).encode())
                capture = replace(capture, bytes=_folder_bytes(tmp))  # the record included
                os.replace(tmp, self.root / capture.id)
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                self._stop(e)
                return None
            self._captures[capture.id] = capture
            return capture if self._within_budget(capture.id) else None

    def _stop(self, error: OSError) -> None:
        """Stop capturing after a write failed (a full disk): said once, in the log."""
        reason = os.strerror(error.errno) if error.errno else str(error)
        self.state = CaptureState("stopped", f"capturing stopped: {reason} in {self.root}")
        LOG.warning("%s; the server goes on answering", self.state.error)

    def _within_budget(self, newest: str) -> bool:
        """Drop the oldest unlabelled captures until all fit ``max_bytes``; if labelled ones
        alone do not fit, drop the newest too. Returns whether the newest was kept."""
        unlabelled = sorted(
            (c for c in self._captures.values() if c.label is None and c.id != newest),
            key=lambda c: c.time,
        )
        while self.bytes > self.max_bytes and unlabelled:
            self._remove(unlabelled.pop(0))
        if self.bytes > self.max_bytes:
            self._remove(self._captures[newest])
            return False
        return True

    def _remove(self, capture: Capture) -> None:
        shutil.rmtree(self.folder(capture), ignore_errors=True)
        self._captures.pop(capture.id, None)

    # --- the label API --------------------------------------------------------------------------

    def get(self, capture_id: str) -> Capture:
        """The capture ``capture_id`` names.

        Raises:
            CaptureError: 400 for a string that is not a capture id (no path can come of it),
                404 for an id that is not here.
        """
        if not isinstance(capture_id, str) or not ID.match(capture_id):
            raise CaptureError(400, "not a capture id (expected like 20261201T093012-1a2b3c4d)")
        capture = self._captures.get(capture_id)
        if capture is None:
            raise CaptureError(404, f"no capture {capture_id}")
        return capture

    def listing(self, *, labelled: bool, limit: int) -> list[Capture]:
        """The newest ``limit`` captures, labelled or not."""
        chosen = [c for c in self._captures.values() if (c.label is not None) == labelled]
        return sorted(chosen, key=lambda c: c.time, reverse=True)[:limit]

    def file(self, capture_id: str, name: str) -> Path:
        """The path of one of a capture's files (``frame.jpg`` or ``seen.png``).

        Raises:
            CaptureError: Not a capture, or not one of its images (404).
        """
        capture = self.get(capture_id)
        if name not in (FRAME, SEEN):
            raise CaptureError(404, f"a capture has {FRAME} and {SEEN}, not {name[:64]!r}")
        path = self.folder(capture) / name
        if not path.is_file():  # removed behind the server's back
            raise CaptureError(404, f"capture {capture_id} has no {name} any more")
        return path

    def label(self, capture_id: str, label: str) -> Capture:
        """File a capture under the photo folder of ``label``: a class name (``Sandal`` goes to
        ``shoes``), a photo folder's own name, or ``none`` ("none of these").

        Raises:
            CaptureError: A bad or unknown id, or a label that is not a class (4xx).
        """
        if not isinstance(label, str):
            raise CaptureError(400, "'label' must be a class name, or 'none'")
        try:
            folder = label if label in PHOTO_FOLDERS else label_folder(label).name
        except KeyError:
            raise CaptureError(
                422, f"unknown label {label[:64]!r}: a class name, a photo folder, or 'none'"
            ) from None
        with self._lock:
            capture = self.get(capture_id)
            labelled = replace(capture, label=folder)
            source, target = self.folder(capture), self.folder(labelled)
            if not source.is_dir():
                # Removed behind the server's back (by hand, or an rsync --remove-source-files).
                del self._captures[capture.id]
                raise CaptureError(404, f"capture {capture.id} is no longer on disk")
            if source != target:
                target.parent.mkdir(parents=True, exist_ok=True)
                # The folder is the truth; its record follows (both atomic renames).
                os.replace(source, target)
            record = target / f".{RECORD}.tmp"
            _write(record, json.dumps(labelled.to_json(), indent=1).encode())
            os.replace(record, target / RECORD)
            labelled = replace(labelled, bytes=_folder_bytes(target))
            self._captures[capture.id] = labelled
            return labelled

    def delete(self, capture_id: str) -> Capture:
        """Remove a capture, labelled or not.

        Raises:
            CaptureError: A bad or unknown id (4xx).
        """
        with self._lock:
            capture = self.get(capture_id)
            self._remove(capture)
            return capture


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A 32×24 greyscale float thumbnail of an RGB frame, to tell scenes apart."""
    small = Image.fromarray(frame).convert("L").resize((32, 24), Image.Resampling.BOX)
    return np.asarray(small, np.float32)


class CameraCapture:
    """Which camera frames to keep: unsure ones, at most one a second, a still scene once.

    Args:
        store: Where captures go.
        below: Save frames whose best score is below this.
        source: The camera's ``--source`` text, recorded in each capture.
    """

    def __init__(self, store: CaptureStore, *, below: float, source: str) -> None:
        self.store = store
        self.below = below
        self.source = source
        self._last_time = float("-inf")
        self._last_scene: np.ndarray | None = None

    def consider(
        self, frame: np.ndarray, seen: np.ndarray, prediction: Prediction, model_sha256: str
    ) -> Capture | None:
        """Save ``frame`` (RGB) if it is worth it; called by the camera loop for each frame."""
        if prediction.score >= self.below:
            return None
        now = time.monotonic()
        if now - self._last_time < MIN_INTERVAL_S:
            return None
        scene = thumbnail(frame)
        if self._last_scene is not None and np.abs(scene - self._last_scene).mean() < SAME_SCENE:
            return None
        capture = self.store.save(
            frame_jpeg=jpeg_of(frame),
            seen=seen,
            prediction=prediction,
            source=self.source,
            model_sha256=model_sha256,
        )
        if capture is not None:
            self._last_time, self._last_scene = now, scene
        return capture

"""The camera behind ``fmnist-edge serve``: a thread reads :func:`classify_frames` and publishes
each result (and, while someone watches, the annotated JPEG) to a :class:`FrameHub`.

Threads: the camera thread owns its own :class:`Classifier` (an interpreter is not thread-safe,
and the API's classifier belongs to the event loop). The hub is written by the camera thread and
read by coroutines on the event loop; the loop is woken with ``call_soon_threadsafe``.

A camera that fails to open, or stops delivering frames, is retried with exponential backoff
while the API keeps serving; a video file that ends is over (unless it loops).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.serve.metrics import Metrics
from edge_runtime.webcam import FrameResult, annotate, classify_frames

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Waits before each retry of a camera that failed; the last repeats."""

JPEG_QUALITY = 80


@dataclass(frozen=True)
class CameraState:
    """What the camera is doing.

    Attributes:
        state: ``starting``, ``up`` (frames arrive), ``down`` (failed; retrying) or ``ended`` (a
            video file finished, or the server is stopping).
        error: Why it is down, one line.
        retry_at: When the next attempt starts (``time.time()``), while down.
        attempts: Times the source was opened.
    """

    state: str = "starting"
    error: str | None = None
    retry_at: float | None = None
    attempts: int = 0

    def as_json(self) -> dict[str, object]:
        retry = None if self.retry_at is None else max(0.0, round(self.retry_at - time.time(), 2))
        return {
            "state": self.state,
            "error": self.error,
            "retry_in_s": retry,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class Snapshot:
    """The latest frame: its number in the hub, its result, the annotated JPEG (only while a
    stream is watched) and when it was classified (``time.time()``)."""

    seq: int
    result: FrameResult | None = None
    jpeg: bytes | None = None
    timestamp: float | None = None


class FrameHub:
    """The latest camera frame, written by one thread and awaited by many coroutines.

    Create it on the event loop; :meth:`publish` may then be called from any thread.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self.latest = Snapshot(0)
        self.camera = CameraState()
        self.viewers = 0  # open MJPEG streams; the camera encodes JPEGs only while > 0
        self.closed = False

    def publish(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the latest and wake its readers (any thread)."""
        self.latest = snapshot
        self._loop.call_soon_threadsafe(self._wake)

    def close(self) -> None:
        """End every stream (any thread): the server is stopping."""
        self.closed = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next_jpeg(self, after: int) -> Snapshot | None:
        """Wait for a frame newer than ``after`` that carries a JPEG; None once closed."""
        while not self.closed:
            snapshot = self.latest
            if snapshot.seq > after and snapshot.jpeg is not None:
                return snapshot
            await self._event.wait()
        return None


def one_line(error: BaseException) -> str:
    """An exception as one line: its message's first line, or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def encode_jpeg(frame_rgb: np.ndarray, result: FrameResult) -> bytes:
    """The annotated frame (label, score, FPS, top-3 bars) as JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(
        ".jpg", annotate(frame_rgb, result), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


class CameraWorker(threading.Thread):
    """Classify a source's frames until stopped, reopening it with backoff when it fails.

    Args:
        open_source: Opens the source: returns an iterator of RGB frames (closed to release
            the camera), or raises a one-line exception.
        ends: Whether the source running out is the end (a video file) rather than a camera
            that was lost (retried).
        classifier: This thread's own model (a :class:`Classifier`, or the server's
            :class:`~edge_runtime.serve.models.CameraModel`, which follows swaps).
        hub: Where results go.
        metrics: The server's metrics.
        smooth: Frames to average probabilities over.
        on_result: Called with each ``(result, RGB frame)`` in this thread (captures).
    """

    def __init__(
        self,
        open_source: Callable[[], Iterator[np.ndarray]],
        *,
        ends: bool,
        classifier: Any,
        hub: FrameHub,
        metrics: Metrics,
        smooth: int = 1,
        on_result: Callable[[FrameResult, np.ndarray], object] | None = None,
    ) -> None:
        super().__init__(name="fmnist-camera", daemon=True)
        self.open_source = open_source
        self.ends = ends
        self.classifier = classifier
        self.hub = hub
        self.metrics = metrics
        self.smooth = smooth
        self.on_result = on_result
        self._stopping = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop, and wait for it to release the camera."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def _set(
        self,
        state: str,
        *,
        error: str | None = None,
        retry_at: float | None = None,
        opened: bool = False,
    ) -> None:
        attempts = self.hub.camera.attempts + (1 if opened else 0)
        self.hub.camera = CameraState(state, error, retry_at, attempts)
        self.metrics.camera_up.set(1 if state == "up" else 0)

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            delivered = self._stream()
            if self._stopping.is_set():
                break
            if delivered and self.ends:
                self._set("ended")
                return
            failures = 0 if delivered else failures + 1
            wait = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            self._set(
                "down",
                error=self.hub.camera.error or "the camera stopped delivering frames",
                retry_at=time.time() + wait,
            )
            self._stopping.wait(wait)
        self._set("ended")

    def _stream(self) -> int:
        """Open the source and classify until it ends, fails or the thread is stopped.

        Returns:
            Frames delivered (0 when it could not be opened, with the reason in the state).
        """
        self._set("starting", opened=True)
        try:
            frames = self.open_source()
        except Exception as e:  # noqa: BLE001 - any failure to open is "down, retrying"
            self._set("down", error=one_line(e))
            return 0
        delivered = 0
        try:
            for result, frame in classify_frames(self.classifier, frames, smooth=self.smooth):
                if delivered == 0:
                    self._set("up")
                delivered += 1
                self.metrics.frames.inc()
                self.metrics.camera_fps.set(result.fps)
                self.metrics.answered(result.prediction, "camera")
                if self.on_result is not None:
                    self.on_result(result, frame)
                jpeg = encode_jpeg(frame, result) if self.hub.viewers else None
                self.hub.publish(
                    Snapshot(self.hub.latest.seq + 1, result, jpeg, timestamp=time.time())
                )
                if self._stopping.is_set():
                    break
        except Exception as e:  # noqa: BLE001 - a camera failing mid-run is retried, not fatal
            self._set("down", error=one_line(e))
        finally:
            frames.close()
        return delivered

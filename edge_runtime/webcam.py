"""``fmnist-edge webcam``: classify a live camera or a video file, with or without a display.

Frames come from an :class:`edge_runtime.sources.Source` (a camera, the Pi camera, a network
stream, a video file or a folder of photos), always as **RGB**, which is what
:class:`edge_runtime.classifier.Classifier` expects. :func:`classify_frames` is the one frame
loop: the printer and window here, and the server's camera thread, all read it. OpenCV is
imported lazily, so ``fmnist-edge classify`` never loads it.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.captures import CameraCapture
from edge_runtime.classifier import Classifier, Prediction
from edge_runtime.options import WebcamOptions
from edge_runtime.preprocess import model_input
from edge_runtime.sources import SourceError, bgr_to_rgb, opencv


def _gui(window: str):  # noqa: ANN202 - the cv2 module, or None when it has no GUI
    """OpenCV with a usable window, or None (with a note) when this build or session has none."""
    cv2 = opencv()
    try:
        cv2.namedWindow(window)
    except cv2.error:
        print(
            "note: this OpenCV build has no GUI (opencv-python-headless) or no display; "
            "running headless. For a window: pip install 'opencv-python<=4.11.0.86'",
            file=sys.stderr,
            flush=True,
        )
        return None
    return cv2


@dataclass(frozen=True)
class FrameResult:
    """The classification of one camera frame.

    Attributes:
        frame: 1-based frame number.
        prediction: The (smoothed) result, with the top 3 classes.
        fps: Frames per second over the last :data:`FPS_WINDOW` frames.
        seen: The 28×28 uint8 image the model saw of this frame.
    """

    frame: int
    prediction: Prediction
    fps: float
    seen: np.ndarray

    def as_json(self) -> dict[str, object]:
        """The fields ``fmnist-edge webcam --json`` prints for a frame."""
        return {
            "frame": self.frame,
            "label": self.prediction.label,
            "class_id": self.prediction.class_id,
            "score": round(self.prediction.score, 6),
            "not_sure": not self.prediction.sure,
            "fps": round(self.fps, 1),
        }


FPS_WINDOW = 30
"""Frames over which the live frame rate is measured."""


def crop(frame: np.ndarray, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    """The ``roi`` = (x, y, w, h) box of ``frame`` in pixels, or the whole frame for None.

    Raises:
        ValueError: The box lies outside the frame.
    """
    if roi is None:
        return frame
    x, y, w, h = roi
    box = frame[y : y + h, x : x + w]
    if box.size == 0:
        height, width = frame.shape[:2]
        raise ValueError(f"region of interest x={x}, y={y} lies outside the {width}x{height} frame")
    return box


def classify_frames(
    classifier: Classifier,
    frames: Iterable[np.ndarray],
    *,
    roi: tuple[int, int, int, int] | None = None,
    smooth: int = 1,
) -> Iterator[tuple[FrameResult, np.ndarray]]:
    """The one frame loop: classify each frame as it arrives. Every camera consumer reads this.

    Args:
        classifier: The model (anything with a Classifier's ``probabilities`` and
            ``prediction``). It is only called from the thread iterating this generator.
        frames: RGB uint8 (H, W, 3) frames, e.g. from :meth:`edge_runtime.sources.Source.open`.
        roi: Classify only this (x, y, w, h) box of each frame, in pixels.
        smooth: Average probabilities over the last N frames so the label does not flicker.

    Yields:
        ``(result, frame)``: the frame's result and the whole RGB frame it came from.

    Raises:
        ValueError: ``roi`` lies outside the frames.
    """
    recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, smooth))
    times: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)
    for index, frame in enumerate(frames, 1):
        seen = model_input([crop(frame, roi)])
        recent.append(classifier.probabilities(seen)[0])
        probs = np.mean(recent, axis=0) if len(recent) > 1 else recent[0]
        times.append(time.perf_counter())
        span = times[-1] - times[0]
        fps = (len(times) - 1) / span if span > 0 else 0.0
        yield FrameResult(index, classifier.prediction(probs, 3), fps, seen[0, :, :, 0]), frame


def annotate(
    frame_rgb: np.ndarray, result: FrameResult, *, roi: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Draw the label, score, FPS and top-3 bars (and the ``roi`` box) on a copy of a frame.

    Args:
        frame_rgb: The RGB frame, left untouched.
        result: Its result from :func:`classify_frames`.
        roi: The (x, y, w, h) box that was classified, outlined when given.

    Returns:
        A **BGR** uint8 frame, ready for ``cv2.imshow`` or ``cv2.imencode``.
    """
    cv2 = opencv()
    canvas = bgr_to_rgb(frame_rgb)  # a new BGR array: the caller's frame is not drawn on
    best = result.prediction
    if roi is not None:
        x, y, w, h = roi
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (255, 200, 0), 2)
    cv2.putText(
        canvas,
        f"{best.answer} {best.score:.0%}  {result.fps:.0f} FPS",
        (10, 30),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.9,
        (0, 255, 0),
        2,
    )
    for rank, (label, _, score) in enumerate(best.top_k):
        y = 60 + rank * 24
        cv2.rectangle(canvas, (10, y - 14), (10 + int(200 * score), y + 4), (0, 200, 255), -1)
        cv2.putText(canvas, label, (220, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return canvas


@dataclass
class Summary:
    """What a webcam run prints at the end."""

    frames: int = 0
    seconds: float = 0.0
    labels: collections.Counter[str] = field(default_factory=collections.Counter)
    ended_by: str = "end of stream"
    captures: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        histogram = ", ".join(f"{label} {n}" for label, n in self.labels.most_common())
        saved = f"; {self.captures} captures saved" if self.captures else ""
        return (
            f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), "
            f"ended by {self.ended_by}; labels: {histogram or 'none'}{saved}"
        )


def _camera_capture(options: WebcamOptions, classifier: Classifier) -> CameraCapture | None:
    """What saves this run's unsure frames, when ``--capture`` asks for it."""
    store = options.capture_store()
    if store is None:
        return None
    below = options.capture_threshold(classifier)
    if below is None:
        print(
            "note: the model has no 'not sure' threshold; give --capture-below to save frames",
            file=sys.stderr,
            flush=True,
        )
        return None
    return CameraCapture(store, below=below, source=str(options.source))


PRINT_INTERVAL_S = 0.5
"""Headless text output prints at most one line per this many seconds, so it stays readable."""


def run_webcam(options: WebcamOptions) -> Summary:
    """Classify frames until the source ends, ``max_frames`` is reached, q, or Ctrl-C.

    Call order: load the model → open the source → read :func:`classify_frames` and print
    (JSON, text) or show (window) each result, saving the unsure frames with ``capture`` →
    print the summary on stderr.

    Returns:
        The run's summary.

    Raises:
        SourceError, ModelError, RuntimeMissingError, ValueError: One line each.
    """
    classifier = options.load()
    capture = _camera_capture(options, classifier)
    headless = options.headless
    if headless is None:
        headless = not os.environ.get("DISPLAY")
    frames = options.source.open()
    window = "fmnist-edge"
    cv2 = None if headless else _gui(window)
    summary = Summary()
    start = time.perf_counter()
    last_print = float("-inf")  # the first frame always prints
    try:
        for result, frame in classify_frames(
            classifier, frames, roi=options.roi, smooth=options.smooth
        ):
            summary.frames += 1
            summary.labels[result.prediction.answer] += 1
            if capture is not None and capture.consider(
                frame, result.seen, result.prediction, classifier.sidecar.tflite_sha256
            ):
                summary.captures += 1
            now = time.perf_counter()
            if options.as_json:
                print(json.dumps(result.as_json()))
            elif cv2 is None and now - last_print >= PRINT_INTERVAL_S:
                best = result.prediction
                print(
                    f"frame {result.frame}: {best.answer} ({best.score:.0%}), {result.fps:.0f} FPS",
                    flush=True,
                )
                last_print = now
            if cv2 is not None:
                cv2.imshow(window, annotate(frame, result, roi=options.roi))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    summary.ended_by = "the q key"
                    break
            if options.max_frames and summary.frames >= options.max_frames:
                summary.ended_by = f"--max-frames {options.max_frames}"
                break
    except KeyboardInterrupt:
        summary.ended_by = "Ctrl-C"
    finally:
        summary.seconds = time.perf_counter() - start
        frames.close()
        if cv2 is not None:
            cv2.destroyAllWindows()
    if summary.frames == 0 and summary.ended_by == "end of stream":
        raise SourceError(
            f"{options.source}: delivered no frames (on a Pi CSI camera use --source picamera)"
        )
    print(summary.text(), file=sys.stderr, flush=True)
    return summary

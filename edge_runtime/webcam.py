"""``fmnist-edge webcam``: classify a live camera or a video file, with or without a display.

Sources: a V4L2/USB camera or a video file through OpenCV (frames arrive **BGR**), or the Pi
camera through picamera2 (asked for **RGB**). Every frame is turned into RGB before it reaches
:meth:`edge_runtime.classifier.Classifier`, which expects RGB. OpenCV and picamera2 are imported
here only, lazily, so ``fmnist-edge classify`` never loads them.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.classifier import Classifier, ModelOptions, Prediction, RuntimeMissingError
from edge_runtime.preprocess import model_input


class SourceError(RuntimeError):
    """A camera or video that cannot be opened. ``str()`` is one line."""


def opencv():  # noqa: ANN201 - the cv2 module
    """OpenCV, imported on first use.

    Raises:
        RuntimeMissingError: It is not installed, naming the extra that installs it.
    """
    # OpenCV logs its own failures (a camera index that is not there, say) to stderr; ours say
    # the same in one line. OPENCV_LOG_LEVEL set by the user still wins.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    try:
        import cv2
    except ImportError:
        raise RuntimeMissingError(
            "OpenCV is not installed: pip install '.[webcam]' (opencv-python-headless)"
        ) from None
    return cv2


def picamera2():  # noqa: ANN201 - the picamera2 module
    """picamera2 (the Pi camera's library), imported on first use.

    Raises:
        RuntimeMissingError: It is not importable, with how to install it.
    """
    try:
        import picamera2
    except ImportError:
        raise RuntimeMissingError(
            "picamera2 is not available: sudo apt install python3-picamera2, and make the venv "
            "with `python3 -m venv --system-site-packages` so it can see it"
        ) from None
    return picamera2


def camera_index(source: str) -> int | None:
    """The OpenCV camera index a source names (``"0"``), or None. ASCII digits only."""
    return int(source) if source.isascii() and source.isdigit() and len(source) < 6 else None


def is_camera(source: str) -> bool:
    """Whether ``source`` names a camera (an index, ``/dev/videoN`` or ``picamera``), not a file."""
    return camera_index(source) is not None or source.startswith("/dev/") or source == "picamera"


def check_source(source: str) -> None:
    """Fail fast on a source that cannot work: call before serving or looping over it.

    A camera is not opened here, only its library checked: one that is not there yet may come
    (USB cameras enumerate late at boot), and a server retries it. A video file must exist and
    deliver a frame now.

    Raises:
        SourceError, RuntimeMissingError: One line.
    """
    if source == "picamera":
        picamera2()
        return
    opencv()
    if is_camera(source):
        return
    frames = opencv_frames(source)
    try:
        if next(frames, None) is None:
            raise SourceError(f"{source}: delivered no frames")
    finally:
        frames.close()


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


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """Swap the channel order of an (H, W, 3) uint8 frame: OpenCV's BGR ↔ RGB.

    Done by OpenCV (SIMD): about 0.1 ms on 640×480 here, against 1.3 ms for a numpy copy of
    ``frame[:, :, ::-1]``; at 300+ FPS that was the largest cost per frame.
    """
    return opencv().cvtColor(frame, opencv().COLOR_BGR2RGB)


def _video_fps(capture, cv2) -> float:  # noqa: ANN001 - cv2.VideoCapture and the cv2 module
    """The frame rate a video file declares, or 30 when it declares none."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if fps and 1 <= fps <= 240 else 30.0


def opencv_frames(source: str, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
    """Frames from a camera index (``0``), a device (``/dev/video0``), a video file or an image
    sequence (``frame_%03d.png``), as **RGB** uint8 (H, W, 3).

    Args:
        source: What to open (see above).
        pace: Deliver a file's frames at the frame rate it declares, as a camera would, instead
            of as fast as they decode. Cameras deliver at their own rate either way.
        loop: Start a file over when it ends. A camera that stops delivering frames ends the
            iteration either way.

    Raises:
        SourceError: The source cannot be opened.
    """
    cv2 = opencv()
    index = camera_index(source)
    target: int | str = source if index is None else index
    # Image sequences ("frame_%03d.png") are valid OpenCV sources but no single file exists.
    is_sequence = isinstance(target, str) and "%" in target
    is_file = not is_camera(source)
    if is_file and not (is_sequence or Path(target).is_file()):
        raise SourceError(f"{source}: no such video file or camera")
    while True:
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            raise SourceError(f"{source}: cannot open (not a camera, or an unreadable video)")
        interval = 1.0 / _video_fps(capture, cv2) if pace and is_file else 0.0
        delivered, due = 0, time.perf_counter()
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break  # end of file, or the camera stopped delivering frames
                if interval:
                    due += interval
                    # Sleep until the frame is due; after a stall, resume the pace from now.
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    elif delay < -1.0:
                        due = time.perf_counter()
                delivered += 1
                yield bgr_to_rgb(frame)  # OpenCV decodes to BGR
        finally:
            capture.release()
        if not (loop and is_file and delivered):
            return


def picamera_frames(size: tuple[int, int] = (640, 480)) -> Iterator[np.ndarray]:
    """Frames from the Pi camera (libcamera) as **RGB** uint8 (H, W, 3).

    Args:
        size: (width, height) in pixels.

    Raises:
        RuntimeMissingError: picamera2 is not importable, with how to install it.
    """
    camera = picamera2().Picamera2()
    # picamera2 names formats by the libcamera/DRM convention: "BGR888" is stored R,G,B in
    # memory, i.e. an RGB array for numpy ("RGB888" would hand us B,G,R).
    camera.configure(camera.create_video_configuration(main={"format": "BGR888", "size": size}))
    camera.start()
    try:
        while True:
            yield camera.capture_array()
    finally:
        camera.stop()
        camera.close()


def open_frames(source: str, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
    """RGB frames from ``source``: ``picamera``, or anything :func:`opencv_frames` opens.

    Call ``close()`` on the result when done early: that releases the camera.
    """
    if source == "picamera":
        return picamera_frames()
    return opencv_frames(source, pace=pace, loop=loop)


@dataclass(frozen=True)
class FrameResult:
    """The classification of one camera frame.

    Attributes:
        frame: 1-based frame number.
        prediction: The (smoothed) result, with the top 3 classes.
        fps: Frames per second over the last :data:`FPS_WINDOW` frames.
    """

    frame: int
    prediction: Prediction
    fps: float

    def as_json(self) -> dict[str, object]:
        """The fields ``fmnist-edge webcam --json`` prints for a frame."""
        return {
            "frame": self.frame,
            "label": self.prediction.label,
            "class_id": self.prediction.class_id,
            "score": round(self.prediction.score, 6),
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
        classifier: The model. It is only called from the thread iterating this generator.
        frames: RGB uint8 (H, W, 3) frames, e.g. from :func:`open_frames`.
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
        recent.append(classifier.probabilities(model_input([crop(frame, roi)]))[0])
        probs = np.mean(recent, axis=0) if len(recent) > 1 else recent[0]
        times.append(time.perf_counter())
        span = times[-1] - times[0]
        fps = (len(times) - 1) / span if span > 0 else 0.0
        yield FrameResult(index, classifier.prediction(probs, 3), fps), frame


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
        f"{best.label} {best.score:.0%}  {result.fps:.0f} FPS",
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

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        histogram = ", ".join(f"{label} {n}" for label, n in self.labels.most_common())
        return (
            f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), "
            f"ended by {self.ended_by}; labels: {histogram or 'none'}"
        )


@dataclass(frozen=True, kw_only=True)
class WebcamOptions(ModelOptions):
    """Options of ``fmnist-edge webcam`` (model, threads and runtime: see ModelOptions).

    Attributes:
        source: ``0`` (camera index), ``/dev/videoN``, a video file, or ``picamera``.
        headless: No window; print instead. None means headless when ``$DISPLAY`` is unset.
        as_json: One ``{"frame", "label", "class_id", "score", "fps"}`` object per frame on stdout.
        max_frames: Stop after this many frames (None: until the source ends).
        roi: Classify only this (x, y, w, h) box of each frame, in pixels.
        smooth: Average probabilities over the last N frames.
    """

    source: str = "0"
    headless: bool | None = None
    as_json: bool = False
    max_frames: int | None = None
    roi: tuple[int, int, int, int] | None = None
    smooth: int = 1


PRINT_INTERVAL_S = 0.5
"""Headless text output prints at most one line per this many seconds, so it stays readable."""


def run_webcam(options: WebcamOptions) -> Summary:
    """Classify frames until the source ends, ``max_frames`` is reached, q, or Ctrl-C.

    Call order: load the model → open the source → read :func:`classify_frames` and print
    (JSON, text) or show (window) each result → print the summary on stderr.

    Returns:
        The run's summary.

    Raises:
        SourceError, ModelError, RuntimeMissingError, ValueError: One line each.
    """
    classifier = options.load()
    headless = options.headless
    if headless is None:
        headless = not os.environ.get("DISPLAY")
    frames = open_frames(options.source)
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
            summary.labels[result.prediction.label] += 1
            now = time.perf_counter()
            if options.as_json:
                print(json.dumps(result.as_json()))
            elif cv2 is None and now - last_print >= PRINT_INTERVAL_S:
                best = result.prediction
                print(
                    f"frame {result.frame}: {best.label} ({best.score:.0%}), {result.fps:.0f} FPS",
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

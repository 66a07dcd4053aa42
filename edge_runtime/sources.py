"""Where camera frames come from: a source is a type, parsed once from what the user typed.

:func:`parse_source` turns ``--source`` text into one of :class:`Camera` (an OpenCV index or a
``/dev/videoN`` device), :class:`PiCamera` (libcamera through picamera2), :class:`StreamUrl`
(an RTSP or HTTP camera that OpenCV reads, an MJPEG stream among them), :class:`VideoFile`
(or an image sequence such as ``frame_%03d.png``) and :class:`ImageFolder` (a folder of
photos). Each can :meth:`~Source.check` itself (fail fast, before a server listens),
:meth:`~Source.open` an iterator of frames, and says whether it :attr:`~Source.ends` (a file
runs out; a camera that stops delivering is lost, and retried). Every source delivers frames
as **RGB** uint8 (H, W, 3), whatever its library gives (OpenCV decodes BGR).

OpenCV and picamera2 are imported on first use only, so ``fmnist-edge classify`` loads neither.
The one frame loop that classifies these frames is :func:`edge_runtime.webcam.classify_frames`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from edge_runtime.classifier import RuntimeMissingError

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
"""URL prefixes of network cameras (OpenCV reads them through FFmpeg)."""
FOLDER_FPS = 2.0
"""Photos per second an :class:`ImageFolder` delivers when paced, as a slide show would."""
DEFAULT_FPS = 30.0
"""What a video file that declares no (or an absurd) frame rate is played at."""


class SourceError(RuntimeError):
    """A camera or video that cannot be opened. ``str()`` is one line."""


def opencv() -> ModuleType:
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
            "OpenCV is not installed: pip install '.[edge]' (opencv-python-headless)"
        ) from None
    return cv2


def picamera2() -> ModuleType:
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


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """Swap the channel order of an (H, W, 3) uint8 frame: OpenCV's BGR ↔ RGB.

    Done by OpenCV (SIMD) rather than a numpy copy of ``frame[:, :, ::-1]``: at hundreds of
    frames a second the copy was the largest cost per frame.
    """
    return opencv().cvtColor(frame, opencv().COLOR_BGR2RGB)


def _paced(frames: Iterator[np.ndarray], fps: float) -> Iterator[np.ndarray]:
    """``frames`` delivered at ``fps``, as a camera would; after a stall the pace resumes from
    now rather than rushing to catch up."""
    interval, due = 1.0 / fps, time.perf_counter()
    for frame in frames:
        due += interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:
            due = time.perf_counter()
        yield frame


def _read(capture) -> Iterator[np.ndarray]:  # noqa: ANN001 - a cv2.VideoCapture
    """BGR frames until a read fails: the end of a file, or a camera that stopped delivering."""
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def _opencv_capture(
    target: int | str, name: str, *, pace: bool, loop: bool
) -> Iterator[np.ndarray]:
    """RGB frames from ``cv2.VideoCapture(target)``: a file is paced at its declared rate when
    ``pace`` and started over when ``loop``; a camera delivers at its own rate, and ends the
    iteration when it stops delivering."""
    cv2 = opencv()
    while True:
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            raise SourceError(f"{name}: cannot open (not a camera, or an unreadable video)")
        delivered = 0
        try:
            frames = _read(capture)
            if pace:
                declared = capture.get(cv2.CAP_PROP_FPS)
                frames = _paced(frames, declared if 1 <= (declared or 0) <= 240 else DEFAULT_FPS)
            for frame in frames:
                delivered += 1
                yield bgr_to_rgb(frame)  # OpenCV decodes to BGR
        finally:
            capture.release()
        if not (loop and delivered):
            return


class Source:
    """A place frames come from. Subclasses are frozen dataclasses, so two sources are equal
    when they name the same thing, and ``str()`` gives the ``--source`` text back."""

    ends: bool = False
    """Whether running out of frames is the end (a file) rather than a lost camera (retried)."""

    def check(self) -> None:
        """Fail fast on a source that cannot work: call before serving or looping over it.

        A camera is not opened here, only its library checked: one that is not there yet may
        come (USB cameras enumerate late at boot, a network camera may still be booting), and a
        server retries it. A file must exist and deliver a frame now.

        Raises:
            SourceError, RuntimeMissingError: One line.
        """
        opencv()

    def open(self, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
        """RGB uint8 (H, W, 3) frames. Call ``close()`` on the iterator when done early: that
        releases the camera.

        Args:
            pace: Deliver a file's frames at its own rate, as a camera would, instead of as
                fast as they decode. Cameras deliver at their own rate either way.
            loop: Start a file over when it ends.

        Raises:
            SourceError, RuntimeMissingError: It cannot be opened (one line).
        """
        raise NotImplementedError

    def absolute(self) -> Source:
        """The same source, with any path made absolute (for a service's command line)."""
        return self


@dataclass(frozen=True)
class Camera(Source):
    """A V4L2/USB camera: an OpenCV index (``0``) or a device path (``/dev/video0``)."""

    device: int | str

    def __str__(self) -> str:
        return str(self.device)

    def open(self, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
        return _opencv_capture(self.device, str(self), pace=False, loop=False)


@dataclass(frozen=True)
class StreamUrl(Source):
    """A network camera OpenCV reads: ``rtsp://…``, or an HTTP MJPEG stream such as another
    ``fmnist-edge serve``'s ``/api/stream``."""

    url: str

    def __str__(self) -> str:
        return self.url

    def open(self, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
        return _opencv_capture(self.url, self.url, pace=False, loop=False)


@dataclass(frozen=True)
class PiCamera(Source):
    """The Pi camera through libcamera and picamera2, at ``size`` = (width, height) pixels."""

    size: tuple[int, int] = (640, 480)

    def __str__(self) -> str:
        return "picamera"

    def check(self) -> None:
        picamera2()

    def open(self, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
        camera = picamera2().Picamera2()
        # picamera2 names formats by the libcamera/DRM convention: "BGR888" is stored R,G,B in
        # memory, i.e. an RGB array for numpy ("RGB888" would hand us B,G,R).
        config = camera.create_video_configuration(main={"format": "BGR888", "size": self.size})
        camera.configure(config)
        camera.start()
        return self._frames(camera)

    @staticmethod
    def _frames(camera) -> Iterator[np.ndarray]:  # noqa: ANN001 - a Picamera2
        try:
            while True:
                yield camera.capture_array()
        finally:
            camera.stop()
            camera.close()


@dataclass(frozen=True)
class VideoFile(Source):
    """A video file, or an image sequence OpenCV reads (``frame_%03d.png``)."""

    path: Path
    ends = True

    def __str__(self) -> str:
        return str(self.path)

    def check(self) -> None:
        frames = self.open()
        try:
            if next(frames, None) is None:
                raise SourceError(f"{self}: delivered no frames")
        finally:
            frames.close()

    def open(self, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
        opencv()
        # An image sequence is a valid OpenCV source, but no single file of that name exists.
        if "%" not in self.path.name and not self.path.is_file():
            raise SourceError(f"{self}: no such video file or camera")
        return _opencv_capture(str(self.path), str(self), pace=pace, loop=loop)

    def absolute(self) -> Source:
        return VideoFile(self.path.resolve())


@dataclass(frozen=True)
class ImageFolder(Source):
    """The photos in a folder (any format Pillow reads, sorted by name), one frame each: run
    the camera pipeline over a set of photos. Paced at :data:`FOLDER_FPS`."""

    path: Path
    ends = True

    def __str__(self) -> str:
        return str(self.path)

    def photos(self) -> list[Path]:
        from edge_runtime.preprocess import image_files

        return image_files(self.path)

    def check(self) -> None:
        if not self.photos():
            raise SourceError(f"{self}: a folder with no image files in it")

    def open(self, *, pace: bool = False, loop: bool = False) -> Iterator[np.ndarray]:
        photos = self.photos()
        if not photos:
            raise SourceError(f"{self}: a folder with no image files in it")
        frames = self._frames(photos, loop=loop)
        return _paced(frames, FOLDER_FPS) if pace else frames

    @staticmethod
    def _frames(photos: list[Path], *, loop: bool) -> Iterator[np.ndarray]:
        from edge_runtime.preprocess import ImageError, load_image

        while True:
            delivered = 0
            for photo in photos:
                try:
                    image = load_image(photo)
                except ImageError:
                    continue  # a bad file in a folder is skipped, as classify does
                delivered += 1
                yield np.asarray(image.convert("RGB"))
            if not (loop and delivered):
                return

    def absolute(self) -> Source:
        return ImageFolder(self.path.resolve())


def parse_source(text: str) -> Source:
    """What ``--source`` text names.

    ``picamera``; ASCII digits (an OpenCV camera index); ``/dev/…`` (a V4L2 device);
    ``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` (a network camera); an existing
    folder (its photos); anything else, a video file or image sequence.
    """
    if text == "picamera":
        return PiCamera()
    if text.isascii() and text.isdigit() and len(text) < 6:
        return Camera(int(text))
    if text.startswith("/dev/"):
        return Camera(text)
    if text.lower().startswith(STREAM_SCHEMES):
        return StreamUrl(text)
    path = Path(text).expanduser()
    return ImageFolder(path) if path.is_dir() else VideoFile(path)

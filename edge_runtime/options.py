"""The options of every ``fmnist-edge`` command, one frozen dataclass each, defaults declared here.

The command line (:mod:`edge_runtime.cli`) reads its defaults from these classes, and the
libraries take them whole, so a default is written once. This module imports nothing heavy:
the CLI imports it before it knows which command runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_runtime.sources import Camera, Source
from edge_runtime.vocab import ARTIFACTS, ROUTE_MODE, model_file

if TYPE_CHECKING:
    from edge_runtime.captures import CaptureStore
    from edge_runtime.classifier import Classifier

DEFAULT_MODEL = ARTIFACTS / model_file(ROUTE_MODE)
"""The model the edge commands load when neither ``--model`` nor ``$FMNIST_MODEL`` names one."""


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """Which model a command runs, and on what. Every edge command's options extend this.

    Attributes:
        model: A .tflite file with its sidecar .json beside it.
        threads: Interpreter threads (1 is best for single images on a Pi).
        runtime: A name from :data:`edge_runtime.vocab.RUNTIMES`, or None for automatic.
        not_sure_below: Answer "not sure" when the best probability is below this (0–1; 0
            never does); None takes the threshold calibrated with the model (its sidecar's).
    """

    model: Path = DEFAULT_MODEL
    threads: int = 1
    runtime: str | None = None
    not_sure_below: float | None = None

    def load(self, model: Path | None = None) -> Classifier:
        """The model (``model``, else :attr:`model`) as a
        :class:`~edge_runtime.classifier.Classifier`, checked against its sidecar."""
        from edge_runtime.classifier import Classifier

        return Classifier.from_file(
            model or self.model,
            threads=self.threads,
            runtime=self.runtime,
            not_sure_below=self.not_sure_below,
        )


@dataclass(frozen=True, kw_only=True)
class CaptureOptions:
    """What a camera command keeps of the frames its model is unsure of
    (:mod:`edge_runtime.captures`).

    Attributes:
        capture: Save captures into this folder; None saves none.
        capture_below: Save a frame whose best score is below this (0–1); None takes the
            model's "not sure" threshold.
        capture_max_mb: The captures' disk budget in MiB: past it the oldest unlabelled ones go.
    """

    capture: Path | None = None
    capture_below: float | None = None
    capture_max_mb: float = 200.0

    def capture_store(self) -> CaptureStore | None:
        """The store for :attr:`capture`, or None."""
        from edge_runtime.captures import CaptureStore

        if self.capture is None:
            return None
        return CaptureStore(self.capture, max_bytes=int(self.capture_max_mb * 2**20))

    def capture_threshold(self, classifier: Classifier) -> float | None:
        """The score below which a camera frame is saved: :attr:`capture_below`, else the
        model's threshold (None: the model has none, so camera frames are not saved)."""
        return classifier.not_sure_below if self.capture_below is None else self.capture_below


@dataclass(frozen=True, kw_only=True)
class ClassifyOptions(ModelOptions):
    """Options of ``fmnist-edge classify`` (model, threads and runtime: see ModelOptions).

    Attributes:
        top_k: Classes to list per image (human output) / in ``top_k`` (JSON).
        as_json: One JSON object per line instead of text.
        save_preprocessed: Write the 28×28 image the model saw for each input here, as
            ``<stem>.preprocessed.png`` (PNG; a stem met again in one run gets ``-2``, ``-3``...).
    """

    top_k: int = 1
    as_json: bool = False
    save_preprocessed: Path | None = None


@dataclass(frozen=True, kw_only=True)
class WebcamOptions(ModelOptions, CaptureOptions):
    """Options of ``fmnist-edge webcam`` (the model: see ModelOptions; captures: see
    CaptureOptions).

    Attributes:
        source: Where frames come from (:func:`edge_runtime.sources.parse_source`).
        headless: No window; print instead. None means headless when ``$DISPLAY`` is unset.
        as_json: One ``{"frame", "label", "class_id", "score", "not_sure", "fps"}`` object per
            frame on stdout.
        max_frames: Stop after this many frames (None: until the source ends).
        roi: Classify only this (x, y, w, h) box of each frame, in pixels.
        smooth: Average probabilities over the last N frames.
    """

    source: Source = Camera(0)
    headless: bool | None = None
    as_json: bool = False
    max_frames: int | None = None
    roi: tuple[int, int, int, int] | None = None
    smooth: int = 1


@dataclass(frozen=True, kw_only=True)
class ServeOptions(ModelOptions, CaptureOptions):
    """Options of ``fmnist-edge serve`` (the model: see ModelOptions; captures: see
    CaptureOptions).

    Attributes:
        host: Address to listen on; 127.0.0.1 keeps it on this machine.
        port: TCP port (0: any free port).
        source: A camera to classify live (:func:`edge_runtime.sources.parse_source`), or None
            for the API and upload page only.
        loop: Start a video file over when it ends.
        token: Required as ``Authorization: Bearer TOKEN`` (or the page's cookie) on ``/api``,
            ``/v2`` (health aside) and ``/metrics``; None leaves them open.
        max_upload_mb: Request bodies over this many MiB are refused with 413.
        watch: Swap the model in when its file changes (checked once a second), as a
            ``SIGHUP`` or a ``load`` request would.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    source: Source | None = None
    loop: bool = False
    token: str | None = None
    max_upload_mb: float = 10.0
    watch: bool = False

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
    """

    model: Path = DEFAULT_MODEL
    threads: int = 1
    runtime: str | None = None

    def load(self) -> Classifier:
        """The model as a :class:`~edge_runtime.classifier.Classifier`, checked against its
        sidecar."""
        from edge_runtime.classifier import Classifier

        return Classifier.from_file(self.model, threads=self.threads, runtime=self.runtime)


@dataclass(frozen=True, kw_only=True)
class ClassifyOptions(ModelOptions):
    """Options of ``fmnist-edge classify`` (model, threads and runtime: see ModelOptions).

    Attributes:
        top_k: Classes to list per image (human output) / in ``top_k`` (JSON).
        as_json: One JSON object per line instead of text.
        save_preprocessed: Write the 28×28 image the model saw for each input here (PNG).
    """

    top_k: int = 1
    as_json: bool = False
    save_preprocessed: Path | None = None


@dataclass(frozen=True, kw_only=True)
class WebcamOptions(ModelOptions):
    """Options of ``fmnist-edge webcam`` (model, threads and runtime: see ModelOptions).

    Attributes:
        source: Where frames come from (:func:`edge_runtime.sources.parse_source`).
        headless: No window; print instead. None means headless when ``$DISPLAY`` is unset.
        as_json: One ``{"frame", "label", "class_id", "score", "fps"}`` object per frame on stdout.
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
class ServeOptions(ModelOptions):
    """Options of ``fmnist-edge serve`` (model, threads and runtime: see ModelOptions).

    Attributes:
        host: Address to listen on; 127.0.0.1 keeps it on this machine.
        port: TCP port (0: any free port).
        source: A camera to classify live (:func:`edge_runtime.sources.parse_source`), or None
            for the API and upload page only.
        loop: Start a video file over when it ends.
        token: Required as ``Authorization: Bearer TOKEN`` (or the page's cookie) on ``/api``,
            ``/v2`` (health aside) and ``/metrics``; None leaves them open.
        max_upload_mb: Request bodies over this many MiB are refused with 413.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    source: Source | None = None
    loop: bool = False
    token: str | None = None
    max_upload_mb: float = 10.0

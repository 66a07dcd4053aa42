"""The model the server answers with, swapped for a new one while it serves.

A swap is asked for by ``POST /v2/repository/models/fmnist/load``, by ``SIGHUP`` (the systemd
unit's ``ExecReload=``) or, with ``--watch``, by a change of the model file. It reads the model
and sidecar at the ``--model`` path again, and checks them before they serve anything:

1. the sidecar's SHA-256 matches the model, and it loads (:meth:`Classifier.from_file`);
2. its input and output shapes and its class labels are those of the model serving now;
3. on the known images (:mod:`edge_runtime.known`) it scores within the band of the accuracy
   its own sidecar records.

Only then does it replace the serving model, in one assignment on the event loop: a request
is answered wholly by the old model or wholly by the new one, and none fails because of a swap.
A failed check keeps the old model serving, and is logged and counted.

Threads: loading and checking run in the thread pool (the new interpreters are not shared until
the swap); the camera thread reads :class:`CameraModel`, which always calls the newest model's
camera classifier.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from edge_runtime import known
from edge_runtime.classifier import Classifier, ModelError, Prediction, RuntimeMissingError
from edge_runtime.options import ServeOptions
from edge_runtime.serve.metrics import Metrics
from edge_runtime.sidecar import Sidecar

LOG = logging.getLogger("uvicorn.error")


class SwapError(ValueError):
    """A model that was refused; the old one goes on serving. ``str()`` is one line."""


@dataclass(frozen=True)
class Loaded:
    """A model ready to serve: one classifier for the event loop, one for the camera thread.

    Attributes:
        classifier: The API's (only ever called on the event loop).
        camera: The camera thread's, when there is a camera.
        path: The model file, absolute.
        loaded_at: When it was loaded (Unix seconds).
    """

    classifier: Classifier
    camera: Classifier | None
    path: Path
    loaded_at: float

    @property
    def sidecar(self) -> Sidecar:
        assert self.classifier.sidecar is not None  # loaded from a file
        return self.classifier.sidecar

    @property
    def sha256(self) -> str:
        return self.sidecar.tflite_sha256

    @property
    def version(self) -> str:
        """Its version in the Open Inference Protocol: the first 12 hex digits of its SHA-256."""
        return self.sha256[:12]

    def info(self) -> dict[str, Any]:
        """What ``/api/info`` says of it."""
        s = self.sidecar
        return {
            "path": str(self.path),
            "quantization": s.quantization,
            "size_bytes": s.size_bytes,
            "sha256": s.tflite_sha256,
            "version": self.version,
            "loaded_at": datetime.datetime.fromtimestamp(self.loaded_at, datetime.UTC).isoformat(),
            "labels": list(self.classifier.labels),
            "input": self.classifier.input.info().to_json(),
            "output": self.classifier.output.info().to_json(),
            "test_accuracy": s.test_accuracy,
            "agreement_with_float": s.agreement_with_float,
            "not_sure_below": self.classifier.not_sure_below,
            "photos": s.photos,
        }


def load(options: ServeOptions, *, camera: bool) -> Loaded:
    """Read and load the model at ``options.model`` (blocking: call it in a thread).

    Raises:
        ModelError, RuntimeMissingError: It cannot be used.
    """
    path = Path(options.model).resolve()
    return Loaded(
        classifier=options.load(path),
        camera=options.load(path) if camera else None,
        path=path,
        loaded_at=time.time(),
    )


def check(new: Loaded, current: Loaded) -> None:
    """The checks a model passes before it replaces ``current`` (see the module docstring).

    Raises:
        SwapError: Which check failed, in one line.
    """
    a, b = new.classifier, current.classifier
    if a.labels != b.labels:
        raise SwapError(f"its labels {list(a.labels)} are not the serving model's")
    if a.input.shape[1:] != b.input.shape[1:] or a.output.shape[1:] != b.output.shape[1:]:
        raise SwapError(
            f"its input {a.input.shape} / output {a.output.shape} are not the serving model's "
            f"{b.input.shape} / {b.output.shape}"
        )
    recorded = new.sidecar.known_images
    _, _, sha = known.known_images()
    if not recorded or recorded.get("sha256") != sha:
        raise SwapError(
            "its sidecar records no accuracy on this runtime's known images: convert it with "
            "this version of fmnist-convert"
        )
    measured = known.accuracy(a)
    if abs(measured - recorded["accuracy"]) > known.BAND:
        raise SwapError(
            f"it gets {measured:.1%} of the known images right, its sidecar says "
            f"{recorded['accuracy']:.1%}: the model is not the one its sidecar describes"
        )


class ModelSlot:
    """The serving model and its swaps.

    Args:
        options: The server's options (the model path, threads, runtime, threshold).
        metrics: Where the model's identity and every swap are recorded.
        camera: Whether to load a second classifier for the camera thread.
    """

    def __init__(self, options: ServeOptions, metrics: Metrics, *, camera: bool) -> None:
        self.options = options
        self.metrics = metrics
        self.camera = camera
        self.current = load(options, camera=camera)
        self._lock = asyncio.Lock()
        self._publish()

    def _publish(self) -> None:
        c = self.current
        self.metrics.model.info(
            {
                "model": c.path.name,
                "quantization": c.sidecar.quantization,
                "sha256": c.sha256,
                "version": c.version,
                "runtime": c.classifier.runtime,
                "runtime_version": c.classifier.runtime_version,
            }
        )
        self.metrics.model_loaded.set(c.loaded_at)

    def _candidate(self) -> Loaded:
        try:
            new = load(self.options, camera=self.camera)
        except (ModelError, RuntimeMissingError) as e:
            raise SwapError(str(e)) from None
        check(new, self.current)
        return new

    async def reload(self, reason: str) -> Loaded:
        """Load the model file again, check it, and swap it in (on the event loop).

        Raises:
            SwapError: It was refused; the old model is still serving.
        """
        async with self._lock:  # one swap at a time
            try:
                new = await run_in_threadpool(self._candidate)
            except SwapError as e:
                self.metrics.reloads.labels("refused").inc()
                LOG.warning("model swap (%s) refused, still serving %s: %s",
                            reason, self.current.version, e)  # fmt: skip
                raise
            old, self.current = self.current, new
            self._publish()
            self.metrics.reloads.labels("swapped").inc()
            LOG.warning(
                "model swap (%s): %s %s → %s", reason, new.path.name, old.version, new.version
            )
            return new


class CameraModel:
    """What the camera thread classifies with: always the newest model's camera classifier.

    It offers the two calls :func:`edge_runtime.webcam.classify_frames` makes. A swap between
    them in one frame is harmless: a swap never changes the labels.
    """

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    @property
    def classifier(self) -> Classifier:
        camera = self.slot.current.camera
        assert camera is not None, "the slot was made without a camera classifier"
        return camera

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.classifier.probabilities(batch)

    def prediction(self, probs: np.ndarray, top_k: int = 1) -> Prediction:
        return self.classifier.prediction(probs, top_k)

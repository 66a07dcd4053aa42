"""Prometheus metrics of the server, in base units with Prometheus names.

Each app gets its own registry (several apps in one test process must not share counters), and
the ``endpoint`` label is the route, never the raw path: a scan of random URLs must not grow
the number of time series, so unknown paths count as ``other``.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_runtime.classifier import Prediction
from edge_runtime.serve.security import Paths

# A *_created series per counter and histogram doubles what a scrape carries for nothing a
# dashboard of this server uses.
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds. One 28×28 image takes well under a millisecond; a 12 MP photo tens of them."""
SCORE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
"""The best class's probability (0–1): finer near 1, where a confident model's answers are."""


class Metrics:
    """The server's instruments, registered in a registry of their own.

    Attributes:
        registry: What ``GET /metrics`` exposes.
        requests: ``fmnist_http_requests_total{endpoint, method, status}``.
        request_seconds: ``fmnist_http_request_duration_seconds{endpoint}``.
        inference_seconds: ``fmnist_inference_duration_seconds``: one interpreter call of the
            API (quantize, invoke, dequantize; decoding and preprocessing excluded).
        images: ``fmnist_images_classified_total``: images the API classified.
        frames: ``fmnist_camera_frames_classified_total``.
        camera_fps: ``fmnist_camera_fps``: frames per second over the last 30 frames.
        camera_up: ``fmnist_camera_up``: 1 while frames arrive, else 0.
        model: ``fmnist_model_info{model, quantization, sha256, version, runtime,
            runtime_version} 1``: which model and runtime serve now.
        model_loaded: ``fmnist_model_loaded_timestamp_seconds``: when that model was loaded.
        reloads: ``fmnist_model_reloads_total{result}``: swaps, ``swapped`` or ``refused``.
        scores: ``fmnist_prediction_score{label, source}``: the best class's probability, by
            that class and by where the image came from (``camera``, ``upload``, ``v2``).
        answers: ``fmnist_answers_total{label, source}``: answers given, ``not sure`` included.
        not_sure: ``fmnist_not_sure_total{source}``: answers below the model's threshold.
        captures_saved: ``fmnist_captures_saved_total{source}``.
        captures_labelled: ``fmnist_captures_labelled_total{label}``: by photo folder.
        capture_bytes: ``fmnist_capture_disk_bytes``: what the captures take on disk.
        capture_stopped: ``fmnist_capture_stopped``: 1 once capturing stopped (a full disk).
    """

    def __init__(self, endpoints: tuple[str, ...]) -> None:
        """Args:
        endpoints: The known routes (``{name}`` marks a path parameter); any other path is
            labelled ``other``.
        """
        self.endpoints = Paths(endpoints)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fmnist_http_requests",
            "HTTP requests answered, by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "fmnist_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "fmnist_inference_duration_seconds",
            "Time of one interpreter call of the API (quantize, invoke, dequantize).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter("fmnist_images_classified", "Images the API classified.", registry=r)
        self.frames = Counter(
            "fmnist_camera_frames_classified", "Camera frames classified.", registry=r
        )
        self.camera_fps = Gauge(
            "fmnist_camera_fps", "Camera frames per second over the last 30 frames.", registry=r
        )
        self.camera_up = Gauge(
            "fmnist_camera_up", "1 while the camera delivers frames.", registry=r
        )
        self.model = Info("fmnist_model", "The model being served.", registry=r)
        self.model_loaded = Gauge(
            "fmnist_model_loaded_timestamp_seconds",
            "When the model serving now was loaded (Unix time).",
            registry=r,
        )
        self.reloads = Counter(
            "fmnist_model_reloads",
            "Model swaps asked for: swapped, or refused (the old model kept serving).",
            ["result"],
            registry=r,
        )
        self.scores = Histogram(
            "fmnist_prediction_score",
            "The best class's probability, by that class and by where the image came from.",
            ["label", "source"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "fmnist_answers",
            "Answers given, by label ('not sure' included) and source.",
            ["label", "source"],
            registry=r,
        )
        self.not_sure = Counter(
            "fmnist_not_sure", "Answers below the model's threshold.", ["source"], registry=r
        )
        self.captures_saved = Counter(
            "fmnist_captures_saved", "Captures saved, by source.", ["source"], registry=r
        )
        self.captures_labelled = Counter(
            "fmnist_captures_labelled", "Captures labelled, by photo folder.", ["label"], registry=r
        )
        self.capture_bytes = Gauge(
            "fmnist_capture_disk_bytes", "Bytes the captures take on disk.", registry=r
        )
        self.capture_stopped = Gauge(
            "fmnist_capture_stopped",
            "1 once capturing has stopped (a full disk or a write error), else 0.",
            registry=r,
        )

    def endpoint(self, path: str) -> str:
        """The ``endpoint`` label of a request path: its route, or ``other``."""
        return self.endpoints.match(path) or "other"

    def answered(self, prediction: Prediction, source: str) -> None:
        """Count one answer, and its best score under its best class (sure or not)."""
        self.scores.labels(prediction.label, source).observe(prediction.score)
        self.answers.labels(prediction.answer, source).inc()
        if not prediction.sure:
            self.not_sure.labels(source).inc()


class MetricsMiddleware:
    """Count and time every HTTP request (a plain ASGI middleware: no per-request objects)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app fails before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            endpoint = self.metrics.endpoint(scope["path"])
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - start)

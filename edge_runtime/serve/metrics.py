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

# A *_created series per counter and histogram doubles what a scrape carries for nothing a
# dashboard of this server uses.
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds. One 28×28 image takes well under a millisecond; a 12 MP photo tens of them."""


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
        model: ``fmnist_model_info{...} 1``: which model and runtime serve.
    """

    def __init__(self, endpoints: tuple[str, ...]) -> None:
        """Args:
        endpoints: The known routes; any other path is labelled ``other``.
        """
        self.endpoints = frozenset(endpoints)
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

    def endpoint(self, path: str) -> str:
        """The ``endpoint`` label of a request path."""
        return path if path in self.endpoints else "other"


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

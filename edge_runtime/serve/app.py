"""The ``fmnist-edge serve`` web app: the page, the JSON API, the v2 protocol and metrics.

Build it with :func:`create_app`; :mod:`edge_runtime.serve.server` runs it on uvicorn.

Concurrency: the app's :class:`Classifier` is only ever called on the event loop's thread, so
no two requests touch the interpreter at once (it is not thread-safe) and no lock is needed.
Large uploads are decoded and preprocessed in the thread pool first, so a 12 MP photo does not
hold up the small requests; a 28×28 PNG is cheaper to handle inline than to hand over. The
camera, if any, runs in a thread with a classifier of its own (:mod:`.camera`).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge_runtime.options import ServeOptions
from edge_runtime.preprocess import ImageError, decode_image, model_input
from edge_runtime.serve import v2
from edge_runtime.serve.camera import CameraWorker, FrameHub
from edge_runtime.serve.metrics import Metrics, MetricsMiddleware
from edge_runtime.serve.security import (
    BodyLimit,
    BodyTooLarge,
    TokenGate,
    session_cookie,
    whole_number,
)

STATIC = Path(__file__).parent / "static"
MAX_FILES = 32
"""Images per ``/api/classify`` request."""
INLINE_BYTES = 64 * 1024
"""Uploads up to this size are decoded on the event loop; larger ones in the thread pool."""
TOP_K_MAX = 10
PAGE_HEADERS = {
    # The page is self-contained: no CDN, no inline script, nothing from elsewhere.
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}
V2_MODEL = f"/v2/models/{v2.MODEL}"


class ApiError(Exception):
    """A request the API refuses: answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def version() -> str:
    try:
        return importlib.metadata.version("fmnist")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Service:
    """What the handlers share: the options, the model, the metrics and the camera."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.classifier = options.load()
        self.metrics = Metrics(endpoints(ROUTES))
        self.started = time.time()
        self.hub: FrameHub | None = None
        self.camera: CameraWorker | None = None
        sidecar = self.classifier.sidecar
        assert sidecar is not None  # loaded from a file: it has its sidecar
        self.model_info = {
            "path": str(Path(options.model).resolve()),
            "quantization": sidecar.quantization,
            "size_bytes": sidecar.size_bytes,
            "sha256": sidecar.tflite_sha256,
            "labels": list(self.classifier.labels),
            "input": self.classifier.input.info().to_json(),
            "output": self.classifier.output.info().to_json(),
            "test_accuracy": sidecar.test_accuracy,
            "agreement_with_float": sidecar.agreement_with_float,
        }
        self.metrics.model.info(
            {
                "model": Path(options.model).name,
                "quantization": sidecar.quantization,
                "sha256": sidecar.tflite_sha256,
                "runtime": self.classifier.runtime,
                "runtime_version": self.classifier.runtime_version,
            }
        )

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Classify model input on the event loop's thread (see the module docstring)."""
        start = time.perf_counter()
        probs = self.classifier.probabilities(batch)
        self.metrics.inference_seconds.observe(time.perf_counter() - start)
        self.metrics.images.inc(len(batch))
        return probs

    def start_camera(self) -> None:
        """Start classifying ``options.source`` in a thread (call on the event loop)."""
        self.hub = FrameHub()
        source, loop = self.options.source, self.options.loop
        if source is None:
            return
        self.camera = CameraWorker(
            lambda: source.open(pace=True, loop=loop),
            ends=source.ends and not loop,
            classifier=self.options.load(),
            hub=self.hub,
            metrics=self.metrics,
        )
        self.camera.start()

    def stop_streams(self) -> None:
        """End every MJPEG stream (any thread): the first step of shutting down."""
        if self.hub is not None:
            self.hub.close()

    def stop_camera(self) -> None:
        self.stop_streams()
        if self.camera is not None:
            self.camera.stop()


def _hub(request: Request) -> FrameHub:
    service: Service = request.app.state.service
    if service.options.source is None or service.hub is None:
        raise ApiError(404, "no camera: start the server with --source")
    return service.hub


# --- the page and the API -----------------------------------------------------------------------


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


async def info(request: Request) -> Response:
    service: Service = request.app.state.service
    hub = service.hub
    return JSONResponse(
        {
            "name": "fmnist-edge",
            "version": version(),
            "model": service.model_info,
            "runtime": service.classifier.runtime,
            "runtime_version": service.classifier.runtime_version,
            "threads": service.options.threads,
            "source": None if service.options.source is None else str(service.options.source),
            "camera": hub.camera.as_json() if hub and service.options.source else None,
            "uptime_s": round(time.time() - service.started, 1),
            "token_required": service.options.token is not None,
            "max_upload_mb": service.options.max_upload_mb,
        }
    )


async def session(request: Request) -> Response:
    """``POST``: the bearer token was accepted; store it as the page's cookie. ``DELETE``: forget."""
    token = request.app.state.service.options.token
    response = JSONResponse({"session": request.method == "POST", "token_required": bool(token)})
    if token and request.method == "POST":
        response.headers["set-cookie"] = session_cookie(token)
    elif request.method == "DELETE":
        response.delete_cookie("fmnist_session", httponly=True, samesite="strict")
    return response


def _top_k(request: Request) -> int:
    text = request.query_params.get("top_k", "1")
    top_k = whole_number(text)
    if top_k is None or not 1 <= top_k <= TOP_K_MAX:
        raise ApiError(400, f"top_k must be an integer from 1 to {TOP_K_MAX}, got {text!r}")
    return top_k


async def _uploads(request: Request) -> list[tuple[str, bytes]]:
    """The images of a request: multipart ``file`` fields, or a raw ``image/*`` body."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        if "boundary=" not in content_type:
            raise ApiError(400, "multipart/form-data without a boundary")
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
        files = form.getlist("file")
        if not files:
            raise ApiError(400, "no 'file' field in the form")
        uploads = []
        for index, item in enumerate(files, 1):
            if not isinstance(item, UploadFile):
                raise ApiError(400, f"'file' field {index} is text, not a file")
            uploads.append((item.filename or f"file {index}", await item.read()))
        return uploads
    if kind.startswith("image/"):
        return [(request.query_params.get("name") or "body", await request.body())]
    raise ApiError(
        415,
        f"unsupported content type {kind or 'none'!r}: send multipart/form-data with 'file' "
        "fields, or one image as the body with an image/* type",
    )


def _prepare(uploads: list[tuple[str, bytes]]) -> list[np.ndarray | ImageError]:
    """Decode and preprocess each upload: a 28×28 image, or the reason it is not one."""
    prepared: list[np.ndarray | ImageError] = []
    for name, data in uploads:
        try:
            prepared.append(model_input([decode_image(data, name)])[0])
        except ImageError as e:
            prepared.append(e)
    return prepared


def _png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0]).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def classify(request: Request) -> Response:
    """``POST /api/classify``: one result per image, 200 when at least one was classified."""
    service: Service = request.app.state.service
    top_k = _top_k(request)
    with_pixels = request.query_params.get("preprocessed") in ("1", "true", "yes")
    uploads = await _uploads(request)
    if sum(len(data) for _, data in uploads) <= INLINE_BYTES:
        prepared = _prepare(uploads)
    else:
        prepared = await run_in_threadpool(_prepare, uploads)
    good = [p for p in prepared if not isinstance(p, ImageError)]
    probs = iter(service.probabilities(np.stack(good)) if good else [])
    results = []
    for (name, _), item in zip(uploads, prepared, strict=True):
        if isinstance(item, ImageError):
            results.append({"name": name, "error": item.problem})
            continue
        record = {"name": name, **service.classifier.prediction(next(probs), top_k).as_json()}
        if with_pixels:
            record["preprocessed"] = _png_data_url(item)
        results.append(record)
    if not good:
        return JSONResponse({"error": "no image could be classified", "results": results}, 400)
    return JSONResponse({"results": results})


async def latest(request: Request) -> Response:
    """``GET /api/latest``: the newest frame's result, when it was made, and the camera's state."""
    hub = _hub(request)
    snapshot = hub.latest
    fields: dict[str, Any] = dict.fromkeys(("frame", "label", "class_id", "score", "fps"))
    top_k = []
    if snapshot.result is not None:
        fields = snapshot.result.as_json()
        top_k = snapshot.result.prediction.as_json()["top_k"]
    return JSONResponse(
        {**fields, "top_k": top_k, "timestamp": snapshot.timestamp, "camera": hub.camera.as_json()}
    )


async def stream(request: Request) -> Response:
    """``GET /api/stream``: annotated frames as MJPEG, as fast as the camera makes them."""
    hub = _hub(request)

    async def parts() -> AsyncIterator[bytes]:
        hub.viewers += 1
        try:
            seq = 0
            while (snapshot := await hub.next_jpeg(seq)) is not None:
                seq = snapshot.seq
                yield (
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(snapshot.jpeg)).encode()
                    + b"\r\n\r\n"
                    + snapshot.jpeg
                    + b"\r\n"
                )
        finally:
            hub.viewers -= 1

    return StreamingResponse(
        parts(),
        media_type="multipart/x-mixed-replace; boundary=frame",
        headers={"cache-control": "no-cache, no-store"},
    )


async def metrics(request: Request) -> Response:
    registry = request.app.state.service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# --- the Open Inference Protocol v2 ---------------------------------------------------------------


async def v2_server(request: Request) -> Response:
    return JSONResponse(v2.server_metadata(version()))


async def v2_health(request: Request) -> Response:
    # Live and ready are the same here: the model is loaded before the server listens.
    return Response(status_code=200)


async def v2_model(request: Request) -> Response:
    service: Service = request.app.state.service
    platform = f"tflite ({service.classifier.runtime} {service.classifier.runtime_version})"
    return JSONResponse(v2.model_metadata(platform))


async def v2_infer(request: Request) -> Response:
    service: Service = request.app.state.service
    body = await request.body()
    header_length = request.headers.get(v2.HEADER_LENGTH)
    try:
        if len(body) <= INLINE_BYTES:
            parsed = v2.parse_infer(body, header_length)
        else:
            parsed = await run_in_threadpool(v2.parse_infer, body, header_length)
    except v2.ProtocolError as e:
        raise ApiError(400, str(e)) from None
    content, headers = v2.infer_response(parsed, service.probabilities(parsed.images))
    return Response(content, headers=headers)


# --- errors: always JSON, never a traceback -------------------------------------------------------


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": str(exc)}, exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def too_large(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, 413)


LOG = logging.getLogger("uvicorn.error")
"""uvicorn's own log (level and format as ``serve`` configured it)."""


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that went away mid-upload: one line in the log, not a traceback. Nobody is
    left to read the answer (its status, 499 as nginx names it, shows only in the metrics)."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    LOG.warning("%s disconnected during %s %s", client, request.method, request.url.path)
    return Response(status_code=499)


ROUTES = [
    Route("/", page),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
    Route("/api/info", info),
    Route("/api/session", session, methods=["POST", "DELETE"]),
    Route("/api/classify", classify, methods=["POST"]),
    Route("/api/latest", latest),
    Route("/api/stream", stream),
    Route("/metrics", metrics),
    Route("/v2", v2_server),
    Route("/v2/health/live", v2_health),
    Route("/v2/health/ready", v2_health),
    *(
        route
        for prefix in (V2_MODEL, f"{V2_MODEL}/versions/{v2.VERSION}")
        for route in (
            Route(prefix, v2_model),
            Route(f"{prefix}/ready", v2_health),
            Route(f"{prefix}/infer", v2_infer, methods=["POST"]),
        )
    ),
]
"""The routes: they are the contract clients depend on."""


def endpoints(routes: list[Route | Mount]) -> tuple[str, ...]:
    """Every path the routes serve, static files included: the metrics' endpoint labels."""
    paths: list[str] = []
    for route in routes:
        if isinstance(route, Mount):
            static = Path(route.app.directory)  # type: ignore[attr-defined]
            paths += [f"{route.path}/{p.name}" for p in sorted(static.iterdir())]
        else:
            paths.append(route.path)
    return tuple(paths)


def create_app(options: ServeOptions) -> Starlette:
    """The app for ``options``. Loads the model now; starts the camera when the app starts.

    Raises:
        ModelError, RuntimeMissingError: The model cannot be used.
    """
    service = Service(options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start_camera()
        try:
            yield
        finally:
            service.stop_camera()  # releases the camera before the process exits

    middleware = [Middleware(MetricsMiddleware, metrics=service.metrics)]
    if options.token is not None:
        middleware.append(
            Middleware(
                TokenGate, token=options.token, open_paths=frozenset({"/", *v2.HEALTH_PATHS})
            )
        )
    middleware.append(Middleware(BodyLimit, max_bytes=int(options.max_upload_mb * 2**20)))
    app = Starlette(
        routes=ROUTES,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            BodyTooLarge: too_large,
            ClientDisconnect: client_gone,
        },
    )
    app.state.service = service
    return app

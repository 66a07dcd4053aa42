"""The ``fmnist-edge serve`` web app: the page, the JSON API, the v2 protocol and metrics.

Build it with :func:`create_app`; :mod:`edge_runtime.serve.server` runs it on uvicorn.

Concurrency: the app's :class:`Classifier` is only ever called on the event loop's thread, so
no two requests touch the interpreter at once (it is not thread-safe) and no lock is needed.
Large uploads are decoded and preprocessed in the thread pool first, so a 12 MP photo does not
hold up the small requests; a 28×28 PNG is cheaper to handle inline than to hand over. The
camera, if any, runs in a thread with a classifier of its own (:mod:`.camera`). The model can be
swapped while serving (:mod:`.models`); captures are written in the thread pool or the camera
thread (:mod:`edge_runtime.captures`).
"""

from __future__ import annotations

import asyncio
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

from edge_runtime.captures import (
    CameraCapture,
    Capture,
    CaptureError,
    CaptureStore,
    jpeg_of,
)
from edge_runtime.classifier import Classifier, Prediction
from edge_runtime.json_input import JsonInputError, parse_json
from edge_runtime.options import ServeOptions
from edge_runtime.preprocess import ImageError, decode_image, model_input
from edge_runtime.serve import v2
from edge_runtime.serve.camera import CameraWorker, FrameHub
from edge_runtime.serve.metrics import Metrics, MetricsMiddleware
from edge_runtime.serve.models import CameraModel, ModelSlot, SwapError
from edge_runtime.serve.security import (
    BodyLimit,
    BodyTooLarge,
    TokenGate,
    session_cookie,
    whole_number,
)
from edge_runtime.webcam import FrameResult

STATIC = Path(__file__).parent / "static"
MAX_FILES = 32
"""Images per ``/api/classify`` request."""
INLINE_BYTES = 64 * 1024
"""Uploads up to this size are decoded on the event loop; larger ones in the thread pool."""
TOP_K_MAX = 10
CAPTURES_MAX = 200
"""Captures per ``/api/captures`` listing."""
WATCH_S = 1.0
"""How often ``--watch`` looks at the model file."""
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
    """What the handlers share: the options, the model slot, the metrics, captures and camera."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.metrics = Metrics(endpoints(ROUTES))
        self.models = ModelSlot(options, self.metrics, camera=options.source is not None)
        self.started = time.time()
        self.hub: FrameHub | None = None
        self.camera: CameraWorker | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future] = set()  # reloads under way: kept from the collector
        self.captures: CaptureStore | None = options.capture_store()
        if self.captures is not None:
            self.metrics.capture_bytes.set_function(lambda: self.captures.bytes)
            self.metrics.capture_stopped.set_function(
                lambda: float(self.captures.state.state != "on")
            )

    @property
    def classifier(self) -> Classifier:
        """The API's classifier of the model serving now (the event loop's own)."""
        return self.models.current.classifier

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Classify model input on the event loop's thread (see the module docstring)."""
        start = time.perf_counter()
        probs = self.classifier.probabilities(batch)
        self.metrics.inference_seconds.observe(time.perf_counter() - start)
        self.metrics.images.inc(len(batch))
        return probs

    def capture_below(self) -> float | None:
        """The score below which camera frames and uploads are captured, if any."""
        return self.options.capture_threshold(self.classifier)

    def capture_upload(
        self, frame_jpeg: bytes, seen: np.ndarray, prediction: Prediction
    ) -> Capture | None:
        """Save an upload as a capture (in the thread pool: it writes files) and count it."""
        assert self.captures is not None
        capture = self.captures.save(
            frame_jpeg=frame_jpeg,
            seen=seen,
            prediction=prediction,
            source="upload",
            model_sha256=self.models.current.sha256,
        )
        if capture is not None:
            self.metrics.captures_saved.labels("upload").inc()
        return capture

    def start_camera(self) -> None:
        """Start classifying ``options.source`` in a thread (call on the event loop)."""
        self.hub = FrameHub()
        source, loop = self.options.source, self.options.loop
        if source is None:
            return
        on_result = None
        below = self.capture_below()
        if self.captures is not None and below is not None:
            capture = CameraCapture(self.captures, below=below, source=str(source))

            def on_result(result: FrameResult, frame: np.ndarray) -> None:
                sha = self.models.current.sha256
                if capture.consider(frame, result.seen, result.prediction, sha):
                    self.metrics.captures_saved.labels("camera").inc()

        self.camera = CameraWorker(
            lambda: source.open(pace=True, loop=loop),
            ends=source.ends and not loop,
            classifier=CameraModel(self.models),
            hub=self.hub,
            metrics=self.metrics,
            on_result=on_result,
        )
        self.camera.start()

    async def watch(self) -> None:
        """``--watch``: swap the model in when its file or sidecar changes (and holds still for
        a second, so a copy in progress is not read)."""
        path = self.models.current.path

        def stamp() -> tuple:
            return tuple(
                (s.st_mtime_ns, s.st_size) if (s := _stat(p)) else None
                for p in (path, path.with_suffix(".json"))
            )

        seen = stamp()
        while True:
            await asyncio.sleep(WATCH_S)
            now = stamp()
            if now == seen:
                continue
            await asyncio.sleep(WATCH_S)
            if stamp() != now:
                continue  # still being written
            seen = now
            with contextlib.suppress(SwapError):  # refused: logged and counted; keep watching
                await self.models.reload("the model file changed")

    def reload_soon(self, reason: str) -> None:
        """Swap the model in from the event loop, when asked outside it (a signal handler);
        a refusal is logged and counted by the slot."""

        async def reload() -> None:
            with contextlib.suppress(SwapError):
                await self.models.reload(reason)

        assert self.loop is not None, "the app has not started"
        self.loop.call_soon_threadsafe(lambda: self._tasks.add(asyncio.ensure_future(reload())))

    def stop_streams(self) -> None:
        """End every MJPEG stream (any thread): the first step of shutting down."""
        if self.hub is not None:
            self.hub.close()

    def stop_camera(self) -> None:
        self.stop_streams()
        if self.camera is not None:
            self.camera.stop()


def _stat(path: Path):  # noqa: ANN202 - os.stat_result or None
    try:
        return path.stat()
    except OSError:
        return None


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
    hub, captures = service.hub, service.captures
    return JSONResponse(
        {
            "name": "fmnist-edge",
            "version": version(),
            "model": service.models.current.info(),
            "runtime": service.classifier.runtime,
            "runtime_version": service.classifier.runtime_version,
            "threads": service.options.threads,
            "source": None if service.options.source is None else str(service.options.source),
            "camera": hub.camera.as_json() if hub and service.options.source else None,
            "captures": None
            if captures is None
            else {
                "folder": str(captures.root.resolve()),
                "below": service.capture_below(),
                "unlabelled": captures.count(labelled=False),
                "labelled": captures.count(labelled=True),
                "bytes": captures.bytes,
                "max_bytes": captures.max_bytes,
                **captures.state.__dict__,
            },
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


def _prepare(uploads: list[tuple[str, bytes]]) -> list[tuple[np.ndarray, Image.Image] | ImageError]:
    """Decode and preprocess each upload: its 28×28 model input and the decoded image, or the
    reason it is not one."""
    prepared: list[tuple[np.ndarray, Image.Image] | ImageError] = []
    for name, data in uploads:
        try:
            image = decode_image(data, name)
            prepared.append((model_input([image])[0], image))
        except ImageError as e:
            prepared.append(e)
    return prepared


def _as_jpeg(data: bytes, image: Image.Image) -> bytes:
    """An upload as the JPEG a capture keeps: its own bytes when it is one, else re-encoded."""
    return data if data[:3] == b"\xff\xd8\xff" else jpeg_of(image)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name) in ("1", "true", "yes")


def _png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0]).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def classify(request: Request) -> Response:
    """``POST /api/classify``: one result per image, 200 when at least one was classified.

    With ``--capture``, an upload is saved as a capture when ``capture=1`` asks for it or the
    model is unsure of it (its result then names the capture).
    """
    service: Service = request.app.state.service
    top_k = _top_k(request)
    with_pixels, asked = _flag(request, "preprocessed"), _flag(request, "capture")
    if asked and service.captures is None:
        raise ApiError(404, "no capture folder: start the server with --capture DIR")
    uploads = await _uploads(request)
    if sum(len(data) for _, data in uploads) <= INLINE_BYTES:
        prepared = _prepare(uploads)
    else:
        prepared = await run_in_threadpool(_prepare, uploads)
    good = [p for p in prepared if not isinstance(p, ImageError)]
    probs = iter(service.probabilities(np.stack([p for p, _ in good])) if good else [])
    below = service.capture_below()
    results = []
    for (name, data), item in zip(uploads, prepared, strict=True):
        if isinstance(item, ImageError):
            results.append({"name": name, "error": item.problem})
            continue
        pixels, image = item
        prediction = service.classifier.prediction(next(probs), max(top_k, 3))
        service.metrics.answered(prediction, "upload")
        record = {"name": name, **prediction.as_json()}
        record["top_k"] = record["top_k"][:top_k]
        unsure = below is not None and prediction.score < below
        if service.captures is not None and (asked or unsure):
            capture = await run_in_threadpool(
                service.capture_upload, _as_jpeg(data, image), pixels, prediction
            )
            record["capture"] = capture.id if capture else None
        if with_pixels:
            record["preprocessed"] = _png_data_url(pixels)
        results.append(record)
    if not good:
        return JSONResponse({"error": "no image could be classified", "results": results}, 400)
    return JSONResponse({"results": results})


async def latest(request: Request) -> Response:
    """``GET /api/latest``: the newest frame's result, when it was made, and the camera's state."""
    hub = _hub(request)
    snapshot = hub.latest
    fields: dict[str, Any] = dict.fromkeys(
        ("frame", "label", "class_id", "score", "not_sure", "fps")
    )
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
    # Live and ready are the same here: a model is loaded before the server listens, and a
    # swap replaces it only with another that passed its checks.
    return Response(status_code=200)


def _version(request: Request) -> str:
    """The serving model's version; a request for another version is a 404."""
    service: Service = request.app.state.service
    current = service.models.current.version
    asked = request.path_params.get("version", current)
    if asked != current:
        raise ApiError(404, f"model {v2.MODEL} version {asked[:64]!r} is not loaded; {current} is")
    return current


async def v2_ready(request: Request) -> Response:
    _version(request)
    return Response(status_code=200)


async def v2_model(request: Request) -> Response:
    service: Service = request.app.state.service
    platform = f"tflite ({service.classifier.runtime} {service.classifier.runtime_version})"
    return JSONResponse(v2.model_metadata(platform, _version(request)))


async def v2_infer(request: Request) -> Response:
    service: Service = request.app.state.service
    model_version = _version(request)
    body = await request.body()
    header_length = request.headers.get(v2.HEADER_LENGTH)
    try:
        if len(body) <= INLINE_BYTES:
            parsed = v2.parse_infer(body, header_length)
        else:
            parsed = await run_in_threadpool(v2.parse_infer, body, header_length)
    except v2.ProtocolError as e:
        raise ApiError(400, str(e)) from None
    probs = service.probabilities(parsed.images)
    for row in probs:
        service.metrics.answered(service.classifier.prediction(row), "v2")
    content, headers = v2.infer_response(parsed, probs, version=model_version)
    return Response(content, headers=headers)


async def v2_repository_index(request: Request) -> Response:
    service: Service = request.app.state.service
    return JSONResponse(v2.repository_index(service.models.current.version))


async def v2_load(request: Request) -> Response:
    """``POST /v2/repository/models/fmnist/load``: read the ``--model`` file again and swap it
    in once it passes the checks (:mod:`.models`); 400 with the reason when it does not."""
    service: Service = request.app.state.service
    if request.path_params["model"] != v2.MODEL:
        raise ApiError(
            404, f"no model {request.path_params['model'][:64]!r}; this server has {v2.MODEL}"
        )
    try:
        loaded = await service.models.reload("a load request")
    except SwapError as e:
        raise ApiError(
            400, f"model refused, {service.models.current.version} still serving: {e}"
        ) from None
    return JSONResponse({"name": v2.MODEL, "version": loaded.version, "sha256": loaded.sha256})


# --- captures -------------------------------------------------------------------------------------


def _captures(request: Request) -> CaptureStore:
    service: Service = request.app.state.service
    if service.captures is None:
        raise ApiError(404, "no capture folder: start the server with --capture DIR")
    return service.captures


def _capture_json(capture: Capture, request: Request) -> dict[str, Any]:
    base = f"/api/captures/{capture.id}"
    return {**capture.to_json(), "frame": f"{base}/frame.jpg", "seen": f"{base}/seen.png"}


async def captures_list(request: Request) -> Response:
    """``GET /api/captures?labelled=0|1&limit=N``: the newest captures first."""
    store = _captures(request)
    labelled = request.query_params.get("labelled", "0")
    if labelled not in ("0", "1"):
        raise ApiError(400, f"labelled must be 0 or 1, got {labelled[:16]!r}")
    text = request.query_params.get("limit", "50")
    limit = whole_number(text)
    if limit is None or not 1 <= limit <= CAPTURES_MAX:
        raise ApiError(400, f"limit must be an integer from 1 to {CAPTURES_MAX}, got {text[:16]!r}")
    chosen = store.listing(labelled=labelled == "1", limit=limit)
    return JSONResponse(
        {
            "captures": [_capture_json(c, request) for c in chosen],
            "unlabelled": store.count(labelled=False),
            "labelled": store.count(labelled=True),
            **store.state.__dict__,
        }
    )


async def capture_file(request: Request) -> Response:
    """``GET /api/captures/{id}/frame.jpg`` (or ``seen.png``)."""
    try:
        path = _captures(request).file(request.path_params["id"], request.path_params["file"])
    except CaptureError as e:
        raise ApiError(e.status, str(e)) from None
    return FileResponse(path, headers={"cache-control": "private, max-age=3600"})


async def capture_label(request: Request) -> Response:
    """``POST /api/captures/{id}/label {"label": CLASS}``: file it for training."""
    service: Service = request.app.state.service
    store = _captures(request)
    try:
        body = parse_json(await request.body() or b"null")
    except JsonInputError:
        raise ApiError(400, 'the body must be JSON: {"label": CLASS}') from None
    if not isinstance(body, dict) or "label" not in body:
        raise ApiError(400, 'the body must be JSON: {"label": CLASS}')
    try:
        capture = await run_in_threadpool(store.label, request.path_params["id"], body["label"])
    except CaptureError as e:
        raise ApiError(e.status, str(e)) from None
    service.metrics.captures_labelled.labels(capture.label).inc()
    return JSONResponse(_capture_json(capture, request))


async def capture_delete(request: Request) -> Response:
    """``DELETE /api/captures/{id}``."""
    try:
        capture = await run_in_threadpool(_captures(request).delete, request.path_params["id"])
    except CaptureError as e:
        raise ApiError(e.status, str(e)) from None
    return JSONResponse({"deleted": capture.id})


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
    Route("/api/captures", captures_list),
    Route("/api/captures/{id}", capture_delete, methods=["DELETE"]),
    Route("/api/captures/{id}/label", capture_label, methods=["POST"]),
    Route("/api/captures/{id}/{file}", capture_file),
    Route("/metrics", metrics),
    Route("/v2", v2_server),
    Route("/v2/health/live", v2_health),
    Route("/v2/health/ready", v2_health),
    Route("/v2/repository/index", v2_repository_index, methods=["POST"]),
    Route("/v2/repository/models/{model}/load", v2_load, methods=["POST"]),
    *(
        route
        for prefix in (V2_MODEL, f"{V2_MODEL}/versions/{{version}}")
        for route in (
            Route(prefix, v2_model),
            Route(f"{prefix}/ready", v2_ready),
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
        service.loop = asyncio.get_running_loop()
        service.start_camera()
        tasks = [asyncio.create_task(service.watch())] if options.watch else []
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
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

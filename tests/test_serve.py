"""``fmnist-edge serve``: the API through Starlette's test client and through a live server.

The committed tiny fixture model keeps these tests free of TensorFlow and fast.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from edge_runtime.classifier import Classifier
from edge_runtime.serve import ServeOptions, create_app, systemd_unit, v2
from edge_runtime.serve.security import COOKIE, whole_number
from edge_runtime.vocab import PTQ_MODE
from tests.helpers import ROOT, TINY_INT8, live_server, run_cli, scene, write_video

INT8 = TINY_INT8
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREDICTION_FIELDS = {"label", "class_id", "score", "not_sure", "top_k"}
PNG = {"content-type": "image/png"}
INT8_VERSION = json.loads(INT8.with_suffix(".json").read_text())["sha256"]["tflite"][:12]
"""The fixture model's version in the v2 protocol."""


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shirt_png() -> bytes:
    """A catalogue-style photo: a dark item on white."""
    shot = np.full((300, 200, 3), 255, np.uint8)
    shot[40:260, 50:150] = (30, 30, 120)
    return png_bytes(shot)


@pytest.fixture(scope="module")
def tiny_png() -> bytes:
    """A 28×28 Fashion-MNIST-style image (light item on black)."""
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 8:20] = 200
    return png_bytes(image)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeOptions(model=INT8))) as c:
        yield c


@pytest.fixture(scope="module")
def locked():
    with TestClient(create_app(ServeOptions(model=INT8, token=TOKEN))) as c:
        yield c


# --- the JSON API ---------------------------------------------------------------------------------


def test_info(client: TestClient):
    r = client.get("/api/info")
    assert r.status_code == 200
    info = r.json()
    assert info["model"]["quantization"] == PTQ_MODE and len(info["model"]["labels"]) == 10
    assert info["runtime"] == "ai-edge-litert" and info["runtime_version"]
    assert info["source"] is None and info["camera"] is None and info["uptime_s"] >= 0
    assert info["token_required"] is False


def test_classify_raw_body_matches_the_cli(client: TestClient, shirt_png: bytes, tmp_path: Path):
    r = client.post(
        "/api/classify?top_k=3", content=shirt_png, headers={"content-type": "image/png"}
    )
    assert r.status_code == 200
    (result,) = r.json()["results"]
    assert set(result) == {"name", *PREDICTION_FIELDS} and len(result["top_k"]) == 3
    (tmp_path / "shirt.png").write_bytes(shirt_png)
    shirt = tmp_path / "shirt.png"
    cli = run_cli(
        "fmnist-edge", "classify", "--model", str(INT8), "--json", "--top-k", "3", str(shirt)
    )
    expected = json.loads(cli.stdout)
    assert {k: result[k] for k in PREDICTION_FIELDS} == {k: expected[k] for k in PREDICTION_FIELDS}


def test_classify_multipart_many_files_keeps_going_past_bad_ones(
    client: TestClient, shirt_png: bytes, tiny_png: bytes
):
    files = [
        ("file", ("shirt.png", shirt_png, "image/png")),
        ("file", ("notes.txt", b"not an image", "text/plain")),
        ("file", ("empty.png", b"", "image/png")),
        ("file", ("tiny.png", tiny_png, "image/png")),
    ]
    r = client.post("/api/classify?preprocessed=1", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["name"] for x in results] == ["shirt.png", "notes.txt", "empty.png", "tiny.png"]
    assert results[1] == {"name": "notes.txt", "error": "not an image (unrecognised format)"}
    assert results[2] == {"name": "empty.png", "error": "empty file"}
    seen = base64.b64decode(results[3]["preprocessed"].split(",", 1)[1])
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(seen))), np.asarray(Image.open(io.BytesIO(tiny_png)))
    )


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, "unsupported"),
        ({"content": b"hi"}, 415, "unsupported"),
        ({"content": b"xx", "headers": {"content-type": "image/png"}}, 400, "no image could"),
        (
            {"data": {"file": "text"}, "files": {"other": ("a", b"b")}},
            400,
            "'file' field 1 is text",
        ),
        ({"files": {"other": ("a.png", b"b")}}, 400, "no 'file' field"),
        (
            {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
            400,
            "without a boundary",
        ),
        (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=x"}},
            400,
            "",
        ),
    ],
)
def test_classify_refuses_with_a_json_error(client: TestClient, kwargs, status, error):
    r = client.post("/api/classify", **kwargs)
    assert r.status_code == status, r.text
    assert error in r.json()["error"]


@pytest.mark.parametrize("top_k", ["0", "11", "x", "-1", "2.5", "²", "٣", "9" * 5000])
def test_bad_top_k_is_400(client: TestClient, tiny_png: bytes, top_k: str):
    r = client.post(
        f"/api/classify?top_k={top_k}", content=tiny_png, headers={"content-type": "image/png"}
    )
    assert r.status_code == 400 and "top_k" in r.json()["error"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("1024", 1024),
        ("", None),
        ("-1", None),
        ("²", None),
        ("1e3", None),
        ("9" * 19, None),
    ],
)
def test_whole_number_accepts_ascii_digits_only(text: str, number: int | None):
    assert whole_number(text) == number


def test_lab_tiff_is_classified_not_a_server_error(client: TestClient):
    grey = Image.new("L", (60, 80), 255)
    grey.paste(0, (20, 10, 40, 70))
    neutral = Image.new("L", grey.size, 128)
    buffer = io.BytesIO()
    Image.merge("LAB", [grey, neutral, neutral]).save(buffer, format="TIFF")
    r = client.post(
        "/api/classify", content=buffer.getvalue(), headers={"content-type": "image/tiff"}
    )
    assert r.status_code == 200 and set(r.json()["results"][0]) >= PREDICTION_FIELDS


def test_pixel_cap_applies_to_uploads(client: TestClient):
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")  # 100 MP in a few KB
    r = client.post(
        "/api/classify", content=buffer.getvalue(), headers={"content-type": "image/png"}
    )
    assert r.status_code == 400
    assert "decompression bomb" in r.json()["results"][0]["error"]


def test_upload_limit_413_declared_and_streamed():
    app = create_app(ServeOptions(model=INT8, max_upload_mb=0.01))  # 10,485 bytes
    big = b"\x89PNG" + bytes(20_000)
    with TestClient(app) as c:
        r = c.post("/api/classify", content=big, headers={"content-type": "image/png"})
        assert r.status_code == 413 and "upload limit" in r.json()["error"]
        chunks = (big[i : i + 4096] for i in range(0, len(big), 4096))  # no Content-Length
        r = c.post("/api/classify", content=chunks, headers={"content-type": "image/png"})
        assert r.status_code == 413 and "upload limit" in r.json()["error"]
        r = c.post("/v2/models/fmnist/infer", content=big)
        assert r.status_code == 413


def test_no_camera_means_404_for_stream_and_latest(client: TestClient):
    for path in ("/api/stream", "/api/latest"):
        r = client.get(path)
        assert r.status_code == 404 and "--source" in r.json()["error"]


def test_unknown_paths_and_methods_are_json(client: TestClient):
    assert client.get("/nope").json() == {"error": "Not Found"}
    r = client.get("/api/classify")
    assert r.status_code == 405 and "error" in r.json()


def test_page_loads_without_a_token_and_is_self_contained(locked: TestClient):
    r = locked.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"https?://", r.text), "nothing from a CDN"
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        assert locked.get(asset).status_code == 200


# --- the token ------------------------------------------------------------------------------------

PROTECTED = [
    "/api/info",
    "/api/latest",
    "/api/stream",
    "/metrics",
    "/v2",
    "/v2/models/fmnist",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_token_required_on_protected_endpoints(locked: TestClient, path: str):
    assert locked.get(path).status_code == 401
    r = locked.get(path, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert locked.get(path, headers=AUTH).status_code != 401


def test_token_on_posts_and_open_health(locked: TestClient, tiny_png: bytes):
    image = {"content": tiny_png, "headers": {"content-type": "image/png"}}
    assert locked.post("/api/classify", **image).status_code == 401
    image["headers"].update(AUTH)
    assert locked.post("/api/classify", **image).status_code == 200
    assert locked.post("/v2/models/fmnist/infer", content=b"{}").status_code == 401
    # The protocol's health calls, model readiness included, and nothing else.
    assert sorted(v2.HEALTH_PATHS) == [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/fmnist/ready",
        "/v2/models/fmnist/versions/{version}/ready",
    ]
    version = INT8_VERSION
    for path in sorted(v2.HEALTH_PATHS):
        assert locked.get(path.format(version=version)).status_code == 200, path
    for path in ("/v2/models/fmnist", f"/v2/models/fmnist/versions/{version}"):
        assert locked.get(path).status_code == 401, path
    for path in ("/v2/models/fmnist/infer", f"/v2/models/fmnist/versions/{version}/infer"):
        assert locked.post(path, content=pixels_tensor()).status_code == 401, path
    for path in ("/v2/repository/index", "/v2/repository/models/fmnist/load"):
        assert locked.post(path).status_code == 401, path


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive_the_token_is_not(locked: TestClient, scheme: str):
    assert (
        locked.get("/api/info", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    )
    wrong_case = {"Authorization": f"{scheme} {TOKEN.upper()}"}
    assert locked.get("/api/info", headers=wrong_case).status_code == 401


def test_cookie_session_for_the_browser():
    with TestClient(create_app(ServeOptions(model=INT8, token=TOKEN))) as c:
        assert c.post("/api/session").status_code == 401
        r = c.post("/api/session", headers=AUTH)
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert c.get("/api/info").status_code == 200  # the cookie alone
        c.delete("/api/session")
        assert c.get("/api/info").status_code == 401
    with TestClient(create_app(ServeOptions(model=INT8, token="other"))) as c:
        c.cookies.set(COOKIE, cookie.split(";")[0].split("=", 1)[1])
        assert c.get("/api/info").status_code == 401, "a cookie is valid for its token only"


# --- the Open Inference Protocol v2 -----------------------------------------------------------------


def v2_body(images: np.ndarray, **extra) -> dict:
    tensor = {"name": "pixels", "shape": list(images.shape), "datatype": "UINT8"}
    return {"inputs": [{**tensor, "data": images.reshape(-1).tolist()}], **extra}


def test_v2_metadata_and_health(client: TestClient):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/fmnist/ready").status_code == 200
    assert client.get("/v2").json()["name"] == "fmnist-edge"
    meta = client.get("/v2/models/fmnist").json()
    assert meta["inputs"] == [{"name": "pixels", "datatype": "UINT8", "shape": [-1, 28, 28, 1]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert meta["versions"] == [INT8_VERSION]
    assert client.get(f"/v2/models/fmnist/versions/{INT8_VERSION}/ready").status_code == 200
    r = client.get("/v2/models/fmnist/versions/1/ready")
    assert r.status_code == 404 and INT8_VERSION in r.json()["error"]
    assert client.get("/v2/models/other").status_code == 404


def test_v2_infer_equals_the_classifier(client: TestClient):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    r = client.post("/v2/models/fmnist/infer", json=v2_body(images, id="req-1"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["id"] == "req-1" and answer["model_name"] == "fmnist"
    (output,) = answer["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [5, 10]
    expected = Classifier.from_file(INT8).probabilities(images)
    np.testing.assert_allclose(np.reshape(output["data"], (5, 10)), expected, atol=1e-6)


def pixels_tensor(**overrides) -> bytes:
    """A one-input infer request whose tensor fields are overridden."""
    tensor = {"name": "pixels", "datatype": "UINT8", "shape": [1, 28, 28, 1], "data": [0] * 784}
    return json.dumps({"inputs": [{**tensor, **overrides}]}).encode()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "not JSON"),
        (b"[" * 50_000, "nested too deeply"),
        (b'{"id": ' + b"1" * 5000 + b"}", "digits"),  # past Python's int-from-text limit
        (b"[1, 2]", "JSON object"),
        (b"{}", "'inputs'"),
        (pixels_tensor(name="x"), "named 'pixels'"),
        (pixels_tensor(datatype="FP32"), "UINT8"),
        (pixels_tensor(shape=[1, 28, 28, 3]), "shape"),
        (pixels_tensor(shape=[2000, 28, 28, 1]), "1 ≤ N ≤ 1024"),
        (pixels_tensor(shape="1,28,28,1"), "shape"),
        (pixels_tensor(data=[300] * 784), "0..255"),
        (pixels_tensor(data=[1.5] * 784), "integers"),
        (pixels_tensor(data=[1] * 783), "784"),
        (pixels_tensor(data=[[1, 2], [3]]), "data"),
        (pixels_tensor(data="abc"), "'data' list"),
        (pixels_tensor(data=None, parameters={"binary_data_size": 784}), "binary data"),
        (pixels_tensor(parameters=[1]), "parameters"),
        (
            json.dumps({**json.loads(pixels_tensor()), "outputs": [{"name": "x"}]}).encode(),
            "one output",
        ),
        (
            json.dumps(
                {
                    **json.loads(pixels_tensor()),
                    "outputs": [{"name": "probabilities", "parameters": 3}],
                }
            ).encode(),
            "parameters",
        ),
    ],
)
def test_v2_bad_requests_are_400(client: TestClient, body: bytes, error: str):
    r = client.post("/v2/models/fmnist/infer", content=body)
    assert r.status_code == 400, r.text
    assert error in r.json()["error"]


def test_v2_binary_tensor_extension(client: TestClient):
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    tensor = {"name": "pixels", "shape": [3, 28, 28, 1], "datatype": "UINT8"}
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": images.size}}],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    r = client.post(
        "/v2/models/fmnist/infer",
        content=header + images.tobytes(),
        headers={"inference-header-content-length": str(len(header))},
    )
    assert r.status_code == 200, r.text
    length = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:length])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 3 * 10 * 4
    probs = np.frombuffer(r.content[length:], "<f4").reshape(3, 10)
    np.testing.assert_array_equal(probs, Classifier.from_file(INT8).probabilities(images))


@pytest.mark.parametrize("length", ["²", "-1", "99999", "x"])
def test_v2_bad_header_length_is_400(client: TestClient, length: str):
    r = client.post(
        "/v2/models/fmnist/infer",
        content=pixels_tensor(),
        headers={"inference-header-content-length": length.encode("latin-1")},
    )
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_follow_prometheus_naming(client: TestClient, tiny_png: bytes):
    client.post("/api/classify", content=tiny_png, headers={"content-type": "image/png"})
    client.get("/no/such/path/12345")
    text = client.get("/metrics").text
    assert 'fmnist_http_requests_total{endpoint="/api/classify",method="POST",status="200"}' in text
    assert 'fmnist_http_requests_total{endpoint="other",method="GET",status="404"}' in text
    assert "/no/such/path" not in text, "unknown paths must not create series"
    for name in (
        "fmnist_http_request_duration_seconds_bucket",
        "fmnist_inference_duration_seconds_bucket",
        "fmnist_images_classified_total",
        "fmnist_camera_frames_classified_total",
        "fmnist_camera_fps",
        "fmnist_model_info{",
    ):
        assert name in text, name
    assert f'quantization="{PTQ_MODE}"' in text and 'runtime="ai-edge-litert"' in text


# --- a live server on a free port -----------------------------------------------------------------


@pytest.mark.parametrize("given_as", ["flag", "environment"])
def test_live_server_every_endpoint_with_a_token(shirt_png: bytes, given_as: str):
    statuses = {}
    token = ("--token", TOKEN) if given_as == "flag" else ()
    with served(*token, env={"FMNIST_TOKEN": TOKEN} if given_as == "environment" else None) as http:
        for path in ("/", "/v2/health/live", "/v2/health/ready"):
            statuses[path] = http.get(path).status_code
        for path in PROTECTED:
            statuses[f"{path} (no token)"] = http.get(path).status_code
        for path in ("/api/info", "/metrics", "/v2", "/v2/models/fmnist"):
            statuses[f"{path} (token)"] = http.get(path, headers=AUTH).status_code
        for path in ("/api/stream", "/api/latest"):
            statuses[f"{path} (token)"] = http.get(path, headers=AUTH).status_code
        r = http.post("/api/classify", files={"file": ("shirt.png", shirt_png)}, headers=AUTH)
        statuses["/api/classify"] = r.status_code
        images = np.zeros((2, 28, 28, 1), np.uint8)
        r = http.post("/v2/models/fmnist/infer", json=v2_body(images), headers=AUTH)
        statuses["/v2/models/fmnist/infer"] = r.status_code
        headers = {**AUTH, "content-type": "image/png"}
        too_big = http.post("/api/classify", content=bytes(11 * 2**20), headers=headers)
        statuses["11 MB upload"] = too_big.status_code
    expected = {
        **{p: 200 for p in ("/", "/v2/health/live", "/v2/health/ready")},
        **{f"{p} (no token)": 401 for p in PROTECTED},
        **{f"{p} (token)": 200 for p in ("/api/info", "/metrics", "/v2", "/v2/models/fmnist")},
        "/api/stream (token)": 404,
        "/api/latest (token)": 404,
        "/api/classify": 200,
        "/v2/models/fmnist/infer": 200,
        "11 MB upload": 413,
    }
    assert statuses == expected


def test_concurrent_requests_each_get_their_own_answer(dataset):
    """16 clients at once on a live server, images and v2 tensors mixed: every answer is the one
    the in-process classifier gives for that request's own images (no answer crosses over)."""
    from concurrent.futures import ThreadPoolExecutor

    images = dataset.x_test[:64]
    expected = Classifier.from_file(INT8).probabilities(images[..., None])

    def ask(http: httpx.Client, i: int) -> tuple[int, np.ndarray]:
        if i % 2:
            body = v2_body(images[i : i + 1, ..., None])
            output = http.post("/v2/models/fmnist/infer", json=body).json()["outputs"][0]
            return i, np.asarray(output["data"], np.float32)
        r = http.post("/api/classify?top_k=10", content=png_bytes(images[i]), headers=PNG)
        top = r.json()["results"][0]["top_k"]
        probs = np.zeros(10, np.float32)
        for entry in top:
            probs[entry["class_id"]] = entry["score"]
        return i, probs

    with served() as http, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: ask(http, i), [*range(64)] * 4))
    for i, probs in answers:
        np.testing.assert_allclose(probs, expected[i], atol=1e-4, err_msg=f"image {i}")


@contextlib.contextmanager
def served(*args: str, env: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    """A live server (see :func:`tests.conftest.live_server`) and an HTTP client for it."""
    with (
        live_server("--model", str(INT8), *args, env=env) as (url, _),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


def test_video_source_plays_at_its_frame_rate_and_streams(tmp_path: Path, two_classes):
    clip = write_video(tmp_path / "clip.avi", [scene(two_classes[0])] * 300, fps=20)
    with served("--source", str(clip)) as http:
        time.sleep(1.0)
        first = http.get("/api/latest").json()
        time.sleep(2.0)
        second = http.get("/api/latest").json()
        assert first["camera"]["state"] == "up" and first["frame"] >= 1
        rate = (second["frame"] - first["frame"]) / (second["timestamp"] - first["timestamp"])
        assert 15 <= rate <= 22, f"a 20 FPS file must play at about 20 FPS, not {rate:.1f}"
        assert set(second) >= {"frame", "label", "class_id", "score", "fps", "timestamp"}
        parts = 0
        with http.stream("GET", "/api/stream") as stream:
            assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
            buffer = b""
            for chunk in stream.iter_bytes():
                buffer += chunk
                parts = buffer.count(b"Content-Type: image/jpeg")
                if parts >= 5:
                    break
        jpeg = buffer.split(b"\r\n\r\n", 1)[1]
        assert jpeg.startswith(b"\xff\xd8") and Image.open(io.BytesIO(jpeg)).size == (640, 480)


def test_video_ends_or_loops(tmp_path: Path, two_classes):
    clip = write_video(tmp_path / "short.avi", [scene(two_classes[0])] * 10, fps=30)
    with live_server("--model", str(INT8), "--source", str(clip)) as (url, _):
        time.sleep(2.0)
        latest = httpx.get(f"{url}/api/latest").json()
        assert latest["camera"]["state"] == "ended" and latest["frame"] == 10
    with live_server("--model", str(INT8), "--source", str(clip), "--loop") as (url, _):
        time.sleep(2.0)
        latest = httpx.get(f"{url}/api/latest").json()
        assert latest["camera"]["state"] == "up" and latest["frame"] > 20


def test_camera_lost_mid_run_keeps_the_api_up_and_comes_back(tmp_path: Path, two_classes):
    """A looping video that disappears behaves as a lost camera: down, retried, back up."""
    clip = write_video(tmp_path / "cam.avi", [scene(two_classes[0])] * 6, fps=30)
    spare = tmp_path / "spare.avi"
    shutil.copy(clip, spare)
    with served("--source", str(clip), "--loop") as http:
        time.sleep(0.5)
        assert http.get("/api/latest").json()["camera"]["state"] == "up"
        clip.unlink()
        deadline = time.time() + 10
        while (camera := http.get("/api/latest").json()["camera"])["state"] != "down":
            assert time.time() < deadline, camera
            time.sleep(0.1)
        assert camera["error"] and camera["retry_in_s"] is not None
        tiny = png_bytes(np.zeros((28, 28), np.uint8))
        r = http.post("/api/classify", content=tiny, headers={"content-type": "image/png"})
        assert r.status_code == 200, "the API keeps serving while the camera is down"
        shutil.copy(spare, clip)
        deadline = time.time() + 20
        while (camera := http.get("/api/latest").json()["camera"])["state"] != "up":
            assert time.time() < deadline, camera
            time.sleep(0.2)
        assert camera["attempts"] >= 2


def test_camera_worker_retries_a_camera_that_stops(two_classes):
    """A camera (not a file) that stops delivering is down, then reopened with backoff."""
    import asyncio

    from edge_runtime.serve.camera import CameraWorker, FrameHub
    from edge_runtime.serve.metrics import Metrics

    opened = []

    def camera():
        opened.append(time.time())
        yield from [scene(two_classes[0])] * 3  # then the camera goes silent

    async def run() -> list[str]:
        hub = FrameHub()
        worker = CameraWorker(
            camera, ends=False, classifier=Classifier.from_file(INT8), hub=hub, metrics=Metrics(())
        )
        worker.start()
        states = []
        for _ in range(40):
            await asyncio.sleep(0.05)
            states.append(hub.camera.state)
        worker.stop()
        return states

    states = asyncio.run(run())
    assert "down" in states and len(opened) >= 2, (states, opened)
    assert opened[1] - opened[0] >= 0.45, "the retry waits (backoff)"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_ends_streams_releases_the_camera_and_exits_0(
    tmp_path: Path, stop, two_classes
):
    clip = write_video(tmp_path / "clip.avi", [scene(two_classes[0])] * 30, fps=30)
    with live_server("--model", str(INT8), "--source", str(clip), "--loop", stop=stop) as (
        url,
        proc,
    ):
        viewer = subprocess.Popen(["curl", "-sN", f"{url}/api/stream"], stdout=subprocess.DEVNULL)
        time.sleep(1.0)
        started = time.time()
        proc.send_signal(stop)
        proc.wait(timeout=20)
        assert time.time() - started < 5, "an open stream must not hold the shutdown"
        viewer.wait(timeout=10)


def test_bad_source_and_model_are_one_line_errors(tmp_path: Path):
    r = run_cli("fmnist-edge", "serve", "--model", str(INT8), "--source", str(tmp_path / "no.avi"))
    assert r.returncode == 1 and r.stderr.strip().endswith("no such video file or camera")
    r = run_cli("fmnist-edge", "serve", "--model", str(tmp_path / "none.tflite"))
    assert r.returncode == 1 and "no such model file" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.avi").write_bytes(b"not a video" * 100)
    r = run_cli("fmnist-edge", "serve", "--model", str(INT8), "--source", str(tmp_path / "bad.avi"))
    assert r.returncode == 1 and "cannot open" in r.stderr and "Traceback" not in r.stderr
    # Not a Pi (no picamera2 here): said at start, not retried forever behind a running server.
    r = run_cli("fmnist-edge", "serve", "--model", str(INT8), "--source", "picamera")
    assert r.returncode == 1 and "python3-picamera2" in r.stderr and "Traceback" not in r.stderr


def test_serve_without_the_serve_extra_says_what_to_install(tmp_path: Path):
    # A module that fails to import as a missing one does: stands in for an absent starlette.
    (tmp_path / "starlette.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'starlette'\", name='starlette')\n"
    )
    r = run_cli("fmnist-edge", "serve", "--model", str(INT8), env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().endswith("starlette is missing: pip install '.[edge,serve]'")


def test_port_in_use_is_a_one_line_error():
    with live_server("--model", str(INT8)) as (url, _):
        port = url.rsplit(":", 1)[1]
        r = run_cli("fmnist-edge", "serve", "--model", str(INT8), "--port", port)
    assert r.returncode == 1 and "cannot listen on" in r.stderr and "Traceback" not in r.stderr


# --- systemd --------------------------------------------------------------------------------------


def test_systemd_unit_verifies(tmp_path: Path):
    args = ["--model", str(INT8), "--host", "0.0.0.0", "--source", "/dev/video0"]
    r = run_cli("fmnist-edge", "serve", *args, "--systemd-unit", env={"FMNIST_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    unit = r.stdout
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split("=", 1)[1].startswith("/") and f"--model {INT8.resolve()}" in exec_start
    assert TOKEN not in unit, "the token never goes into the unit"
    assert "put it in /etc/default/fmnist-edge" in r.stderr
    for line in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert line in unit.splitlines()
    user = re.search(r"^User=(.+)$", unit, re.M).group(1)
    assert user != "root"
    path = tmp_path / "fmnist-edge.service"
    path.write_text(unit)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if "fmnist-edge.service" in line
    ]
    assert verify.returncode == 0 and not problems, verify.stdout + verify.stderr


def test_systemd_unit_parses_back_into_the_same_options(tmp_path: Path, monkeypatch):
    """ExecStart, read as systemd reads it and parsed by the CLI, gives the options back."""
    import shlex

    from edge_runtime.cli import serve
    from edge_runtime.cli_support import options_from
    from edge_runtime.serve.server import service_options
    from edge_runtime.sources import parse_source

    folder = tmp_path / "my models, 100% tested"  # a space, a comma and a systemd specifier
    folder.mkdir()
    for ext in (".tflite", ".json"):
        shutil.copy(INT8.with_suffix(ext), folder / f"m{ext}")
    monkeypatch.chdir(tmp_path)
    options = ServeOptions(
        model=Path(folder.name) / "m.tflite",  # relative: the unit makes it absolute
        host="0.0.0.0",
        port=8443,
        source=parse_source("clip.avi"),
        loop=True,
        threads=2,
        runtime="tflite-runtime",
        max_upload_mb=2.5,
        token="not-in-the-unit",
    )
    unit = systemd_unit(options)
    line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    words = [
        w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line[len("ExecStart=") :])
    ]
    args = words[words.index("serve") + 1 :]
    monkeypatch.delenv("FMNIST_TOKEN", raising=False)
    parsed = options_from(serve.make_context("serve", args), besides=("unit",))
    assert parsed == service_options(options)
    assert parsed.model.is_absolute() and parsed.source.path == tmp_path / "clip.avi"
    assert parsed.token is None and "not-in-the-unit" not in unit


def test_a_client_that_goes_away_mid_upload_is_one_log_line():
    import socket

    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "serve", "--model", str(INT8), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().split(" on ", 1)[1].strip().rstrip("/")
        port = int(url.rsplit(":", 1)[1])
        paths = ("/api/classify", "/v2/models/fmnist/infer")
        for path in paths:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                sock.sendall(f"{head}Content-Length: 100000\r\n\r\n".encode() + b"\x89PNG")
                time.sleep(0.3)
        time.sleep(0.3)
        assert httpx.get(f"{url}/api/info").status_code == 200  # and it goes on serving
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "ERROR" not in err, err
    gone = [line for line in lines if "disconnected during POST" in line]
    assert [line.rsplit(" ", 1)[1] for line in gone] == list(paths), err


def test_systemd_unit_low_port_gets_only_that_capability():
    unit = systemd_unit(ServeOptions(model=INT8, port=80))
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in unit
    assert "CapabilityBoundingSet=\n" in systemd_unit(ServeOptions(model=INT8))


# --- dependencies -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_edge_and_serve_extras_resolve_without_tensorflow(tmp_path: Path):
    """What `pip install '.[edge,serve]'` would install, resolved for real, has no TensorFlow."""
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    r = subprocess.run(
        [*pip, "--report", str(report), f"{ROOT}[edge,serve]"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert r.returncode == 0, r.stderr
    installs = json.loads(report.read_text())["install"]
    names = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower() for i in installs}
    assert {
        "starlette",
        "uvicorn",
        "prometheus-client",
        "python-multipart",
        "ai-edge-litert",
    } <= names
    assert names.isdisjoint({"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "jax", "torch"})


# --- an unmodified Open Inference Protocol client -----------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_triton_client(binary: bool, two_classes):
    import tritonclient.http as triton

    from edge_runtime.preprocess import model_input

    images = model_input(np.stack(two_classes))
    with live_server("--model", str(INT8), "--token", TOKEN) as (url, _):
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("fmnist")  # a health call: no token, as probes send none
        meta = client.get_model_metadata("fmnist", headers=AUTH)
        assert meta["inputs"][0]["datatype"] == "UINT8"
        pixels = triton.InferInput("pixels", list(images.shape), "UINT8")
        pixels.set_data_from_numpy(images, binary_data=binary)
        wanted = triton.InferRequestedOutput("probabilities", binary_data=binary)
        result = client.infer("fmnist", [pixels], outputs=[wanted], headers=AUTH)
        probs = result.as_numpy("probabilities")
        # The README's call: no outputs named, so the server picks the format.
        default = client.infer("fmnist", [pixels], headers=AUTH).as_numpy("probabilities")
        client.close()
    np.testing.assert_allclose(default, probs, atol=1e-6)
    assert probs.shape == (2, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, Classifier.from_file(INT8).probabilities(images), atol=1e-6)


# --- soak -------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def soak_requests(shirt_png: bytes, tiny_png: bytes) -> list[tuple[str, str, dict]]:
    """Ten kinds of request: nine good, one of each malformed kind in turn."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    png = {"content-type": "image/png"}
    good = [
        ("POST", "/api/classify", {"content": tiny_png, "headers": png}),
        ("POST", "/api/classify?top_k=3", {"files": [("file", ("a.png", tiny_png))] * 2}),
        ("POST", "/api/classify", {"content": shirt_png, "headers": png}),
        ("POST", "/v2/models/fmnist/infer", {"json": v2_body(images)}),
        ("GET", "/api/info", {}),
        ("GET", "/v2/health/ready", {}),
        ("POST", "/api/classify?preprocessed=1", {"content": tiny_png, "headers": png}),
        ("GET", "/metrics", {}),
        ("GET", "/v2/models/fmnist", {}),
    ]
    bad = [
        ("POST", "/api/classify", {"content": rng.bytes(500), "headers": png}),
        ("POST", "/api/classify", {"content": tiny_png[:60], "headers": png}),
        ("POST", "/api/classify", {"content": b"x", "headers": {"content-type": "text/csv"}}),
        ("POST", "/api/classify", {"content": b"--b\r\nxx", "headers": {"content-type": "multipart/form-data; boundary=b"}}),
        ("POST", "/v2/models/fmnist/infer", {"content": rng.bytes(300)}),
        ("POST", "/v2/models/fmnist/infer", {"content": pixels_tensor(data=[-1] * 784)}),
        ("POST", "/api/classify?top_k=99", {"content": tiny_png, "headers": png}),
        ("GET", "/api/nothing-here", {}),
        ("POST", "/v2/models/fmnist/infer", {"content": b"{}", "headers": {"inference-header-content-length": "99999"}}),
        ("DELETE", "/api/classify", {}),
    ]  # fmt: skip
    return [good[i % len(good)] if i % 10 else bad[(i // 10) % len(bad)] for i in range(3000)]


def test_soak_thousands_of_requests_a_tenth_malformed(shirt_png: bytes, tiny_png: bytes):
    requests = soak_requests(shirt_png, tiny_png)
    statuses: dict[int, int] = {}
    with live_server("--model", str(INT8)) as (url, proc), httpx.Client(base_url=url) as http:
        for n, (method, path, kwargs) in enumerate(requests):
            if n == 500:
                warm = rss_mb(proc.pid)
            status = http.request(method, path, **kwargs).status_code
            statuses[status] = statuses.get(status, 0) + 1
        growth = rss_mb(proc.pid) - warm
        assert http.get("/v2/health/live").status_code == 200, "alive after the soak"
    assert not [s for s in statuses if s >= 500], statuses
    assert sum(n for s, n in statuses.items() if s >= 400) >= 300, statuses
    assert growth < 10, f"RSS grew {growth:.1f} MB over {len(requests) - 500} requests"

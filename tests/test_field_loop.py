"""The field loop: capture what the model is unsure of, label it, swap a model in, monitor.

Captures and the label API run on the committed fixture models (no TensorFlow); the end-to-end
loop, which trains and converts, is in ``test_field_loop_end_to_end`` (slow).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from edge_runtime.captures import (
    FRAME,
    LABELLED,
    RECORD,
    SEEN,
    CameraCapture,
    CaptureError,
    CaptureStore,
    jpeg_of,
)
from edge_runtime.classifier import Classifier, Prediction
from edge_runtime.options import ServeOptions
from edge_runtime.serve import create_app
from tests.helpers import ROOT, TINY_INT8, live_server, write_video

INT8 = TINY_INT8
FLOAT32 = TINY_INT8.with_name("tiny_float32.tflite")
OTHER_SHAPE = TINY_INT8.with_name("tiny_32px.tflite")
DASHBOARD = ROOT / "monitoring" / "grafana-dashboard.json"


def unsure(score: float = 0.3) -> Prediction:
    top = [("Shirt", 6, score), ("T-shirt/top", 0, score / 2), ("Coat", 4, score / 4)]
    return Prediction("Shirt", 6, score, top)


def photo(seed: int = 0, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """An RGB frame of random blocks (each seed a different scene)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (size[1] // 20, size[0] // 20, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST))


def save(store: CaptureStore, seed: int = 0, *, score: float = 0.3):
    return store.save(
        frame_jpeg=jpeg_of(photo(seed)),
        seen=np.full((28, 28), seed % 256, np.uint8),
        prediction=unsure(score),
        source="upload",
        model_sha256="ab" * 32,
    )


def assert_whole(folder: Path) -> dict:
    """A capture folder holds its three files, each complete."""
    assert sorted(p.name for p in folder.iterdir()) == sorted([FRAME, SEEN, RECORD]), folder
    Image.open(folder / FRAME).load()
    assert Image.open(folder / SEEN).size == (28, 28)
    return json.loads((folder / RECORD).read_text())


# --- the capture store ------------------------------------------------------------------------


def test_a_capture_is_three_whole_files(tmp_path: Path):
    store = CaptureStore(tmp_path, max_bytes=2**20)
    capture = save(store)
    record = assert_whole(tmp_path / capture.id)
    assert record["id"] == capture.id and record["label"] is None and record["source"] == "upload"
    assert record["model_sha256"] == "ab" * 32 and len(record["top_k"]) == 3
    assert record["top_k"][0] == {"label": "Shirt", "class_id": 6, "score": 0.3}
    assert store.bytes == sum(p.stat().st_size for p in (tmp_path / capture.id).iterdir())
    assert CaptureStore(tmp_path, max_bytes=2**20).listing(labelled=False, limit=5) == [capture]


def test_label_files_it_where_the_trainer_reads_and_delete_removes_it(tmp_path: Path):
    store = CaptureStore(tmp_path, max_bytes=2**20)
    shoes, shirt, other = save(store, 1), save(store, 2), save(store, 3)
    assert store.label(shoes.id, "Sandal").label == "shoes"  # a class name: its photo folder
    assert store.label(shirt.id, "shirt").label == "shirt"  # a folder name
    assert store.label(other.id, "none").label == "none"
    for capture, folder in ((shoes, "shoes"), (shirt, "shirt"), (other, "none")):
        record = assert_whole(tmp_path / LABELLED / folder / capture.id)
        assert record["label"] == folder
    relabelled = store.label(shoes.id, "Ankle boot")  # same folder: stays
    assert relabelled.label == "shoes" and (tmp_path / LABELLED / "shoes" / shoes.id).is_dir()
    assert [c.id for c in store.listing(labelled=True, limit=10)] == [other.id, shirt.id, shoes.id]
    assert store.listing(labelled=False, limit=10) == []
    store.delete(shirt.id)
    assert not (tmp_path / LABELLED / "shirt" / shirt.id).exists()
    reread = CaptureStore(tmp_path, max_bytes=2**20)
    assert {c.id: c.label for c in reread.listing(labelled=True, limit=10)} == {
        shoes.id: "shoes",
        other.id: "none",
    }


def test_a_store_reads_past_what_is_not_its_own_and_deletes_none_of_it(tmp_path: Path):
    store = CaptureStore(tmp_path, max_bytes=2**20)
    good, edited, gone = save(store, 1), save(store, 2), save(store, 3)
    record = tmp_path / edited.id / "capture.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "time": "yesterday"}))
    (tmp_path / ".tmp-notes").mkdir()  # a hidden folder the store did not make
    (tmp_path / ".tmp-notes" / "keep.txt").write_text("mine")
    shutil.rmtree(tmp_path / gone.id)  # removed behind the store's back
    with pytest.raises(CaptureError) as err:
        store.label(gone.id, "Shirt")
    assert err.value.status == 404 and gone.id not in [c.id for c in store.listing(
        labelled=False, limit=10)]  # fmt: skip
    reopened = CaptureStore(tmp_path, max_bytes=2**20)
    assert [c.id for c in reopened.listing(labelled=False, limit=10)] == [good.id]
    assert (tmp_path / ".tmp-notes" / "keep.txt").read_text() == "mine"
    assert (tmp_path / edited.id).is_dir(), "a record it cannot read is left alone"


def test_the_budget_drops_the_oldest_unlabelled_and_never_labelled(tmp_path: Path):
    store = CaptureStore(tmp_path, max_bytes=2**20)
    kept = save(store, 0)
    store.label(kept.id, "Coat")
    size = kept.bytes
    store.max_bytes = size * 4 + size // 2  # room for four and a half captures
    saved = [save(store, seed) for seed in range(1, 10)]
    assert all(c is not None for c in saved)
    assert store.bytes <= store.max_bytes
    unlabelled = store.listing(labelled=False, limit=100)
    assert [c.id for c in unlabelled] == [c.id for c in saved[-3:]][::-1], "the newest stay"
    assert store.listing(labelled=True, limit=10)[0].id == kept.id, (
        "labelled ones are never dropped"
    )
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert on_disk == store.bytes
    store.max_bytes = size // 2  # the labelled capture alone is over budget
    assert save(store, 99) is None and store.listing(labelled=False, limit=10) == []
    assert store.listing(labelled=True, limit=10)[0].id == kept.id


def test_the_budget_holds_under_a_long_burst(tmp_path: Path):
    store = CaptureStore(tmp_path, max_bytes=300_000)
    for seed in range(400):
        save(store, seed)
        assert store.bytes <= store.max_bytes
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert on_disk <= store.max_bytes and store.count(labelled=False) > 10


def test_a_full_disk_stops_capturing_and_says_so_once(tmp_path: Path, monkeypatch, caplog):
    import edge_runtime.captures as captures

    store = CaptureStore(tmp_path, max_bytes=2**20)
    assert save(store, 1) is not None

    def full(path, data):  # noqa: ANN001
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(captures, "_write", full)
    with caplog.at_level("WARNING"):
        assert save(store, 2) is None and save(store, 3) is None
    assert store.state.state == "stopped" and "No space left on device" in store.state.error
    assert len([r for r in caplog.records if "capturing stopped" in r.getMessage()]) == 1
    assert not list(tmp_path.glob(".tmp-*")), "nothing half-written is left"
    assert store.count(labelled=False) == 1


def test_kill_9_during_a_capture_burst_leaves_only_whole_captures(tmp_path: Path):
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from edge_runtime.captures import CaptureStore\n"
        "from tests.test_field_loop import save\n"
        f"store = CaptureStore(Path({str(tmp_path)!r}), max_bytes=10**9)\n"
        "print('ready', flush=True)\n"
        "seed = 0\n"
        "while True:\n"
        "    save(store, seed)\n"
        "    seed += 1\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    captures = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(captures) > 5, "the burst saved captures before the kill"
    for folder in captures:
        assert_whole(folder)
    reopened = CaptureStore(tmp_path, max_bytes=10**9)
    assert not list(tmp_path.glob(".tmp-*")), "a half-written capture is cleared at start"
    assert reopened.count(labelled=False) == len(captures)


def test_a_camera_saves_unsure_frames_once_a_second_and_a_still_scene_once(
    tmp_path: Path, monkeypatch
):
    import edge_runtime.captures as captures

    clock = [1000.0]
    monkeypatch.setattr(captures.time, "monotonic", lambda: clock[0])
    store = CaptureStore(tmp_path, max_bytes=2**22)
    camera = CameraCapture(store, below=0.5, source="0")
    seen = np.zeros((28, 28), np.uint8)

    def frame(seed: int, score: float) -> bool:
        clock[0] += 0.4
        return camera.consider(photo(seed), seen, unsure(score), "ab" * 32) is not None

    assert not frame(0, 0.9), "a sure frame is not saved"
    assert frame(1, 0.3)
    assert not frame(2, 0.3), "at most one a second"
    assert not frame(3, 0.3)
    assert frame(4, 0.3)
    assert not frame(4, 0.3) and not frame(4, 0.3) and not frame(4, 0.3), "a still scene once"
    assert frame(5, 0.3)
    assert store.count(labelled=False) == 3
    assert {c.source for c in store.listing(labelled=False, limit=10)} == {"0"}


# --- the capture and label API ----------------------------------------------------------------


@pytest.fixture
def captured(tmp_path: Path):
    """A server that captures every upload it is below 100% sure of: ``(client, folder)``."""
    folder = tmp_path / "captures"
    options = ServeOptions(model=INT8, capture=folder, capture_below=1.0)
    with TestClient(create_app(options)) as client:
        yield client, folder


def png(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo(seed)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: TestClient, seed: int = 0, query: str = "") -> dict:
    r = client.post(
        f"/api/classify{query}", content=png(seed), headers={"content-type": "image/png"}
    )
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def test_uploads_are_captured_when_unsure_or_asked(captured, tmp_path: Path):
    client, folder = captured
    result = upload(client, 1)
    record = assert_whole(folder / result["capture"])
    assert (
        record["source"] == "upload" and record["top_k"][0]["label"] == result["top_k"][0]["label"]
    )
    # Sure enough for a server without a threshold: saved only when asked.
    with TestClient(create_app(ServeOptions(model=INT8, capture=tmp_path / "other"))) as plain:
        assert "capture" not in upload(plain, 1)
        asked = upload(plain, 1, "?capture=1")
        assert_whole(tmp_path / "other" / asked["capture"])
    with TestClient(create_app(ServeOptions(model=INT8))) as none:
        r = none.post(
            "/api/classify?capture=1", content=png(), headers={"content-type": "image/png"}
        )
        assert r.status_code == 404 and "--capture" in r.json()["error"]


def test_the_label_api_lists_labels_deletes_and_serves_the_images(captured):
    client, folder = captured
    ids = [upload(client, seed)["capture"] for seed in range(3)]
    listing = client.get("/api/captures?labelled=0").json()
    assert [c["id"] for c in listing["captures"]] == ids[::-1]
    assert listing["unlabelled"] == 3 and listing["labelled"] == 0 and listing["state"] == "on"
    first = listing["captures"][-1]
    frame = client.get(first["frame"])
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert client.get(first["seen"]).content == (folder / ids[0] / SEEN).read_bytes()
    r = client.post(f"/api/captures/{ids[0]}/label", json={"label": "Trouser"})
    assert r.status_code == 200 and r.json()["label"] == "pants"
    assert_whole(folder / LABELLED / "pants" / ids[0])
    assert client.get(r.json()["frame"]).status_code == 200  # served from its new place
    assert [c["id"] for c in client.get("/api/captures?labelled=1").json()["captures"]] == [ids[0]]
    assert client.delete(f"/api/captures/{ids[1]}").json() == {"deleted": ids[1]}
    assert not (folder / ids[1]).exists()
    assert client.get("/api/captures?labelled=0").json()["unlabelled"] == 1
    text = client.get("/metrics").text
    assert 'fmnist_captures_saved_total{source="upload"} 3.0' in text
    assert 'fmnist_captures_labelled_total{label="pants"} 1.0' in text
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert f"fmnist_capture_disk_bytes {float(size)}" in text


@pytest.mark.parametrize(
    "path",
    [
        "/api/captures/..%2F..%2Fetc%2Fpasswd/label",
        "/api/captures/%2Fetc%2Fpasswd/label",
        "/api/captures/..%2Flabelled/label",
        "/api/captures/abc%00def/label",
        "/api/captures/" + "7" * 5000 + "/label",
        "/api/captures/20991231T000000-00000000/label",  # the right form, but no such capture
    ],
)
def test_the_label_api_refuses_path_tricks(captured, path: str):
    client, folder = captured
    upload(client)
    before = sorted(str(p) for p in folder.parent.rglob("*"))
    r = client.post(path, json={"label": "Shirt"})
    assert 400 <= r.status_code < 500 and "error" in r.json(), r.text
    delete = path.removesuffix("/label")
    assert 400 <= client.delete(delete).status_code < 500
    assert 400 <= client.get(f"{delete}/frame.jpg").status_code < 500
    assert sorted(str(p) for p in folder.parent.rglob("*")) == before, "nothing moved or removed"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"label": "Kilt"}, 422),
        ({"label": "../../etc"}, 422),
        ({"label": 6}, 400),
        ({"name": "Shirt"}, 400),
        (["Shirt"], 400),
    ],
)
def test_an_unknown_label_is_a_4xx(captured, body, status: int):
    client, folder = captured
    capture = upload(client)["capture"]
    r = client.post(f"/api/captures/{capture}/label", json=body)
    assert r.status_code == status and "error" in r.json()
    for text in (b"{not json", b'{"label": "Shirt", "n": ' + b"1" * 5000 + b"}", b"[" * 50_000):
        r = client.post(f"/api/captures/{capture}/label", content=text)
        assert r.status_code == 400, r.text
    assert (folder / capture).is_dir() and not (folder / LABELLED).exists()


def test_a_full_disk_keeps_serving(captured, monkeypatch):
    import edge_runtime.captures as captures

    client, _ = captured
    monkeypatch.setattr(
        captures, "_write", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
    )
    for seed in range(3):
        result = upload(client, seed)  # answered, not captured
        assert result["capture"] is None and result["label"]
    info = client.get("/api/info").json()["captures"]
    assert info["state"] == "stopped" and "capturing stopped" in info["error"]
    assert "fmnist_capture_stopped 1.0" in client.get("/metrics").text
    assert client.get("/api/captures").json()["state"] == "stopped"


def test_without_a_capture_folder_the_capture_api_is_a_404():
    with TestClient(create_app(ServeOptions(model=INT8))) as client:
        assert client.get("/api/info").json()["captures"] is None
        r = client.get("/api/captures")
        assert r.status_code == 404 and "--capture" in r.json()["error"]


# --- monitoring -------------------------------------------------------------------------------


def test_confidence_is_monitored_per_label_and_source(captured):
    client, _ = captured
    results = [upload(client, seed) for seed in range(4)]
    text = client.get("/metrics").text
    for result in results:
        assert f'label="{result["top_k"][0]["label"]}",source="upload"' in text
    count = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("fmnist_prediction_score_count{")
    )
    assert count == 4
    assert 'fmnist_answers_total{label="' in text and "fmnist_not_sure_total" in text


def exported_names(text: str) -> set[str]:
    """Every metric name a scrape holds: its families, and their samples' names."""
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    names |= {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
              for line in text.splitlines() if line and not line.startswith("#")}  # fmt: skip
    for name in list(names):  # a family's histogram and counter series
        names |= {f"{name}{suffix}" for suffix in ("_bucket", "_count", "_sum", "_total")}
    return names


def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(tmp_path: Path):
    dashboard = json.loads(DASHBOARD.read_text())
    clip = write_video(tmp_path / "clip.avi", [photo(0, (64, 48))] * 10)
    options = ServeOptions(model=INT8, capture=tmp_path / "c", source=parse(str(clip)))
    with TestClient(create_app(options)) as client:
        exported = exported_names(client.get("/metrics").text)
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(expressions) >= 10
    queried = set()
    for expr in expressions:
        names = set(re.findall(r"\b(fmnist_[a-z_]+)\b", expr))
        assert names, f"a query with no fmnist metric: {expr}"
        queried |= names
    assert queried - exported == set(), (
        f"the dashboard queries what the server lacks: {queried - exported}"
    )
    for family in ("fmnist_prediction_score_bucket", "fmnist_answers_total", "fmnist_not_sure_total",
                   "fmnist_captures_saved_total", "fmnist_captures_labelled_total",
                   "fmnist_capture_disk_bytes", "fmnist_model_info"):  # fmt: skip
        assert family in queried, family


def parse(text: str):
    from edge_runtime.sources import parse_source

    return parse_source(text)


# --- swapping the model -----------------------------------------------------------------------


def install(model: Path, source: Path) -> None:
    """Put ``source`` and its sidecar at ``model``, each by an atomic rename (model first)."""
    for ext in (".tflite", ".json"):
        tmp = model.with_name(f".incoming{ext}")
        shutil.copy(source.with_suffix(ext), tmp)
        os.replace(tmp, model.with_suffix(ext))


def version_of(model: Path) -> str:
    return json.loads(model.with_suffix(".json").read_text())["sha256"]["tflite"][:12]


@pytest.fixture
def swappable(tmp_path: Path) -> Path:
    model = tmp_path / "model.tflite"
    install(model, INT8)
    return model


def test_a_load_request_swaps_the_model_in_after_its_checks(swappable: Path):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    with TestClient(create_app(ServeOptions(model=swappable))) as client:
        before = client.get("/api/info").json()["model"]
        assert before["version"] == version_of(INT8)
        install(swappable, FLOAT32)
        r = client.post("/v2/repository/models/fmnist/load")
        assert r.status_code == 200, r.text
        assert r.json()["version"] == version_of(FLOAT32)
        after = client.get("/api/info").json()["model"]
        assert (
            after["sha256"].startswith(version_of(FLOAT32)) and after["quantization"] == "float32"
        )
        assert after["loaded_at"] > before["loaded_at"]
        assert client.get("/v2/models/fmnist").json()["versions"] == [version_of(FLOAT32)]
        body = {"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [3, 28, 28, 1],
                            "data": images.reshape(-1).tolist()}]}  # fmt: skip
        answer = client.post("/v2/models/fmnist/infer", json=body).json()
        assert answer["model_version"] == version_of(FLOAT32)
        expected = Classifier.from_file(FLOAT32).probabilities(images)
        np.testing.assert_allclose(
            np.reshape(answer["outputs"][0]["data"], (3, 10)), expected, atol=1e-6
        )
        assert client.post("/v2/repository/index").json()[0]["version"] == version_of(FLOAT32)
        text = client.get("/metrics").text
        assert f'version="{version_of(FLOAT32)}"' in text
        assert 'fmnist_model_reloads_total{result="swapped"} 1.0' in text


def damaged(model: Path) -> None:
    model.write_bytes(model.read_bytes()[:-64] + bytes(64))


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda m: damaged(m), "does not match its sidecar"),
        (
            lambda m: shutil.copy(FLOAT32.with_suffix(".json"), m.with_suffix(".json")),
            "does not match",
        ),
        (lambda m: install(m, OTHER_SHAPE), "do not fit a 28x28x1 image"),
        (lambda m: m.with_suffix(".json").unlink(), "sidecar model.json is missing"),
        (lambda m: m.write_bytes(b"not a model"), "not a TFLite model"),
    ],
    ids=["corrupt model", "wrong sidecar", "another shape", "no sidecar", "not a model"],
)
def test_a_bad_model_is_refused_and_the_old_one_keeps_answering(swappable: Path, spoil, reason):
    with TestClient(create_app(ServeOptions(model=swappable))) as client:
        first = upload(client)
        spoil(swappable)
        r = client.post("/v2/repository/models/fmnist/load")
        assert r.status_code == 400 and reason in r.json()["error"], r.text
        assert version_of(INT8) in r.json()["error"], "it says which model still serves"
        assert upload(client) == first, "the old model still answers"
        assert client.get("/api/info").json()["model"]["version"] == version_of(INT8)
        assert 'fmnist_model_reloads_total{result="refused"} 1.0' in client.get("/metrics").text


def test_a_model_whose_sidecar_lies_about_its_accuracy_is_refused(swappable: Path):
    sidecar = json.loads(swappable.with_suffix(".json").read_text())
    sidecar["known_images"]["accuracy"] = 0.99
    with TestClient(create_app(ServeOptions(model=swappable))) as client:
        swappable.with_suffix(".json").write_text(json.dumps(sidecar))
        r = client.post("/v2/repository/models/fmnist/load")
        assert r.status_code == 400 and "known images" in r.json()["error"]
        assert client.post("/v2/repository/models/other/load").status_code == 404


def test_sighup_and_watch_swap_a_live_server(swappable: Path):
    with live_server("--model", str(swappable), "--watch") as (url, proc):

        def version() -> str:
            return httpx.get(f"{url}/api/info").json()["model"]["version"]

        def wait_for(expected: str) -> None:
            deadline = time.time() + 15
            while version() != expected:
                assert time.time() < deadline, f"still {version()}, not {expected}"
                time.sleep(0.2)

        assert version() == version_of(INT8)
        install(swappable, FLOAT32)  # --watch notices the new files
        wait_for(version_of(FLOAT32))
    with live_server("--model", str(swappable)) as (url, proc):
        install(swappable, INT8)
        time.sleep(1.5)
        assert httpx.get(f"{url}/api/info").json()["model"]["version"] == version_of(FLOAT32)
        proc.send_signal(signal.SIGHUP)
        wait_for(version_of(INT8))


def test_no_request_fails_during_ten_swaps_under_load(swappable: Path, tmp_path: Path):
    from benchmarks.serving import wrk

    body = tmp_path / "body.png"
    body.write_bytes(png())
    with live_server("--model", str(swappable)) as (url, _):
        result = {}
        load = threading.Thread(
            target=lambda: result.update(
                wrk(f"{url}/api/classify", body, content_type="image/png", seconds=8, work=tmp_path)
            )
        )
        load.start()
        time.sleep(1.0)
        versions = []
        for i in range(10):
            install(swappable, FLOAT32 if i % 2 == 0 else INT8)
            r = httpx.post(f"{url}/v2/repository/models/fmnist/load", timeout=30)
            assert r.status_code == 200, r.text
            versions.append(r.json()["version"])
            time.sleep(0.4)
        load.join()
    assert versions == [version_of(FLOAT32), version_of(INT8)] * 5
    assert result["requests"] > 1000 and result["errors"] == 0, result


def test_the_camera_thread_follows_a_swap(swappable: Path, tmp_path: Path):
    from edge_runtime.preprocess import model_input
    from edge_runtime.sources import ImageFolder

    # One lossless still, looped: every frame the camera thread classifies is this one. (The
    # frames of an MJPEG clip of one still decode differently, the first from the rest, so a
    # score measured on one frame of a clip is on the page only now and then.)
    still = tmp_path / "still"
    still.mkdir()
    Image.fromarray(photo(7, (320, 240))).save(still / "still.png")
    frame = next(ImageFolder(still).open())
    expected = {
        version_of(m): Classifier.from_file(m).probabilities(model_input([frame]))[0].max()
        for m in (INT8, FLOAT32)
    }
    with live_server("--model", str(swappable), "--source", str(still), "--loop") as (url, _):

        def latest_score(version: str) -> None:
            deadline = time.time() + 15
            while True:
                latest = httpx.get(f"{url}/api/latest").json()
                if latest["score"] is not None and abs(latest["score"] - expected[version]) < 1e-4:
                    return
                assert time.time() < deadline, (latest, expected)
                time.sleep(0.1)

        latest_score(version_of(INT8))
        install(swappable, FLOAT32)
        assert httpx.post(f"{url}/v2/repository/models/fmnist/load").status_code == 200
        latest_score(version_of(FLOAT32))


def test_webcam_captures_what_it_is_unsure_of(tmp_path: Path):
    from tests.helpers import run_cli

    frames = [photo(seed, (320, 240)) for seed in range(6) for _ in range(10)]
    clip = write_video(tmp_path / "clip.avi", frames * 40)  # 2,400 frames, a new scene every 10
    folder = tmp_path / "captures"
    r = run_cli(
        "fmnist-edge", "webcam", "--model", str(INT8), "--source", str(clip), "--headless",
        "--capture", str(folder), "--capture-below", "1",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    captures = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert captures and f"; {len(captures)} captures saved" in r.stderr
    times = sorted(assert_whole(p)["time"] for p in captures)
    # At most one a second (by the monotonic clock; the records hold wall-clock times).
    assert all(b - a >= 0.9 for a, b in zip(times, times[1:], strict=False)), times
    assert {assert_whole(p)["source"] for p in captures} == {str(clip)}


# --- the whole loop, end to end ---------------------------------------------------------------


@pytest.mark.slow
def test_field_loop_end_to_end(tmp_path: Path):
    """Capture from a video, label through the API, train briefly with the labels, convert,
    swap the new model in, and it answers."""
    from edge_runtime.photos import labelled_photos
    from tests.helpers import run_cli
    from trainer.photos import calibration_split

    photos = labelled_photos(ROOT / "data" / "real-photos" / "validation")[::40]
    frames = []
    for photo in photos:
        with Image.open(photo.path) as image:
            frames += [np.asarray(image.convert("RGB").resize((320, 240)))] * 15  # 0.5 s each
    clip = write_video(tmp_path / "garments.avi", frames)
    served = tmp_path / "served" / "model.tflite"
    served.parent.mkdir()
    install(served, INT8)
    folder = tmp_path / "captures"
    args = ("--source", str(clip), "--loop", "--capture", str(folder), "--capture-below", "1")
    with live_server("--model", str(served), *args) as (url, _):
        # 1. Capture: the camera saves what it is unsure of (here, every scene), once a second.
        deadline = time.time() + 30
        while len(httpx.get(f"{url}/api/captures").json()["captures"]) < 3:
            assert time.time() < deadline, "no captures"
            time.sleep(0.3)
        captures = httpx.get(f"{url}/api/captures").json()["captures"]
        # 2. Label through the API, as the page's buttons do.
        for capture, label in zip(captures, ("Shirt", "Trouser", "Sandal"), strict=False):
            r = httpx.post(f"{url}/api/captures/{capture['id']}/label", json={"label": label})
            assert r.status_code == 200, r.text
        labelled = folder / "labelled"
        assert sorted(p.name for p in labelled.iterdir()) == ["pants", "shirt", "shoes"]
        # 3. Train briefly with the labelled captures besides the vendored photos.
        out = tmp_path / "retrained"
        r = run_cli("fmnist-train", "fit", "--photos", str(labelled), "--limit", "3000",
                    "--epochs", "1", "--photo-copies", "1", "--out-dir", str(out), timeout=1200)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["config"]["photos"] == [str(labelled)]
        # The vendored photos (less the share held out to calibrate with), plus the three.
        vendored, _ = calibration_split(labelled_photos(ROOT / "data" / "real-photos" / "train"))
        assert metrics["photos"]["train_photos"] == len(vendored) + 3
        # 4. Convert (the float32 model is the quickest to make).
        r = run_cli("fmnist-convert", "--model", str(out / "model.keras"), "--quantize",
                    "float32", "--out-dir", str(out), timeout=1200)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        new = out / "model_float32.tflite"
        # 5. Swap: copy the two files over the served ones, then ask for the load.
        install(served, new)
        r = httpx.post(f"{url}/v2/repository/models/fmnist/load", timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == version_of(new)
        # 6. The new model answers.
        info = httpx.get(f"{url}/api/info").json()["model"]
        assert info["version"] == version_of(new) and info["quantization"] == "float32"
        with open(photos[0].path, "rb") as f:
            r = httpx.post(
                f"{url}/api/classify", content=f.read(), headers={"content-type": "image/jpeg"}
            )
        assert r.status_code == 200 and r.json()["results"][0]["label"]

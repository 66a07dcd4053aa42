"""``fmnist-bench --serve``: a live ``fmnist-edge serve`` under a real load generator (wrk).

Measured in one run, on one machine, load generator included: requests/s, p50/p99 latency and
errors at 16 concurrent connections for two uploads (a 28×28 PNG and a catalogue-style photo),
beside what the same bytes cost in-process with the :class:`Classifier` alone (decode,
preprocess, invoke), and the MJPEG stream's frame rate as a client receives it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_runtime.classifier import Classifier
from edge_runtime.preprocess import decode_image, model_input

CONNECTIONS = 16
WRK_THREADS = 2
# wrk posts the file named by $FMNIST_BODY and prints one JSON line of exact figures (latency
# percentiles in microseconds, every kind of error) instead of its rounded text summary.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("FMNIST_TYPE")
local file = io.open(os.getenv("FMNIST_BODY"), "rb")
wrk.body = file:read("*a")
file:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@contextlib.contextmanager
def running_server(
    *args: str, env: dict[str, str] | None = None, stop: int = signal.SIGTERM
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``fmnist-edge serve --port 0 ARGS`` in a subprocess: yields ``(base URL, process)``.

    The URL is read from the line the server prints once it listens. On exit the server gets
    ``stop`` and must end by itself with exit code 0.

    Raises:
        RuntimeError: It did not start, or did not stop cleanly.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        # A background job inherits SIGINT ignored; a terminal's Ctrl-C arrives with the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = proc.stdout.readline()
    if " on http://" not in first:
        proc.kill()
        raise RuntimeError(f"fmnist-edge serve did not start: {first!r} {proc.communicate()}")
    url = first.split(" on ", 1)[1].strip().rstrip("/")
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"fmnist-edge serve exited {proc.returncode}: {err.strip()}")


def catalogue_photo() -> bytes:
    """A 600×800 JPEG of a dark garment on a light studio background, as a shop would post."""
    rng = np.random.default_rng(0)
    photo = np.full((800, 600, 3), 238, np.uint8) + rng.integers(0, 8, (800, 600, 1), np.uint8)
    photo[120:700, 170:430] = (52, 60, 90)  # body
    photo[120:330, 90:170] = photo[120:330, 430:510] = (52, 60, 90)  # sleeves
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def in_process_us(classifier: Classifier, data: bytes, *, repeats: int) -> float:
    """Median µs to decode, preprocess and classify ``data`` with the Classifier alone."""
    times = []
    for _ in range(repeats + 5):
        start = time.perf_counter()
        classifier.probabilities(model_input([decode_image(data, "upload")]))
        times.append(time.perf_counter() - start)
    return statistics.median(times[5:]) * 1e6


def wrk(url: str, body: Path, *, content_type: str, seconds: int, work: Path) -> dict[str, Any]:
    """POST ``body`` to ``url`` from :data:`CONNECTIONS` connections for ``seconds``."""
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    cmd = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "-s",
        str(script),
        url,
    ]
    env = {**os.environ, "FMNIST_BODY": str(body), "FMNIST_TYPE": content_type}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    raw = json.loads(lines[-1])
    errors = sum(raw["errors"].values())
    return {
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "requests": raw["requests"],
        "errors": errors,
        "error_kinds": raw["errors"],
        "connections": CONNECTIONS,
        "seconds": seconds,
    }


def stream_fps(url: str, *, seconds: float) -> dict[str, Any]:
    """Frames per second of ``/api/stream`` as a client receives them (after the first)."""
    boundary = b"--frame\r\n"
    frames, started, buffer = 0, None, b""
    with urllib.request.urlopen(f"{url}/api/stream", timeout=30) as response:
        while True:
            buffer += response.read1(65536)
            count = buffer.count(boundary)
            if count:
                buffer = buffer[buffer.rfind(boundary) + len(boundary) :]
                if started is None:
                    started, count = time.perf_counter(), count - 1
                frames += count
            if started is not None and time.perf_counter() - started >= seconds:
                break
    elapsed = time.perf_counter() - started
    return {"fps": round(frames / elapsed, 1), "frames": frames, "seconds": round(elapsed, 2)}


def serve_bench(model: Path, *, png: Path, clip: Path, quick: bool, work: Path) -> dict[str, Any]:
    """The whole serving benchmark for ``model``.

    Args:
        model: The .tflite the server loads (with its sidecar).
        png: A 28×28 PNG to upload (a test image).
        clip: A 640×480 video the server plays, looped, as its camera.
        quick: Shorter runs (CI).
        work: A scratch folder.

    Raises:
        RuntimeError: wrk is missing or failed, or the server misbehaved.
    """
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run `make tools-bench` (apt-get install wrk)")
    seconds = 3 if quick else 10
    photo = work / "photo.jpg"
    photo.write_bytes(catalogue_photo())
    uploads = {"28x28 PNG": ("image/png", png), "catalogue photo": ("image/jpeg", photo)}
    classifier = Classifier.from_file(model)
    loads = []
    # A server without a camera for the load, so that decoding video does not share its CPU.
    with running_server("--model", str(model)) as (url, _):
        for name, (content_type, path) in uploads.items():
            data = path.read_bytes()
            target = f"{url}/api/classify"
            wrk(target, path, content_type=content_type, seconds=1, work=work)  # warm-up
            result = wrk(target, path, content_type=content_type, seconds=seconds, work=work)
            cost = in_process_us(classifier, data, repeats=200)
            loads.append(
                {
                    "upload": name,
                    "bytes": len(data),
                    **result,
                    "in_process_us": round(cost, 1),
                    "in_process_per_s": round(1e6 / cost, 1),
                }
            )
    with running_server("--model", str(model), "--source", str(clip), "--loop") as (url, _):
        stream = stream_fps(url, seconds=3 if quick else 10)
    return {
        "model": model.name,
        "load": loads,
        "stream": {**stream, "resolution": "640x480", "source_fps": 30},
        "load_generator": f"wrk -t{WRK_THREADS} -c{CONNECTIONS}, on the same machine",
    }

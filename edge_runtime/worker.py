"""The one subprocess worker, and the one helper that runs a child Python and reads its answer.

Why a fresh process: tflite-runtime 2.14 cannot create an interpreter in a process that has
imported TensorFlow (``ValueError: vector::reserve``), and a process of its own makes its peak
memory mean "a process that loaded this model and classified". The converter checks each model
on tflite-runtime here; the benchmarks time every model × runtime here.

Protocol: ``python -m edge_runtime.worker`` reads one :class:`Job` as JSON on stdin and prints
its :class:`Report` as one JSON object on the last line of stdout. Call :func:`run_job` rather
than spawning it by hand: both ends of the protocol are these two types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime import INPUT_SHAPE
from edge_runtime.classifier import Classifier, ModelError, RuntimeMissingError
from edge_runtime.preprocess import ImageError, decode_image, load_image, model_input
from edge_runtime.sources import VideoFile

WARMUP = 10
"""Untimed calls before timing: the first invokes allocate and fill caches."""


class WorkerError(RuntimeError):
    """A child process printed no JSON answer. ``str()`` is one line with its last error line."""


@dataclass(frozen=True, kw_only=True)
class Job:
    """What the worker does with one model on one runtime, in this order.

    Attributes:
        model: A .tflite file (its sidecar is not needed: the converter checks models before
            it writes their sidecars).
        runtime: A name from :data:`edge_runtime.vocab.RUNTIMES`.
        threads: Interpreter threads for ``inputs`` and ``video``.
        output_is: ``probabilities`` or ``logits``: what the model outputs (its sidecar's
            ``output_is``).
        mirror_average: Answer with the mean over each image and its mirror image (its
            sidecar's ``mirror_average``).
        inputs: A .npy file of model input (uint8 N×28×28×1) to classify...
        outputs: ...saving the model's float32 N×10 dequantized outputs (see
            :meth:`Classifier.outputs`) to this .npy file...
        probabilities: ...and its answers, float32 N×10 (:meth:`Classifier.probabilities`), to
            this one.
        timing_threads: Time one call for every thread count here...
        timing_batches: ...and every batch size here (see :func:`measure`).
        repeats: Timed calls per configuration.
        video: A video file to run the camera frame loop over, headless, as fast as it decodes...
        video_answers: ...saving each frame's answer (class id) to this .npy file.
        photos: Image files to classify one by one as ``fmnist-edge classify`` does (decode,
            preprocess, answer)...
        photo_answers: ...saving their answers, float32 N×10, to this .npy file.
        timed_photos: Image files whose decode-to-answer time is measured (after warm-up),
            one thread.
    """

    model: str
    runtime: str
    threads: int = 1
    output_is: str = "probabilities"
    mirror_average: bool = False
    inputs: str | None = None
    outputs: str | None = None
    probabilities: str | None = None
    timing_threads: tuple[int, ...] = ()
    timing_batches: tuple[int, ...] = ()
    repeats: int = 100
    video: str | None = None
    video_answers: str | None = None
    photos: tuple[str, ...] = ()
    photo_answers: str | None = None
    timed_photos: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Latency and throughput of one (threads, batch) configuration, after warm-up.

    Attributes:
        runtime: The runtime's name.
        runtime_version: Its version.
        threads: Interpreter threads.
        batch: Images per call.
        latency_us: p50/p95/p99 of ``invoke()`` alone, in µs.
        classifier_latency_us: p50/p95/p99 of the whole :meth:`Classifier.probabilities` call
            (quantize, set, invoke, get, dequantize), in µs.
        first_invoke_us: The first call for this batch size (it allocates), in µs.
        throughput_ips: Images per second of the whole call at its median.
    """

    runtime: str
    runtime_version: str
    threads: int
    batch: int
    latency_us: dict[str, float]
    classifier_latency_us: dict[str, float]
    first_invoke_us: float | None
    throughput_ips: float


@dataclass(frozen=True, kw_only=True)
class VideoRun:
    """The camera frame loop over a video file: frames, seconds and frames per second."""

    frames: int
    seconds: float
    fps: float


@dataclass(frozen=True, kw_only=True)
class PhotoTiming:
    """Milliseconds from an image file's bytes to its answer (decode, preprocess, answer)."""

    photos: int
    p50_ms: float
    p90_ms: float


@dataclass(frozen=True, kw_only=True)
class Report:
    """What the worker did with a :class:`Job`.

    Attributes:
        ok: Whether the model loaded (when not, ``error`` says why and nothing else ran).
        runtime: The runtime's name.
        error: Why the model did not load, one line.
        version: The runtime's version.
        load_s: Seconds to read and load the model.
        arena_bytes: The tensor arena (TFLM only; None elsewhere).
        timings: One per (threads, batch) asked for.
        video: The frame loop's run, when a video was given.
        photo_timing: The decode-to-answer time of ``timed_photos``.
        peak_rss_mb: The worker's peak resident memory, MB.
    """

    ok: bool
    runtime: str
    error: str | None = None
    version: str | None = None
    load_s: float | None = None
    arena_bytes: int | None = None
    timings: tuple[Timing, ...] = field(default=())
    video: VideoRun | None = None
    photo_timing: PhotoTiming | None = None
    peak_rss_mb: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["timings"] = tuple(Timing(**t) for t in values.get("timings") or ())
        if values.get("video") is not None:
            values["video"] = VideoRun(**values["video"])
        if values.get("photo_timing") is not None:
            values["photo_timing"] = PhotoTiming(**values["photo_timing"])
        return cls(**values)


def run_python(
    args: list[str],
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run this interpreter with ``args``; return the JSON object on its last line of stdout.

    The child gets no terminal input and quiet TensorFlow logging. It may exit non-zero as long
    as it answered (the worker does, for a model that does not load).

    Raises:
        WorkerError: It printed no JSON object (it crashed, or timed out).
    """
    try:
        proc = subprocess.run(
            [sys.executable, *args],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        )
    except subprocess.TimeoutExpired:
        raise WorkerError(f"python {' '.join(args)}: no answer within {timeout:.0f} s") from None
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise WorkerError(f"python {' '.join(args)} failed: {last}")
    return answer


def run_job(job: Job, *, timeout: float = 1800) -> Report:
    """Run ``job`` in a fresh worker process and return its report (``ok`` False, with the
    reason, when the model does not load on that runtime)."""
    answer = run_python(
        ["-m", "edge_runtime.worker"], stdin=json.dumps(asdict(job)), timeout=timeout
    )
    return Report.from_json(answer)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 of durations given in seconds, returned in microseconds."""
    a = np.asarray(samples_s) * 1e6
    return {f"p{p}": round(float(np.percentile(a, p)), 1) for p in (50, 95, 99)}


def measure(clf: Classifier, images: np.ndarray, *, batch: int, repeats: int) -> Timing:
    """Latency and throughput of one batch size, after warm-up (see :class:`Timing`)."""
    x = images[:batch] if len(images) >= batch else np.resize(images, (batch, *images.shape[1:]))
    start = time.perf_counter()
    clf.probabilities(x)  # the first call allocates for this batch size
    first = time.perf_counter() - start
    for _ in range(WARMUP):
        clf.probabilities(x)
    whole, invoke = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.probabilities(x)
        whole.append(time.perf_counter() - t0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.invoke_only()
        invoke.append(time.perf_counter() - t0)
    return Timing(
        runtime=clf.runtime,
        runtime_version=clf.runtime_version,
        threads=clf.threads,
        batch=batch,
        latency_us=percentiles(invoke),
        classifier_latency_us=percentiles(whole),
        first_invoke_us=round(first * 1e6, 1),
        throughput_ips=round(batch / float(np.median(whole)), 1),
    )


def video_fps(clf: Classifier, video: str, answers: str | None = None) -> VideoRun:
    """Frames per second of the camera frame loop (decode, RGB, preprocess, invoke) on a file;
    each frame's answer (class id) is saved to ``answers`` when given."""
    from edge_runtime.webcam import classify_frames

    frames = VideoFile(Path(video)).open()
    start = time.perf_counter()
    given = []
    try:
        for result, _ in classify_frames(clf, frames):
            given.append(result.prediction.class_id)
    finally:
        frames.close()
    seconds = time.perf_counter() - start
    if answers is not None:
        np.save(answers, np.array(given, np.int16))
    return VideoRun(
        frames=len(given), seconds=round(seconds, 3), fps=round(len(given) / seconds, 1)
    )


def answer_photos(clf: Classifier, paths: tuple[str, ...]) -> np.ndarray:
    """The answers (N, 10) for image files, each read and preprocessed as classify does."""
    return np.stack([clf.probabilities(model_input([load_image(p)]))[0] for p in paths])


def time_photos(clf: Classifier, paths: tuple[str, ...]) -> PhotoTiming:
    """Decode-to-answer time of each file, from its bytes in memory (5 warm-up calls first)."""

    def answer(content: bytes) -> np.ndarray:
        return clf.probabilities(model_input([decode_image(content, "photo")]))

    data = [Path(p).read_bytes() for p in paths]
    for content in data[:5]:
        answer(content)
    times = []
    for content in data:
        start = time.perf_counter()
        answer(content)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return PhotoTiming(
        photos=len(ms),
        p50_ms=round(float(np.percentile(ms, 50)), 3),
        p90_ms=round(float(np.percentile(ms, 90)), 3),
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Read from VmHWM, not ``getrusage``: Linux carries ``ru_maxrss`` across exec, so a worker
    forked from a TensorFlow process would report TensorFlow's footprint as its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: the best available

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work(job: Job) -> Report:
    """Do ``job`` in this process (the worker's body; :func:`run_job` runs it in a fresh one)."""
    report: dict[str, Any] = {"runtime": job.runtime, "ok": True}
    try:
        start = time.perf_counter()
        content = Path(job.model).read_bytes()

        def load(threads: int) -> Classifier:
            return Classifier(
                content,
                runtime=job.runtime,
                threads=threads,
                output_is=job.output_is,
                mirror_average=job.mirror_average,
                name=job.model,
            )

        clf = load(job.threads)
        report.update(version=clf.runtime_version, load_s=round(time.perf_counter() - start, 4))
        images = np.load(job.inputs) if job.inputs else np.zeros((1, *INPUT_SHAPE), np.uint8)
        outputs, answers = clf.outputs_and_answers(images)
        report["arena_bytes"] = clf.arena_bytes()
        if job.outputs is not None:
            np.save(job.outputs, outputs)
        if job.probabilities is not None:
            np.save(job.probabilities, answers)
        report["timings"] = tuple(
            measure(
                load(threads),
                images,
                batch=batch,
                repeats=job.repeats,
            )
            for threads in job.timing_threads
            for batch in job.timing_batches
        )
        if job.video is not None:
            report["video"] = video_fps(clf, job.video, job.video_answers)
        if job.photos and job.photo_answers is not None:
            np.save(job.photo_answers, answer_photos(clf, job.photos))
        if job.timed_photos:
            report["photo_timing"] = time_photos(clf, job.timed_photos)
    except (ModelError, RuntimeMissingError, ImageError, OSError) as e:
        report.update(ok=False, error=str(e))
    return Report(**report, peak_rss_mb=round(peak_rss_mb(), 1))


def main() -> int:
    report = work(Job(**json.loads(sys.stdin.read())))
    print(json.dumps(report.to_json()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

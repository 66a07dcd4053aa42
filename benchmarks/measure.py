"""``fmnist-bench``'s measurements: every variant against the Keras original, in one run.

Everything is measured in one run on one machine, and speed is compared as ratios against
references measured in that same run. Absolute times from a shared 2-core box are noisy and
labelled as such. TFLite timings run in the TensorFlow-free worker (:mod:`edge_runtime.worker`).
What the numbers mean is judged in :mod:`benchmarks.verdicts`; they are shown by
:mod:`benchmarks.tables`.

Call order of :func:`run_bench`: Keras reference (this process) → one worker per TFLite model and
runtime → cross-runtime agreement → (``peer``) ONNX Runtime on the same network → the camera clip
→ cold start → webcam FPS → (``serve``) the server under load → (``training``) the training
comparison → verdicts and tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.peer import PeerRun, PeerTiming
from benchmarks.photos import camera_clip, camera_scores, enlarged_photos, photo_scores
from edge_runtime import CLASS_NAMES, INPUT_SHAPE
from edge_runtime.compare import RuntimePair, pairwise
from edge_runtime.photos import Photo
from edge_runtime.provenance import machine, package_versions
from edge_runtime.sidecar import read_sidecar
from edge_runtime.vocab import (
    ARTIFACTS,
    DEFAULT_RUNTIME,
    MICRO_RUNTIME,
    PI_RUNTIMES,
    ROUTE_MODE,
    RUNTIMES,
    model_files,
)
from edge_runtime.worker import Job, Timing, percentiles, run_job, run_python
from trainer.metrics import per_class_accuracy
from trainer.photos import COLLECTION, collection_split

KERAS = "keras"
"""The variant name of the reference rows."""
KERAS_EAGER = "keras-eager"
"""One ``model(x)`` call per image: how a Keras user classifies one image."""
KERAS_PREDICT = "keras-predict"
"""``model.predict`` on batches: how Keras itself is fastest."""
QUICK_IMAGES = 1000
"""Test images of a ``--quick`` run."""


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """Options of ``fmnist-bench``.

    Attributes:
        models: Folder with model.keras and model_<mode>.tflite (+ sidecars).
        runtimes: Runtimes to measure every model on.
        threads: Interpreter thread counts to time.
        batches: Batch sizes to time.
        repeats: Timed calls per configuration (at most 50 with ``quick``).
        quick: 1,000 test images and short runs (CI).
        training: Also time ``make train`` against the seed recipe.
        seeds: With ``training``, time this many seeds of both recipes in pairs (the ratio is
            their median) and check our mean accuracy over them.
        serve: Also load a live ``fmnist-edge serve`` with wrk (see :mod:`benchmarks.serving`).
        photos: Also measure every model on the vendored real photos, and the camera clip made
            of them (see :mod:`benchmarks.photos`).
        peer: Also run the same network on ONNX Runtime, float32 and static int8, and time it
            beside the TFLite models (see :mod:`benchmarks.peer`).
        data_dir: Fashion-MNIST folder (None: the usual lookup).
    """

    models: Path = ARTIFACTS
    runtimes: tuple[str, ...] = tuple(RUNTIMES)
    threads: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] = (1, 32)
    repeats: int = 300
    quick: bool = False
    training: bool = False
    seeds: int = 1
    serve: bool = False
    photos: bool = True
    peer: bool = True
    data_dir: Path | None = None

    @property
    def timed_repeats(self) -> int:
        """Timed calls per configuration in this run."""
        return min(self.repeats, 50) if self.quick else self.repeats


@dataclass(frozen=True, kw_only=True)
class Row(Timing):
    """One variant on one runtime at one (threads, batch): its timing and its answers.

    Attributes (besides :class:`~edge_runtime.worker.Timing`'s):
        variant: A conversion mode, or ``keras``.
        size_bytes: The model file's size.
        accuracy: On this run's test images (0–1).
        agreement_with_keras: Share of test images with the Keras model's answer.
        per_class_accuracy: Accuracy within each true class, by label.
        peak_rss_mb: Peak memory of a process that loaded the model and classified.
        arena_bytes: TFLite Micro's tensor arena (None on the other runtimes).
    """

    variant: str
    size_bytes: int
    accuracy: float
    agreement_with_keras: float
    per_class_accuracy: dict[str, float]
    peak_rss_mb: float | None
    arena_bytes: int | None = None

    @property
    def p50(self) -> float:
        """The whole call's median, in µs: what every speed comparison uses."""
        return self.classifier_latency_us["p50"]

    @property
    def key(self) -> tuple[str, str, int, int]:
        """What identifies a row across runs: (variant, runtime, threads, batch)."""
        return self.variant, self.runtime, self.threads, self.batch

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, kw_only=True)
class VariantPair(RuntimePair):
    """How two runtimes' answers differ for one variant."""

    variant: str

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, **super().to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VariantPair:
        pair = RuntimePair.from_json(data)
        return cls(variant=data["variant"], **asdict(pair))


@dataclass(frozen=True, kw_only=True)
class PeerPair:
    """One TFLite row and the peer's timing of the same network at the same threads.

    Attributes:
        ours: The TFLite variant's row (default runtime, one image).
        peer: The peer's model, measured.
        timing: The peer's timing at ``ours.threads``.
    """

    ours: Row
    peer: PeerRun
    timing: PeerTiming

    @property
    def ours_us(self) -> float:
        """The TFLite ``invoke()`` median, µs."""
        return self.ours.latency_us["p50"]

    @property
    def peer_us(self) -> float:
        """The peer's inference median (input and output bound once), µs."""
        return self.timing.invoke_us["p50"]


@dataclass(kw_only=True)
class Result:
    """Everything one run measured and concluded (``benchmarks.json``).

    The measurements are filled by :func:`run_bench`; ``targets``, ``recommendation`` and
    ``tables`` are derived from them (:mod:`benchmarks.verdicts`, :mod:`benchmarks.tables`).
    """

    machine: dict[str, Any]
    test_images: int
    repeats: int
    rows: list[Row]
    cold_start: dict[str, Any]
    webcam: dict[str, Any]
    cross_runtime: list[VariantPair] = field(default_factory=list)
    unsupported: list[dict[str, str]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    photo_answers: dict[str, Any] | None = None
    camera: list[dict[str, Any]] = field(default_factory=list)
    peer: list[PeerRun] = field(default_factory=list)
    serve: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    note: str = "absolute times are from a shared machine and noisy; compare ratios from one run"
    targets: list[dict[str, Any]] = field(default_factory=list)
    recommendation: str = ""
    tables: list[dict[str, Any]] = field(default_factory=list)
    photo_tables: list[dict[str, Any]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    def peer_pairs(self, *, threads: int | None = None) -> Iterator[PeerPair]:
        """Each measured peer timing beside its TFLite counterparts' rows on the default
        runtime at the same threads (one image), in :data:`~benchmarks.peer.PEER_MODELS`
        order; a counterpart this run did not measure is left out."""
        for peer in self.peer:
            for timing in (t for t in peer.timings if threads in (None, t.threads)):
                for variant in peer.model.counterparts:
                    ours = self.row(variant, DEFAULT_RUNTIME, threads=timing.threads)
                    if ours is not None:
                        yield PeerPair(ours=ours, peer=peer, timing=timing)

    def row(
        self, variant: str, runtime: str, *, threads: int | None = None, batch: int = 1
    ) -> Row | None:
        """The first row of ``variant`` on ``runtime`` at ``batch`` (and ``threads``, if given)."""
        return next(
            (
                r
                for r in self.rows
                if (r.variant, r.runtime, r.batch) == (variant, runtime, batch)
                and (threads is None or r.threads == threads)
            ),
            None,
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["rows"] = [asdict(r) for r in self.rows]
        data["cross_runtime"] = [p.to_json() for p in self.cross_runtime]
        data["peer"] = [p.to_json() for p in self.peer]
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["rows"] = [Row.from_json(r) for r in data.get("rows", [])]
        values["cross_runtime"] = [VariantPair.from_json(p) for p in data.get("cross_runtime", [])]
        values["peer"] = [PeerRun.from_json(p) for p in data.get("peer", [])]
        return cls(**values)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def per_class(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy within each true class (recall), by label."""
    return {
        name: round(float(a), 4)
        for name, a in zip(CLASS_NAMES, per_class_accuracy(y, pred), strict=True)
    }


def keras_rows(
    model_path: Path,
    x: np.ndarray,
    y: np.ndarray,
    *,
    repeats: int,
    batch: int,
    mirror_average: bool,
) -> tuple[list[Row], np.ndarray]:
    """The Keras reference: an eager call on one image, and ``predict`` on a batch (timed as
    one call each; its answers as the runtime gives them, with the mirror average if asked).

    Returns:
        ``(rows, answered class per image)``.
    """
    import keras

    from trainer.model import answers

    model = keras.saving.load_model(model_path, safe_mode=True)
    xf = x.astype(np.float32)
    pred = answers(model, x, mirror_average=mirror_average).argmax(1)
    one = xf[:1]
    start = time.perf_counter()
    model(one, training=False)
    first = time.perf_counter() - start
    for _ in range(10):
        model(one, training=False)
    eager = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(one, training=False)
        eager.append(time.perf_counter() - t0)
    xb = xf[:batch]
    model.predict(xb, batch_size=batch, verbose=0)
    predicted = []
    for _ in range(max(5, repeats // 10)):
        t0 = time.perf_counter()
        model.predict(xb, batch_size=batch, verbose=0)
        predicted.append(time.perf_counter() - t0)
    common = {
        "variant": KERAS,
        "runtime_version": keras.__version__,
        "threads": os.cpu_count() or 1,
        "size_bytes": model_path.stat().st_size,
        "accuracy": float(np.mean(pred == y)),
        "agreement_with_keras": 1.0,
        "per_class_accuracy": per_class(y, pred),
        "peak_rss_mb": keras_peak_rss_mb(model_path),
    }
    rows = [
        Row(
            **common,
            runtime=KERAS_EAGER,
            batch=1,
            latency_us=percentiles(eager),
            classifier_latency_us=percentiles(eager),
            first_invoke_us=round(first * 1e6, 1),
            throughput_ips=round(1 / statistics.median(eager), 1),
        ),
        Row(
            **common,
            runtime=KERAS_PREDICT,
            batch=batch,
            latency_us=percentiles(predicted),
            classifier_latency_us=percentiles(predicted),
            first_invoke_us=None,
            throughput_ips=round(batch / statistics.median(predicted), 1),
        ),
    ]
    return rows, pred


def keras_peak_rss_mb(model_path: Path) -> float:
    """Peak RSS of a fresh process that imports TensorFlow, loads the .keras and classifies once."""
    code = (
        "import json, numpy as np, keras\n"
        "from edge_runtime.worker import peak_rss_mb\n"
        f"m = keras.saving.load_model({str(model_path)!r}, safe_mode=True)\n"
        f"m(np.zeros((1, *{INPUT_SHAPE}), np.float32), training=False)\n"
        "print(json.dumps({'peak_rss_mb': peak_rss_mb()}))\n"
    )
    return round(float(run_python(["-c", code])["peak_rss_mb"]), 1)


def median_wall(cmd: list[str], *, runs: int, env: dict[str, str] | None = None) -> float:
    """Median whole-process wall time of ``cmd`` over ``runs`` runs, in seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env={**os.environ, **(env or {})}, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_start(model: Path, image: Path, *, runs: int) -> dict[str, float]:
    """``fmnist-edge classify one.png`` against ``python -c "import tensorflow"``, same run."""
    edge = str(Path(sys.executable).parent / "fmnist-edge")
    classify = median_wall([edge, "classify", "--model", str(model), str(image)], runs=runs)
    tf_import = median_wall(
        [sys.executable, "-c", "import tensorflow"],
        runs=max(1, runs // 3),
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return {
        "classify_one_image_s": round(classify, 3),
        "import_tensorflow_s": round(tf_import, 3),
        "ratio": round(classify / tf_import, 3),
        "runs": runs,
    }


def write_clip(path: Path, *, frames: int, size: tuple[int, int] = (640, 480)) -> Path:
    """A synthetic MJPEG video: a dark item moving across a light background (W×H = size)."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    rng = np.random.default_rng(0)
    for i in range(frames):
        frame = np.full((height, width, 3), 235, np.uint8)
        x = width // 5 + (i * 7) % (width // 2)
        frame[height // 6 : height * 5 // 6, x : x + width // 4] = rng.integers(0, 90, 3)
        writer.write(frame)
    writer.release()
    return path


def webcam_fps(model: Path, *, frames: int, work: Path) -> dict[str, Any]:
    """Headless frame-loop FPS (decode, preprocess, invoke) on a generated 640×480 video."""
    clip = write_clip(work / "bench.avi", frames=frames)
    report = run_job(Job(model=str(model), runtime=DEFAULT_RUNTIME, video=str(clip)))
    if not report.ok or report.video is None:
        raise RuntimeError(f"webcam loop on {model.name}: {report.error}")
    return {**asdict(report.video), "resolution": "640x480", "model": model.name}


def aarch64_pairs(models_dir: Path) -> list[VariantPair]:
    """The pairs with emulated aarch64 in them, from ``crosscheck_arm64.json`` (``make
    test-arm64`` writes it), for the models in ``models_dir`` whose bytes it was measured on."""
    path = models_dir / "crosscheck_arm64.json"
    if not path.is_file():
        return []
    current = {
        p.name: (mode.name, hashlib.sha256(p.read_bytes()).hexdigest())
        for mode, p in model_files(models_dir)
    }
    pairs = []
    for record in json.loads(path.read_text()):
        mode, sha = current.get(record["model"], (None, None))
        # Records without "runtimes" are from an older `make test-arm64`: it re-measures them.
        if mode is not None and sha == record["sha256"] and "runtimes" in record:
            pairs.append(VariantPair(variant=mode, **asdict(RuntimePair.from_json(record))))
    return pairs


@dataclass(frozen=True)
class PhotoSet:
    """The real photos of a run: the validation photos (scored as they are) and their 400×534
    JPEG versions (timed)."""

    photos: list[Photo]
    timed: list[Path]


@dataclass
class Measured:
    """What :func:`measure_models` measured.

    Attributes:
        rows: Timing and test-set answers, per (variant, runtime, threads, batch).
        cross_runtime: Each pair of runtimes of each variant.
        unsupported: The (variant, runtime) pairs that do not load, with the runtime's reason
            (TFLM runs no float16 or dynamic model).
        photos: Per (variant, Pi runtime), the real-photo scores and decode-to-answer time.
        photo_answers: The int8 model's answer to each photo on the default runtime (for the
            confusion matrix and the gallery).
    """

    rows: list[Row] = field(default_factory=list)
    cross_runtime: list[VariantPair] = field(default_factory=list)
    unsupported: list[dict[str, str]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    photo_answers: dict[str, Any] | None = None


def measure_models(
    options: BenchOptions,
    *,
    x: np.ndarray,
    y: np.ndarray,
    keras_pred: np.ndarray,
    photos: PhotoSet | None,
    work: Path,
) -> Measured:
    """Every converted model on every runtime, each in a fresh worker (and on the Pi runtimes,
    the real photos too)."""
    models = model_files(options.models)
    if not models:
        raise FileNotFoundError(f"no model_<mode>.tflite in {options.models}: run `make convert`")
    inputs = work / "x.npy"
    np.save(inputs, x)
    measured = Measured()
    for mode, path in models:
        sidecar = read_sidecar(path)
        outputs: dict[str, np.ndarray] = {}
        given_answers: dict[str, np.ndarray] = {}
        for runtime in options.runtimes:
            _log(f"{path.name} on {runtime}")
            saved = work / f"{mode.name}-{runtime}.npy"
            answered = work / f"{mode.name}-{runtime}-answers.npy"
            on_photos = work / f"{mode.name}-{runtime}-photos.npy"
            with_photos = photos is not None and runtime in PI_RUNTIMES
            report = run_job(
                Job(
                    model=str(path),
                    runtime=runtime,
                    threads=options.threads[0],
                    output_is=sidecar.output_is,
                    mirror_average=sidecar.mirror_average,
                    inputs=str(inputs),
                    outputs=str(saved),
                    probabilities=str(answered),
                    # A microcontroller has one core: TFLM ignores threads.
                    timing_threads=(1,) if runtime == MICRO_RUNTIME else options.threads,
                    timing_batches=options.batches,
                    repeats=options.timed_repeats,
                    photos=tuple(str(p.path) for p in photos.photos) if with_photos else (),
                    photo_answers=str(on_photos) if with_photos else None,
                    timed_photos=tuple(map(str, photos.timed)) if with_photos else (),
                )
            )
            if not report.ok:
                measured.unsupported.append(
                    {"variant": mode.name, "runtime": runtime, "error": report.error or ""}
                )
                continue
            if with_photos:
                given = np.load(on_photos)
                scores = photo_scores(photos.photos, given, sidecar.not_sure_below)
                if mode.name == ROUTE_MODE and runtime == DEFAULT_RUNTIME:
                    measured.photo_answers = {
                        "variant": mode.name,
                        "runtime": runtime,
                        "photos": [str(p.path.relative_to(COLLECTION)) for p in photos.photos],
                        "answers": given.argmax(1).tolist(),
                        "scores": [round(float(v), 4) for v in given.max(1)],
                        "not_sure_below": sidecar.not_sure_below,
                    }
                timing = asdict(report.photo_timing) if report.photo_timing else {}
                measured.photos.append(
                    {"variant": mode.name, "runtime": runtime, **scores, **timing}
                )
            outputs[runtime], given_answers[runtime] = np.load(saved), np.load(answered)
            pred = given_answers[runtime].argmax(1)
            answers = {
                "variant": mode.name,
                "size_bytes": path.stat().st_size,
                "accuracy": float(np.mean(pred == y)),
                "agreement_with_keras": float(np.mean(pred == keras_pred)),
                "per_class_accuracy": per_class(y, pred),
                "peak_rss_mb": report.peak_rss_mb,
                "arena_bytes": report.arena_bytes,
            }
            measured.rows += [Row(**asdict(t), **answers) for t in report.timings]
        measured.cross_runtime += [
            VariantPair(variant=mode.name, **asdict(pair))
            for pair in pairwise(outputs, scale=sidecar.output.scale, answers=given_answers)
        ]
    return measured


def camera_runs(model: Path, photos: list[Photo], *, work: Path) -> list[dict[str, Any]]:
    """The camera clip of the validation photos through the frame loop, on each Pi runtime."""
    clip = camera_clip(photos, work / "photo-clip.avi")
    sidecar = read_sidecar(model)
    runs = []
    for runtime in PI_RUNTIMES:
        answers = work / f"clip-{runtime}.npy"
        job = Job(
            model=str(model),
            runtime=runtime,
            output_is=sidecar.output_is,
            mirror_average=sidecar.mirror_average,
            video=str(clip),
            video_answers=str(answers),
        )
        report = run_job(job)
        if not report.ok or report.video is None:
            raise RuntimeError(f"camera clip on {model.name}, {runtime}: {report.error}")
        scores = camera_scores(photos, np.load(answers).tolist())
        runs.append({"variant": sidecar.quantization, "runtime": runtime, **scores,
                     "fps": report.video.fps})  # fmt: skip
    return runs


def edge_model(models_dir: Path) -> Path:
    """The model the whole-process and serving figures use: the int8 route's, else the first."""
    models = model_files(models_dir)
    return next((p for mode, p in models if mode.name == ROUTE_MODE), models[0][1])


def run_bench(options: BenchOptions) -> Result:
    """Measure every variant × runtime × threads × batch, then judge and tabulate the run.

    ``quick`` uses 1,000 test images and shorter runs, for CI.
    """
    from PIL import Image

    from benchmarks import tables, verdicts
    from trainer.data import load_data

    keras_path = options.models / "model.keras"
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path} is missing: run `make train` first")
    data = load_data(options.data_dir)
    from edge_runtime.preprocess import model_input

    n = QUICK_IMAGES if options.quick else len(data.y_test)
    x, y = model_input(data.x_test[:n]), data.y_test[:n]
    _log(f"Keras reference on {n:,} test images")
    model = edge_model(options.models)
    mirror_average = read_sidecar(model).mirror_average
    rows, keras_pred = keras_rows(
        keras_path,
        x,
        y,
        repeats=options.timed_repeats,
        batch=max(options.batches),
        mirror_average=mirror_average,
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = None
        if options.photos:
            validation = collection_split("validation")
            (work / "photos").mkdir()
            photos = PhotoSet(validation, enlarged_photos(validation, work / "photos"))
        measured = measure_models(
            options, x=x, y=y, keras_pred=keras_pred, photos=photos, work=work
        )
        peer = []
        if options.peer:
            from benchmarks.peer import peer_runs
            from converter.convert import representative_images
            from converter.pipeline import ConvertOptions

            peer = peer_runs(
                keras_path,
                x=x,
                y=y,
                keras_pred=keras_pred,
                calibration=representative_images(
                    data.x_train, data.y_train, ConvertOptions.samples
                ),
                threads=options.threads,
                repeats=options.timed_repeats,
                mirror_average=mirror_average,
                work=work,
                log=_log,
            )
        camera = []
        if photos is not None:
            _log("camera clip of the validation photos, 640x480, through the frame loop")
            camera = camera_runs(model, photos.photos, work=work)
        sample = work / "one.png"
        Image.fromarray(data.x_test[0]).save(sample)
        _log("cold start: fmnist-edge classify one.png vs import tensorflow")
        cold = cold_start(model, sample, runs=3 if options.quick else 9)
        _log("webcam pipeline FPS on a generated 640x480 video")
        webcam = webcam_fps(model, frames=150 if options.quick else 1500, work=work)
        served = None
        if options.serve:
            from benchmarks.serving import serve_bench

            _log("fmnist-edge serve under wrk, and its MJPEG stream")
            clip = write_clip(work / "camera.avi", frames=90)
            served = serve_bench(model, png=sample, clip=clip, quick=options.quick, work=work)
    training = None
    if options.training:
        from benchmarks.training import time_both_recipes

        training = time_both_recipes(seeds=options.seeds)
    result = Result(
        machine={**machine(), "packages": package_versions()},
        test_images=n,
        repeats=options.timed_repeats,
        rows=rows + measured.rows,
        cross_runtime=measured.cross_runtime + aarch64_pairs(options.models),
        unsupported=measured.unsupported,
        photos=measured.photos,
        photo_answers=measured.photo_answers,
        camera=camera,
        peer=peer,
        cold_start=cold,
        webcam=webcam,
        serve=served,
        training=training,
    )
    result.targets = verdicts.target_checks(result)
    result.recommendation = verdicts.recommendation(result)
    result.tables = [t.to_json() for t in tables.tables(result)]
    result.photo_tables = [t.to_json() for t in tables.tables(result, tables.PHOTO_TABLES)]
    return result

"""What a benchmark run means: its targets, the deployment advice, and what changed since an
earlier run. Pure functions of a :class:`benchmarks.measure.Result`; nothing is measured here.
"""

from __future__ import annotations

from benchmarks.measure import KERAS, KERAS_EAGER, Result, Row
from edge_runtime.vocab import DEFAULT_RUNTIME, PI_RUNTIMES, ROUTE_MODE, TARGETS

RECOMMEND_WITHIN_PP = 0.1
"""Variants within this many points of the Keras accuracy are the ones recommended between."""


def target_checks(result: Result) -> list[dict[str, object]]:
    """The benchmark targets of :data:`edge_runtime.vocab.TARGETS`, checked on this run."""
    eager = result.row(KERAS, KERAS_EAGER)
    checks = []
    # The speed target is the Pi's: TFLite Micro is a reference interpreter for microcontrollers,
    # timed here only to compare with itself.
    for runtime in PI_RUNTIMES:
        r = result.row(ROUTE_MODE, runtime, threads=1)
        if eager and r:
            checks.append(
                TARGETS["int8_speedup"].check(eager.p50 / r.p50, context=f"{runtime}, 1 thread")
            )
    checks.append(TARGETS["cold_start_s"].check(result.cold_start["classify_one_image_s"]))
    checks.append(TARGETS["webcam_fps"].check(result.webcam["fps"]))
    checks += photo_checks(result)
    if result.serve is not None:
        png = result.serve["load"][0]
        checks.append(TARGETS["serve_rps"].check(png["requests_per_s"]))
        checks.append(TARGETS["serve_p99_ms"].check(png["p99_ms"]))
        errors = sum(load["errors"] for load in result.serve["load"])
        checks.append(TARGETS["serve_errors"].check(errors))
        checks.append(TARGETS["stream_fps"].check(result.serve["stream"]["fps"]))
    if result.training is not None:
        t = result.training
        checks.append(TARGETS["training_time_ratio"].check(t["wall_time_ratio"]))
        seeds = len(t["ours"]["seed_accuracies"])
        over = f"mean of {seeds} seeds" if seeds > 1 else "seed 0"
        mean = t["ours"]["mean_test_accuracy"]
        checks.append(TARGETS["training_accuracy"].check(mean, context=over))
    return checks


PHOTO_TARGETS = (
    ("photo_strict", "strict"),
    ("photo_family", "family"),
    ("photo_worst_folder", "worst_folder"),
    ("photo_not_sure_mapped", "not_sure_mapped"),
    ("photo_not_sure_unmapped", "not_sure_unmapped"),
)
"""The real-photo targets, and the field of a photo row each checks."""


def photo_checks(result: Result) -> list[dict[str, object]]:
    """The real-photo targets, on the int8 model as shipped, on each Pi runtime."""
    checks = []
    for row in (r for r in result.photos if r["variant"] == ROUTE_MODE):
        context = f"{ROUTE_MODE}, {row['runtime']}"
        checks += [
            TARGETS[key].check(row[field], context=context)
            for key, field in PHOTO_TARGETS
            if row.get(field) is not None
        ]
        if row["runtime"] == DEFAULT_RUNTIME and "p50_ms" in row:
            checks.append(TARGETS["photo_ms"].check(row["p50_ms"], context=context))
    checks += [
        TARGETS["camera_majority"].check(
            run["majority_right"], context=f"{run['variant']}, {run['runtime']}"
        )
        for run in result.camera
    ]
    return checks


def _speed(ratio: float) -> str:
    """A time ratio (variant over reference) as words: ``2.1× slower``, ``1.3× faster``."""
    return f"{ratio:.2f}× slower" if ratio >= 1 else f"{1 / ratio:.2f}× faster"


def peer_advice(result: Result) -> str:
    """A sentence on the default runtime against ONNX Runtime on the same network (one image,
    1 thread, each peer model against its first counterpart), or "" when the run did not
    measure the peer."""
    parts = [
        f"{pair.ours.variant} {pair.ours_us:.0f} µs against {pair.peer.engine}'s "
        f"{pair.peer.variant} {pair.peer_us:.0f} µs "
        f"({DEFAULT_RUNTIME} {_speed(pair.ours_us / pair.peer_us)})"
        for pair in result.peer_pairs(threads=1)
        if pair.ours.variant == pair.peer.model.counterparts[0]
    ]
    if not parts:
        return ""
    return (
        " Against ONNX Runtime running the same trained weights (one inference, 1 thread, "
        f"{DEFAULT_RUNTIME}'s invoke first): {'; '.join(parts)}."
    )


def recommendation(result: Result) -> str:
    """Deployment advice from this run's measurements (one image, 1 thread, the default runtime).

    It names the fastest and the smallest variant within :data:`RECOMMEND_WITHIN_PP` of the
    Keras accuracy, says how int8 compares with float32 as measured, and that the Pi was not.
    """
    rows = {
        r.variant: r
        for r in result.rows
        if r.variant != KERAS and r.batch == 1 and r.threads == 1 and r.runtime == DEFAULT_RUNTIME
    }
    keras_row = result.row(KERAS, KERAS_EAGER)
    if not rows or keras_row is None:
        return "Not enough rows were measured to recommend a variant."
    keras_acc = keras_row.accuracy
    close = [r for r in rows.values() if keras_acc - r.accuracy <= RECOMMEND_WITHIN_PP / 100]
    candidates = close or list(rows.values())
    fastest = min(candidates, key=lambda r: r.p50)
    smallest = min(candidates, key=lambda r: (r.size_bytes, r.p50))
    cpu = result.machine.get("cpu", "this CPU")
    text = (
        f"Measured on this machine ({cpu}, {result.machine.get('machine', '')}; {DEFAULT_RUNTIME}, "
        f"1 thread, one image per call), of the variants within {RECOMMEND_WITHIN_PP} pp of the "
        f"Keras accuracy ({keras_acc:.4f}) the fastest is **{fastest.variant}** "
        f"({fastest.p50:.0f} µs, {fastest.accuracy:.4f}) and the smallest is "
        f"**{smallest.variant}** ({smallest.size_bytes:,} bytes, {smallest.p50:.0f} µs, "
        f"{smallest.accuracy:.4f})."
    )
    route, float32 = rows.get(ROUTE_MODE), rows.get("float32")
    if route and float32:
        text += (
            f" int8's whole call took {route.p50:.0f} µs against float32's {float32.p50:.0f} µs: "
            f"{_speed(route.p50 / float32.p50)} here, at {route.size_bytes / float32.size_bytes:.2f}× "
            f"the size, agreeing with Keras on {route.agreement_with_keras:.2%} of the images."
        )
    if route and fastest.variant != ROUTE_MODE:
        text += (
            f" So on a machine like this one deploy **{fastest.variant}** for speed, and "
            "**int8** where memory or integer-only hardware decides (microcontrollers, "
            "accelerators that run only int8)."
        )
    if "int16x8" in rows and route:
        r = rows["int16x8"]
        text += (
            f" int16x8 follows the float model more closely ({r.agreement_with_keras:.2%} "
            f"agreement) at {r.size_bytes:,} bytes, but took {r.p50 / route.p50:.0f}× int8's time."
        )
    pi = (
        " The Raspberry Pi (aarch64) was not measured here: speed depends on the CPU's kernels, "
        "so run `fmnist-bench` on the Pi itself to choose there (`make test-arm64` checks its "
        "answers under emulation, not its speed)."
    )
    return text + peer_advice(result) + pi


def changes_since(old: Result, new: Result, *, noise: float = 0.15) -> list[str]:
    """What got faster, slower, bigger or less accurate between two runs, beyond the noise.

    Rows are matched on :attr:`Row.key`. Latency changes count only when the p50 moved by more
    than ``noise`` (relative) *and* by more than the old run's p95−p50 spread; accuracy changes
    count above 0.1 percentage point; size changes always count.
    """
    before: dict[tuple, Row] = {r.key: r for r in old.rows}
    notes = []
    for r in new.rows:
        o = before.get(r.key)
        if o is None:
            continue
        name = f"{r.variant}/{r.runtime}/{r.threads}t/b{r.batch}"
        spread = o.classifier_latency_us["p95"] - o.p50
        if abs(r.p50 - o.p50) > max(noise * o.p50, spread):
            notes.append(
                f"{'SLOWER' if r.p50 > o.p50 else 'faster'} {name}: p50 {o.p50:.0f} → {r.p50:.0f} µs"
            )
        if r.accuracy < o.accuracy - 0.001:
            notes.append(f"LESS ACCURATE {name}: {o.accuracy:.4f} → {r.accuracy:.4f}")
        elif r.accuracy > o.accuracy + 0.001:
            notes.append(f"more accurate {name}: {o.accuracy:.4f} → {r.accuracy:.4f}")
        if r.size_bytes != o.size_bytes:
            notes.append(
                f"{'BIGGER' if r.size_bytes > o.size_bytes else 'smaller'} {name}: "
                f"{o.size_bytes:,} → {r.size_bytes:,} bytes"
            )
    return notes


REGRESSIONS = ("SLOWER", "LESS ACCURATE", "BIGGER")
"""How the lines of :func:`changes_since` that count as regressions begin."""

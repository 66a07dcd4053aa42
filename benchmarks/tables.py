"""What a benchmark run shows: its tables (one small function each), ``benchmarks.md`` and its
charts. The tables are :class:`trainer.tables.Table` data, stored in ``benchmarks.json``, so the
Markdown file and the report render the same figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.measure import KERAS, KERAS_EAGER, Result, Row
from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import write_text
from edge_runtime.vocab import DEFAULT_RUNTIME, MICRO_RUNTIME, ROUTE_MODE
from trainer.tables import Table, cross_runtime_table


def _single_image(r: Row) -> bool:
    """A row of the default runtime, 1 thread, 1 image, or Keras's eager row."""
    return r.batch == 1 and (
        r.runtime == KERAS_EAGER or (r.runtime == DEFAULT_RUNTIME and r.threads == 1)
    )


def every_variant(result: Result) -> Table:
    return Table.of(
        "Every variant",
        (
            "variant",
            "runtime",
            "threads",
            "batch",
            "accuracy",
            "agreement with Keras",
            "size (bytes)",
            "invoke p50/p95/p99 (µs)",
            "call p50 (µs)",
            "first call (µs)",
            "images/s",
            "peak RSS (MB)",
        ),
        (
            (
                r.variant,
                r.runtime,
                r.threads,
                r.batch,
                f"{r.accuracy:.4f}",
                f"{r.agreement_with_keras:.4f}",
                f"{r.size_bytes:,}",
                " / ".join(f"{r.latency_us[p]:.0f}" for p in ("p50", "p95", "p99")),
                f"{r.p50:.0f}",
                "–" if r.first_invoke_us is None else f"{r.first_invoke_us:.0f}",
                f"{r.throughput_ips:,.0f}",
                r.peak_rss_mb,
            )
            for r in result.rows
        ),
    )


def speed_against_references(result: Result) -> Table | None:
    """Each single-image call as a ratio against float32 on the same runtime and threads (the
    fair reference), and against the Keras eager call."""
    eager = result.row(KERAS, KERAS_EAGER)
    singles = [r for r in result.rows if r.variant != KERAS and r.batch == 1]
    if not singles:
        return None

    def float32(r: Row) -> Row | None:
        return result.row("float32", r.runtime, threads=r.threads)

    return Table.of(
        "One classification (whole call, p50) as a ratio: float32 on the same runtime and "
        "threads over this variant (above 1: faster than float32), and the Keras eager call "
        f"over it{f' ({eager.p50:.0f} µs)' if eager else ''}",
        ("variant", "runtime", "threads", "call p50 (µs)", "vs float32", "vs Keras eager"),
        (
            (
                r.variant,
                r.runtime,
                r.threads,
                f"{r.p50:.0f}",
                f"{ref.p50 / r.p50:.2f}×" if (ref := float32(r)) else "–",
                f"{eager.p50 / r.p50:.0f}×" if eager else "–",
            )
            for r in singles
        ),
    )


def per_class_accuracy(result: Result) -> Table:
    return Table.of(
        f"Per-class accuracy ({DEFAULT_RUNTIME}, 1 thread; Keras for reference)",
        ("variant", *CLASS_NAMES),
        (
            (r.variant, *(f"{r.per_class_accuracy[n]:.3f}" for n in CLASS_NAMES))
            for r in result.rows
            if _single_image(r)
        ),
    )


def cross_runtime(result: Result) -> Table | None:
    if not result.cross_runtime:
        return None
    arm = any("aarch64" in " ".join(p.runtimes) for p in result.cross_runtime)
    where = (
        "aarch64 rows: all 10,000 test images, from `make test-arm64`"
        if arm
        else "`make test-arm64` adds x86 against aarch64"
    )
    return cross_runtime_table(
        f"Cross-runtime agreement (same model, same images; {where})",
        ((p.variant, p) for p in result.cross_runtime),
    )


def microcontroller(result: Result) -> Table | None:
    micro = [
        r for r in result.rows if r.runtime == MICRO_RUNTIME and r.batch == 1 and r.arena_bytes
    ]
    if not micro:
        return None
    return Table.of(
        "Microcontroller footprint (TensorFlow Lite Micro, measured by its interpreter)",
        ("variant", "flash: model bytes", "arena bytes", "accuracy", "per image (µs, x86)"),
        (
            (
                r.variant,
                f"{r.size_bytes:,}",
                f"{r.arena_bytes:,}",
                f"{r.accuracy:.4f}",
                f"{r.p50:.0f}",
            )
            for r in micro
        ),
    )


def unsupported(result: Result) -> Table | None:
    if not result.unsupported:
        return None
    return Table.of(
        "Models a runtime cannot load",
        ("variant", "runtime", "why"),
        ((u["variant"], u["runtime"], u["error"]) for u in result.unsupported),
    )


def whole_process(result: Result) -> Table:
    c, w = result.cold_start, result.webcam
    return Table.of(
        "Whole-process and pipeline figures",
        ("measurement", "value"),
        (
            (
                f"`fmnist-edge classify one.png` (median of {c['runs']})",
                f"{c['classify_one_image_s']:.2f} s",
            ),
            ('`python -c "import tensorflow"` alone', f"{c['import_tensorflow_s']:.2f} s"),
            (
                f"webcam frame loop, {w['resolution']}, headless, {w['model']} "
                f"({w['frames']} frames)",
                f"{w['fps']:.0f} FPS",
            ),
        ),
    )


def serving(result: Result) -> Table | None:
    served = result.serve
    if served is None:
        return None
    stream = served["stream"]
    return Table.of(
        f"fmnist-edge serve under load ({served['load_generator']}; {served['model']})",
        (
            "upload",
            "bytes",
            "requests/s",
            "p50 (ms)",
            "p99 (ms)",
            "errors",
            "in-process Classifier, same bytes (µs)",
            "in-process images/s",
        ),
        (
            *(
                (
                    x["upload"],
                    f"{x['bytes']:,}",
                    f"{x['requests_per_s']:,.0f}",
                    f"{x['p50_ms']:.2f}",
                    f"{x['p99_ms']:.2f}",
                    x["errors"],
                    f"{x['in_process_us']:.0f}",
                    f"{x['in_process_per_s']:,.0f}",
                )
                for x in served["load"]
            ),
            (
                f"MJPEG stream, {stream['resolution']}, {stream['source_fps']} FPS camera",
                "",
                f"{stream['fps']:.1f} frames/s received",
                "",
                "",
                "",
                "",
                "",
            ),
        ),
    )


def seed_rows(ours: dict) -> list[tuple[str, ...]]:
    """The mean-over-seeds row of the training table, when more than one seed was trained."""
    accuracies = ours.get("seed_accuracies", [])
    if len(accuracies) < 2:
        return []
    each = ", ".join(f"{a:.4f}" for a in accuracies)
    return [
        (
            f"this project, mean of seeds 0–{len(accuracies) - 1} ({each})",
            "",
            "",
            f"{ours['mean_test_accuracy']:.4f} ± {ours['std_test_accuracy']:.4f}",
        )
    ]


def training(result: Result) -> Table | None:
    t = result.training
    if t is None:
        return None
    ours, seed = t["ours"], t["seed_recipe"]
    return Table.of(
        f"Training, back to back in one run (wall-time ratio {t['wall_time_ratio']:.2f})",
        ("recipe", "wall time (s)", "epochs", "test accuracy"),
        (
            (
                "this project (`make train`)",
                f"{ours['wall_seconds']:.0f}",
                ours["epochs"],
                f"{ours['test_accuracy']:.4f}",
            ),
            (
                f"this project, `make train` + the {ROUTE_MODE} model's conversion "
                f"({ours['int8_route_seconds']:.0f} s; ratio {t['with_int8_route_ratio']:.2f})",
                f"{ours['wall_seconds'] + ours['int8_route_seconds']:.0f}",
                ours["epochs"],
                "",
            ),
            *seed_rows(ours),
            (
                "seed (batch 32, 10 epochs)",
                f"{seed['wall_seconds']:.0f}",
                seed["epochs"],
                f"{seed['test_accuracy']:.4f}",
            ),
        ),
    )


TABLES = (
    every_variant,
    speed_against_references,
    per_class_accuracy,
    cross_runtime,
    microcontroller,
    unsupported,
    whole_process,
    serving,
    training,
)
"""Every table of a run, in the order the page shows them; each returns None when the run
measured nothing for it."""


def tables(result: Result) -> list[Table]:
    """The run's tables, in :data:`TABLES` order."""
    return [t for make in TABLES if (t := make(result)) is not None]


def markdown(result: Result) -> str:
    """``benchmarks.md``: the machine, every table, the targets and what to deploy."""
    m = result.machine
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['machine']}, Python {m['python']}, "
        f"int8 dot-product instructions: {m.get('int8_dot_product') or 'none'}. "
        f"{result.test_images:,} test images, {result.repeats} timed repeats after "
        "warm-up. Absolute times come from a shared machine and are noisy; the ratios are "
        "measured in one run.",
    ]
    for table in result.tables:
        lines += ["", *Table.from_json(table).markdown()]
    lines += ["", "## Targets", ""]
    lines += [
        f"- {'met' if c['met'] else '**MISSED**'}: {c['target']}: {c['measured']}"
        for c in result.targets
    ]
    lines += ["", "## What to deploy", "", result.recommendation]
    return "\n".join(lines) + "\n"


def charts(result: Result, out_dir: Path) -> list[Path]:
    """Bar charts of size, p50 latency and accuracy per variant (default runtime, 1 thread)."""
    from trainer.figures import pyplot, save_figure

    plt = pyplot()
    rows = [r for r in result.rows if _single_image(r)]
    names = [r.variant if r.variant != KERAS else "keras (eager)" for r in rows]
    paths = []
    for key, label, value in (
        ("size", "model size (KB)", lambda r: r.size_bytes / 1024),
        ("latency", "p50 single-image call (µs, log)", lambda r: r.p50),
        ("accuracy", "test accuracy", lambda r: r.accuracy),
    ):
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(names, [value(r) for r in rows], color="#4a7ab7")
        ax.set_ylabel(label)
        if key == "latency":
            ax.set_yscale("log")
        if key == "accuracy":
            accs = [value(r) for r in rows]
            ax.set_ylim(min(accs) - 0.01, min(1.0, max(accs) + 0.005))
        ax.set_title(label)
        paths.append(save_figure(fig, out_dir / "plots" / f"bench_{key}.png"))
    return paths


def write_outputs(result: Result, out_dir: Path) -> None:
    """``benchmarks.json``, ``benchmarks.md`` and the bar charts under ``plots/``."""
    result.plots = [str(p.relative_to(out_dir)) for p in charts(result, out_dir)]
    write_text(out_dir / "benchmarks.json", json.dumps(result.to_json(), indent=1))
    write_text(out_dir / "benchmarks.md", markdown(result))

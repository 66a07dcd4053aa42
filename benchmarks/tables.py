"""What a benchmark run shows: its tables (one small function each), ``benchmarks.md`` and its
charts. The tables are :class:`trainer.tables.Table` data, stored in ``benchmarks.json``, so the
Markdown file and the report render the same figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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


def against_peer(result: Result) -> Table | None:
    """Each TFLite variant's ``invoke()`` on the default runtime against ONNX Runtime's
    inference (input and output bound once) of the same network, one image, same threads."""
    lines = [
        (
            pair.ours.variant,
            f"{pair.peer.engine} {pair.peer.variant}",
            pair.timing.threads,
            f"{pair.ours_us:.1f}",
            f"{pair.peer_us:.1f}",
            f"{pair.timing.run_us['p50']:.1f}",
            f"{pair.peer_us / pair.ours_us:.2f}×",
            f"{pair.ours.accuracy:.4f} / {pair.peer.accuracy:.4f}",
            f"{pair.ours.size_bytes:,} / {pair.peer.size_bytes:,}",
        )
        for pair in result.peer_pairs()
    ]
    if not lines:
        return None
    return Table.of(
        f"Against the peer: the same trained network on ONNX Runtime, one image (p50; ratio "
        f"above 1: {DEFAULT_RUNTIME} is faster)",
        (
            "TFLite variant",
            "peer",
            "threads",
            f"{DEFAULT_RUNTIME} invoke (µs)",
            "peer inference (µs)",
            "peer session.run (µs)",
            "peer / ours",
            "accuracy (ours / peer)",
            "bytes (ours / peer)",
        ),
        lines,
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


def real_photos(result: Result) -> Table | None:
    """Every variant on each Pi runtime, on the vendored validation photos, as classify runs."""
    if not result.photos:
        return None
    folders = list(result.photos[0]["per_folder"])

    def share(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}"

    return Table.of(
        f"Real photos ({result.photos[0]['mapped']} validation photos of a class, "
        f"{result.photos[0]['unmapped']} of none; each model with its own 'not sure' threshold)",
        (
            "variant",
            "runtime",
            "strict",
            "family",
            *folders,
            "not sure: of a class / of none",
            "threshold",
            "ms per 400×534 photo (p50 / p90)",
        ),  # fmt: skip
        (
            (
                r["variant"],
                r["runtime"],
                share(r["strict"]),
                share(r["family"]),
                *(f"{r['per_folder'][f]:.0%}" for f in folders),
                f"{share(r['not_sure_mapped'])} / {share(r['not_sure_unmapped'])}",
                "–" if r["not_sure_below"] is None else f"{r['not_sure_below']:.3f}",
                f"{r['p50_ms']:.2f} / {r['p90_ms']:.2f}" if "p50_ms" in r else "–",
            )
            for r in result.photos
        ),
    )


def camera(result: Result) -> Table | None:
    """The camera clip of the validation photos: garments whose majority answer is right."""
    if not result.camera:
        return None
    folders = list(result.camera[0]["per_folder"])
    return Table.of(
        f"Camera clip: each validation photo in a 640×480 frame for half a second "
        f"({result.camera[0]['frames']:,} MJPEG frames), the frame loop's majority answer",
        ("variant", "runtime", "garments right", *folders, "FPS"),
        (
            (
                r["variant"],
                r["runtime"],
                f"{r['majority_right']:.1%} of {r['garments']}",
                *(f"{r['per_folder'][f]:.0%}" for f in folders),
                f"{r['fps']:.0f}",
            )
            for r in result.camera
        ),
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


def _wall(recipe: dict) -> str:
    """A recipe's median wall time, with every run's when there were several."""
    each = recipe["wall_seconds_each"]
    runs = f" ({', '.join(f'{v:.0f}' for v in each)})" if len(each) > 1 else ""
    return f"{recipe['wall_seconds']:.0f}{runs}"


def training(result: Result) -> Table | None:
    t = result.training
    if t is None:
        return None
    ours, seed = t["ours"], t["seed_recipe"]
    pairs = len(t["pair_ratios"])
    ratio = f"{t['wall_time_ratio']:.2f}" + (
        f", the median of {pairs} pairs: {', '.join(f'{r:.2f}' for r in t['pair_ratios'])}"
        if pairs > 1
        else ""
    )
    return Table.of(
        f"Training, each seed's two recipes back to back (wall-time ratio {ratio})",
        ("recipe", "wall time (s), median (each run)", "epochs", "test accuracy, seed 0"),
        (
            (
                "this project (`make train`)",
                _wall(ours),
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
                _wall(seed),
                seed["epochs"],
                f"{seed['test_accuracy']:.4f}",
            ),
        ),
    )


PHOTO_TABLES = (real_photos, camera)
"""The real-photo tables (the report shows them in a section of their own)."""
TABLES = (
    every_variant,
    speed_against_references,
    against_peer,
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


def tables(result: Result, makers: tuple = TABLES) -> list[Table]:
    """The run's tables, in :data:`TABLES` (or ``makers``) order."""
    return [t for make in makers if (t := make(result)) is not None]


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
    if result.photo_tables:
        lines += ["", "# Real photos"]
        lines += [
            line for t in result.photo_tables for line in ["", *Table.from_json(t).markdown()]
        ]
        lines += ["", "# Fashion-MNIST, speed and serving"]
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


GALLERY = 8
"""Photos of each kind (right, wrong) in the gallery."""


def photo_figures(result: Result, out_dir: Path) -> list[Path]:
    """The int8 model's answers on the validation photos: a confusion matrix of folder against
    answer, and a gallery of right and wrong answers (each: the photo, what the model saw, the
    answer)."""
    given = result.photo_answers
    if not given:
        return []
    from edge_runtime.photos import right_classes
    from edge_runtime.preprocess import load_image, model_input
    from edge_runtime.vocab import NOT_SURE, PHOTO_FOLDERS
    from trainer.figures import pyplot, save_figure
    from trainer.photos import COLLECTION

    plt = pyplot()
    paths = [COLLECTION / p for p in given["photos"]]
    folders = [PHOTO_FOLDERS[p.parent.name] for p in paths]
    answers, scores = np.array(given["answers"]), np.array(given["scores"])
    names = list(dict.fromkeys(f.name for f in folders))
    counts = np.zeros((len(names), len(CLASS_NAMES)), int)
    for folder, answer in zip(folders, answers, strict=True):
        counts[names.index(folder.name), answer] += 1
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.imshow(counts / counts.sum(1, keepdims=True), cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(counts.shape):
        if counts[i, j]:
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel(f"answer ({given['variant']} on {given['runtime']})")
    ax.set_ylabel("folder")
    ax.set_title("Real photos (validation): folder against answer (photos)")
    confusion = save_figure(fig, out_dir / "plots" / "photos_confusion.png")

    right = right_classes(folders)[np.arange(len(answers)), answers]
    mapped = np.array([bool(f.strict) for f in folders])
    rng = np.random.default_rng(0)
    picked = [
        *rng.permutation(np.flatnonzero(right & mapped))[:GALLERY],
        *rng.permutation(np.flatnonzero(~right & mapped))[:GALLERY],
    ]
    fig, axes = plt.subplots(4, GALLERY, figsize=(GALLERY * 1.5, 8.2), squeeze=False)
    for k, index in enumerate(picked):
        row, col = 2 * (k // GALLERY), k % GALLERY
        photo = load_image(paths[index])
        seen = model_input([photo])[0, :, :, 0]
        sure = given["not_sure_below"] is None or scores[index] >= given["not_sure_below"]
        answer = CLASS_NAMES[answers[index]] + ("" if sure else f" ({NOT_SURE})")
        axes[row, col].imshow(np.asarray(photo.convert("RGB")))
        axes[row, col].set_title(f"{folders[index].name}", fontsize=7)
        axes[row + 1, col].imshow(seen, cmap="gray", vmin=0, vmax=255)
        axes[row + 1, col].set_title(f"→ {answer}\n{scores[index]:.0%}", fontsize=7,
                                     color="black" if right[index] else "#b00")  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Right (top) and wrong (bottom): the photo, what the model saw, its answer")
    gallery = save_figure(fig, out_dir / "plots" / "photos_gallery.png")
    return [confusion, gallery]


def write_outputs(result: Result, out_dir: Path) -> None:
    """``benchmarks.json``, ``benchmarks.md``, the bar charts and photo figures under ``plots/``."""
    figures = charts(result, out_dir) + photo_figures(result, out_dir)
    result.plots = [str(p.relative_to(out_dir)) for p in figures]
    write_text(out_dir / "benchmarks.json", json.dumps(result.to_json(), indent=1))
    write_text(out_dir / "benchmarks.md", markdown(result))

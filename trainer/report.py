"""``report.html``: one self-contained page rendered from the data every step wrote.

This is the only module that writes HTML. It loads no model, no dataset and no TensorFlow: it
reads ``metrics.json``, ``model_summary.txt`` and the training plots (``fmnist-train fit``),
the sidecars and ``int8_debug.json/.png`` (``fmnist-convert``), and ``benchmarks.json`` with its
plots (``fmnist-bench``) and ``serve.png`` (the browser test), and renders a section for each
that exists. Figures are embedded as
PNG data, so the page can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import write_text
from edge_runtime.sidecar import read_sidecar
from edge_runtime.vocab import DEFAULT_RUNTIME, model_files
from trainer.plots import PLOTS
from trainer.tables import (
    Table,
    cross_runtime_table,
    layer_error_table,
    microcontroller_table,
    models_table,
    per_class_delta_table,
    route_table,
)

REQUIRED = ("metrics.json", "model_summary.txt")
"""Training artifacts the report cannot do without."""

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
    "padding:2px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
    "pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:12px}"
    ".missed{color:#b00;font-weight:bold}.foot{color:#777;font-size:12px}"
)


def figure(path: Path, title: str) -> str:
    """A titled PNG embedded as data (the one place images are embedded)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}"></figure>'
    )


def inline(text: object) -> str:
    """Escaped text, with the Markdown the benchmark's tables use: `code` and **bold**.

    The benchmark writes its tables and advice once, as Markdown for ``benchmarks.md``.
    """
    escaped = html.escape(str(text))
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def table(t: Table, *, level: int = 3) -> str:
    """A :class:`~trainer.tables.Table` as HTML under an ``<h{level}>`` title (the one HTML
    table renderer); every cell is escaped (see :func:`inline`)."""
    head = "".join(f"<th>{inline(c)}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    title = f"<h{level}>{inline(t.title)}</h{level}>" if t.title else ""
    return f"{title}<table><tr>{head}</tr>{body}</table>"


def targets(checks: list[dict[str, Any]]) -> str:
    """A list of target checks: met, or missed in red."""
    items = "".join(
        f"<li>{html.escape(str(c['target']))}: {html.escape(str(c['measured']))} — "
        + ("met" if c["met"] else '<span class="missed">missed</span>')
        + "</li>"
        for c in checks
    )
    return f"<ul>{items}</ul>"


def section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def training_section(out_dir: Path, metrics: dict[str, Any]) -> str:
    """Data, model, recipe, metrics and the training plots."""
    data = metrics.get("data") or {}
    parts = [
        f"<p>Test accuracy <b>{metrics['test_accuracy']:.2%}</b>; {metrics['params']:,} "
        f"parameters; trained {metrics['epochs']} epochs in {metrics['train_seconds']:.0f} s "
        f"(seed {metrics['seed']}).</p>"
    ]
    if data:
        parts.append(
            f"<h3>Data</h3><p>Source: <code>{html.escape(data['source'])}</code> "
            f"({html.escape(data['how_found'])}); SHA-256 of all four decompressed files "
            "verified.</p>"
            + table(
                Table.of(
                    "",
                    ("class", "train", "test"),
                    zip(CLASS_NAMES, data["train_counts"], data["test_counts"], strict=True),
                )
            )
        )
    summary = (out_dir / "model_summary.txt").read_text(encoding="utf-8")
    parts.append(f"<h3>Model</h3><pre>{html.escape(summary)}</pre>")
    parts.append(table(Table.of("Recipe", ("setting", "value"), metrics["config"].items())))
    per_class = (
        (n, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", v["support"])
        for n, v in metrics["per_class"].items()
    )
    parts.append(
        table(Table.of("Metrics", ("class", "precision", "recall", "F1", "support"), per_class))
    )
    parts.append(
        f"<h3>Classification report</h3><pre>{html.escape(metrics['classification_report'])}</pre>"
    )
    parts += [
        figure(path, title)
        for name, title in PLOTS
        if (path := out_dir / "plots" / f"{name}.png").is_file()
    ]
    return section("Training", "\n".join(parts))


def conversion_section(out_dir: Path) -> str:
    """Every converted model from its sidecar: accuracy, targets, PTQ against the int8 route,
    where the int8 error sits, the runtimes' agreement and the microcontroller footprint."""
    sidecars = [read_sidecar(p) for _, p in model_files(out_dir)]
    if not sidecars:
        return ""
    parts = [
        f"<p>Float Keras test accuracy {sidecars[0].float_test_accuracy:.4f}. Each model ran "
        f"all 10,000 test images on every runtime marked yes below, each in a worker process "
        f"through the edge runtime's Classifier; the accuracy columns are {DEFAULT_RUNTIME}'s."
        "</p>",
        table(models_table(sidecars)),
        targets([c for s in sidecars for c in s.targets]),
    ]
    route = next((s.route for s in sidecars if s.route), None)
    if route:
        tuned = route["qat"][0]
        parts.append(
            "<h3>The int8 route</h3><p>Label-smoothed training; BatchNorm folded exactly "
            f"(probabilities within {route['rewrite']['max_abs_diff']:.1e} of the Keras model's); "
            f"logits out; quantization-aware fine-tuning by distillation ({tuned['epochs']} epochs "
            f"on {tuned['train_images']:,} images, about {tuned['seconds']:.0f} s each) with "
            f"{len(route['candidates'])} seeds; each seed's logit grid set from the runtimes' "
            "largest difference on held-out images; kept: the seed whose runtimes disagreed least on "
            f"the {route['holdout_images']:,} held-out training images:</p>"
            + table(route_table(route), level=4)
        )
    debug = out_dir / "int8_debug.json"
    if debug.is_file():
        report = json.loads(debug.read_text())
        parts.append(
            f"<h3>Where the int8 error sits</h3><p>{html.escape(report['measure'])}; "
            f"{report['images']} test images, {html.escape(report['kernels'])} kernels.</p>"
        )
        parts += [
            table(layer_error_table(mode, layers), level=4)
            for mode, layers in report["models"].items()
        ]
    if (out_dir / "int8_debug.png").is_file():
        parts.append(figure(out_dir / "int8_debug.png", "int8 error per layer, before and after"))
    pairs = [(s.quantization, p) for s in sidecars for p in s.cross_runtime]
    if pairs:
        title = "The same answer on every runtime (all 10,000 test images)"
        parts.append(table(cross_runtime_table(title, pairs)))
    if any(s.microcontroller for s in sidecars):
        parts.append(table(microcontroller_table(sidecars)))
    parts.append(table(per_class_delta_table(sidecars)))
    return section("Quantized models", "\n".join(parts))


def benchmark_section(out_dir: Path) -> str:
    """The benchmark's tables, targets, advice and charts, as ``benchmarks.json`` holds them."""
    result = _benchmarks(out_dir)
    if result is None:
        return ""
    m = result["machine"]
    parts = [
        f"<p>{html.escape(str(m['cpu']))}, {m['cores']} cores, {html.escape(str(m['machine']))}; "
        f"{result['test_images']:,} test images; {html.escape(result['note'])}.</p>"
    ]
    parts += [table(Table.from_json(t)) for t in result["tables"]]
    parts.append("<h3>Targets</h3>" + targets(result["targets"]))
    parts.append(f"<h3>What to deploy</h3><p>{inline(result['recommendation'])}</p>")
    parts += [
        figure(out_dir / rel, Path(rel).stem.replace("_", " "))
        for rel in result.get("plots", [])
        if (out_dir / rel).is_file() and not Path(rel).stem.startswith("photos_")
    ]
    return section("Benchmarks", "\n".join(parts))


def real_photo_section(out_dir: Path, metrics: dict[str, Any]) -> str:
    """Real photos: every model on the validation photos (from the benchmark), the confusion of
    folder against answer and a gallery of answers; the float model's figures (from training)."""
    result = _benchmarks(out_dir)
    trained = metrics.get("photos")
    if not trained and not (result and result.get("photo_tables")):
        return ""
    parts = []
    if trained:
        v = trained["validation"]
        parts.append(
            f"<p>The float Keras model after training, on the {v['mapped']} validation photos "
            f"of a class: <b>{v['strict']:.1%}</b> strict, <b>{v['family']:.1%}</b> family; its "
            f"'not sure' threshold {trained['not_sure_below']:.3f}, calibrated on "
            "held-out training photos, turns away "
            f"{v['not_sure_mapped']:.1%} of those and {v['not_sure_unmapped']:.1%} of the "
            f"{v['unmapped']} photos of no class.</p>"
        )
    if result:
        parts += [table(Table.from_json(t)) for t in result.get("photo_tables", [])]
        parts += [
            figure(out_dir / rel, title)
            for rel, title in (
                ("plots/photos_confusion.png", "Folder against answer (the int8 model)"),
                (
                    "plots/photos_gallery.png",
                    "Right and wrong answers: photo, what the model saw, answer",
                ),
            )
            if rel in result.get("plots", []) and (out_dir / rel).is_file()
        ]
    return section("Real photos", "\n".join(parts))


def _benchmarks(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "benchmarks.json"
    return json.loads(path.read_text()) if path.is_file() else None


def serve_section(out_dir: Path) -> str:
    """The page of ``fmnist-edge serve`` as the browser test saw it (``serve.png``)."""
    shot = out_dir / "serve.png"
    if not shot.is_file():
        return ""
    return section(
        "Serve",
        "<p>The page of <code>fmnist-edge serve</code> in headless chromium (saved by the browser "
        "test): the live annotated camera stream with its label, top-3 and frame rate, and an "
        "uploaded photo with the 28×28 image the model saw. Its load figures are in the "
        "benchmark tables above.</p>" + figure(shot, "fmnist-edge serve in a browser"),
    )


def render(out_dir: Path) -> str:
    """The whole page, from the artifacts in ``out_dir``.

    Raises:
        FileNotFoundError: A training artifact is missing (run ``make train`` first).
    """
    for required in REQUIRED:
        if not (out_dir / required).is_file():
            raise FileNotFoundError(f"{out_dir / required} is missing: run `make train` first")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    body = (
        "<h1>Fashion-MNIST CNN report</h1>\n"
        + training_section(out_dir, metrics)
        + real_photo_section(out_dir, metrics)
        + conversion_section(out_dir)
        + benchmark_section(out_dir)
        + serve_section(out_dir)
        + f'<p class="foot">Versions: {html.escape(json.dumps(metrics.get("versions", {})))}</p>'
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Fashion-MNIST CNN report</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` from the artifacts there.

    Returns:
        The page's path.
    """
    path = out_dir / "report.html"
    write_text(path, render(out_dir))
    return path

"""Plots and the self-contained ``report.html``.

The report reads the artifacts that ``fmnist-train fit`` (and later steps) wrote; it needs no
model and no TensorFlow, except for the augmentation examples, which run the real training
pipeline so that the picture shows what training saw.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np

from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import atomic_path, write_text
from edge_runtime.preprocess import model_input
from trainer.data import Dataset, class_counts, load_data
from trainer.metrics import confusion_matrix, most_confused_pairs

PLOTS = (
    ("samples_per_class", "Samples from each class"),
    ("class_distribution", "Class distribution, train and test"),
    ("preprocessing", "Preprocessing: raw, scaled, augmented, and a photo-style input"),
    ("curves", "Loss and accuracy, train vs validation"),
    ("confusion_matrix", "Confusion matrix (rows normalised to recall)"),
    ("confused_pairs", "Most-confused pairs, with examples"),
    ("misclassified", "Misclassified test images (true → predicted)"),
)


def describe_data(data_dir: str | os.PathLike[str] | None = None) -> str:
    """A human-readable account of the dataset: source, checksums and counts per class.

    Never downloads: this is how ``make data`` tells whether the data is already here.
    """
    data = load_data(data_dir, allow_download=False)
    train, test = class_counts(data.y_train), class_counts(data.y_test)
    lines = [
        f"source: {data.source} ({data.how_found})",
        "checksums (SHA-256 of decompressed IDX): verified",
    ]
    lines += [f"  {name:<26} {digest}" for name, digest in data.sha256.items()]
    lines += [
        f"train: {len(data.y_train):,} images   test: {len(data.y_test):,} images",
        f"{'class':<14}{'train':>8}{'test':>8}",
    ]
    lines += [f"{n:<14}{a:>8}{b:>8}" for n, a, b in zip(CLASS_NAMES, train, test, strict=True)]
    return "\n".join(lines)


def _save(fig, path: Path) -> None:  # noqa: ANN001 - matplotlib Figure, imported lazily
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _grid(
    images: list[np.ndarray], titles: list[str], cols: int, path: Path, suptitle: str
) -> None:
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=7)
    fig.suptitle(suptitle)
    _save(fig, path)


def plot_samples(data: Dataset, path: Path, per_class: int = 8) -> None:
    """A row of training images per class."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(CLASS_NAMES), per_class, figsize=(per_class * 0.9, len(CLASS_NAMES) * 1.0)
    )
    for c, name in enumerate(CLASS_NAMES):
        for j, i in enumerate(np.flatnonzero(data.y_train == c)[:per_class]):
            ax = axes[c, j]
            ax.imshow(data.x_train[i], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Training samples per class")
    _save(fig, path)


def plot_distribution(data: Dataset, path: Path) -> None:
    """Bar chart of images per class, train and test side by side."""
    import matplotlib.pyplot as plt

    x = np.arange(len(CLASS_NAMES))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(x - 0.2, class_counts(data.y_train), 0.4, label="train")
    ax.bar(x + 0.2, class_counts(data.y_test), 0.4, label="test")
    ax.set_xticks(x, CLASS_NAMES, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.legend()
    ax.set_title("Class distribution")
    _save(fig, path)


def _photo_style(image: np.ndarray) -> np.ndarray:
    """Fake a catalogue photo from a Fashion-MNIST image: dark item on a large white canvas, off-centre."""
    from PIL import Image

    big = np.asarray(Image.fromarray(255 - image).resize((112, 112), Image.Resampling.BILINEAR))
    canvas = np.full((200, 160), 255, np.uint8)
    canvas[20:132, 30:142] = big
    return canvas


def plot_preprocessing(data: Dataset, path: Path, seed: int = 0, examples: int = 5) -> None:
    """Raw pixels, the 0–1 values the model computes on, augmented versions, and the photo path."""
    import matplotlib.pyplot as plt

    from trainer.train import make_dataset

    idx = [int(np.flatnonzero(data.y_train == c)[0]) for c in range(examples)]
    raw = model_input(data.x_train[idx])
    ds = make_dataset(raw, data.y_train[idx], examples, augment="flip-shift", seed=seed)
    augmented = next(iter(ds))[0].numpy().astype(np.uint8)
    photos = [_photo_style(data.x_train[i]) for i in idx]
    prepared = model_input(photos)
    columns = [
        ("raw 0-255", raw, 255),
        ("scaled 0-1 (in-model)", raw / 255.0, 1.0),
        ("augmented", augmented, 255),
        ("photo-style input", photos, 255),
        ("after preprocess()", prepared, 255),
    ]
    fig, axes = plt.subplots(examples, len(columns), figsize=(len(columns) * 1.8, examples * 1.6))
    for col, (title, images, vmax) in enumerate(columns):
        for row in range(examples):
            ax = axes[row, col]
            img = np.squeeze(images[row])
            ax.imshow(img, cmap="gray", vmin=0, vmax=vmax)
            ax.axis("off")
            if row == 0:
                ax.set_title(title, fontsize=8)
    fig.suptitle("Preprocessing")
    _save(fig, path)


def plot_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[key], label="train")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_confusion(cm: np.ndarray, path: Path) -> None:
    """Row-normalised confusion matrix with the rate in each cell."""
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CLASS_NAMES)):
        for j in range(len(CLASS_NAMES)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_confused_pairs(
    data: Dataset, y_pred: np.ndarray, cm: np.ndarray, path: Path, pairs: int = 5, per_pair: int = 6
) -> None:
    """One row per most-confused (true, predicted) pair with example test images."""
    images, titles = [], []
    for t, p, count in most_confused_pairs(cm, pairs):
        idx = np.flatnonzero((data.y_test == t) & (y_pred == p))[:per_pair]
        for k in range(per_pair):
            images.append(data.x_test[idx[k]] if k < len(idx) else np.zeros((28, 28), np.uint8))
            titles.append(f"{CLASS_NAMES[t]}→{CLASS_NAMES[p]}\n({count})" if k == 0 else "")
    _grid(images, titles, per_pair, path, "Most-confused pairs (true→predicted, count)")


def plot_misclassified(data: Dataset, y_pred: np.ndarray, path: Path, count: int = 40) -> None:
    """A gallery of misclassified test images, spread over the test set."""
    wrong = np.flatnonzero(y_pred != data.y_test)
    pick = (
        wrong[np.linspace(0, len(wrong) - 1, min(count, len(wrong))).astype(int)]
        if len(wrong)
        else []
    )
    _grid(
        [data.x_test[i] for i in pick],
        [f"{CLASS_NAMES[data.y_test[i]]}\n→ {CLASS_NAMES[y_pred[i]]}" for i in pick],
        8,
        path,
        f"Misclassified: {len(wrong)} of {len(y_pred)} test images",
    )


def write_plots(out_dir: Path, data: Dataset) -> dict[str, Path]:
    """Write every plot in :data:`PLOTS` under ``out_dir/plots`` and return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a CI box or a headless Pi
    plots = out_dir / "plots"
    paths = {name: plots / f"{name}.png" for name, _ in PLOTS}
    history = json.loads((out_dir / "history.json").read_text())
    y_pred = np.load(out_dir / "test_predictions.npy")
    cm = confusion_matrix(data.y_test, y_pred)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    plot_samples(data, paths["samples_per_class"])
    plot_distribution(data, paths["class_distribution"])
    plot_preprocessing(data, paths["preprocessing"], seed=int(metrics.get("seed", 0)))
    plot_curves(history, paths["curves"])
    plot_confusion(cm, paths["confusion_matrix"])
    plot_confused_pairs(data, y_pred, cm, paths["confused_pairs"])
    plot_misclassified(data, y_pred, paths["misclassified"])
    return paths


def _img(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" alt="{path.stem}">'


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _extra_sections(out_dir: Path) -> list[str]:
    """Sections from later pipeline steps, included when their artifacts exist."""
    sections = []
    for name in ("conversion.html", "benchmarks.html"):
        part = out_dir / name
        if part.is_file():
            sections.append(part.read_text(encoding="utf-8"))
    return sections


def write_report(out_dir: Path, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the plots and ``out_dir/report.html`` (images embedded: one file to open or mail).

    Call after ``fmnist-train fit``; it reads ``metrics.json``, ``history.json``,
    ``test_predictions.npy`` and ``model_summary.txt`` from ``out_dir``.

    Raises:
        FileNotFoundError: A training artifact is missing (run ``make train`` first).
    """
    for required in ("metrics.json", "history.json", "test_predictions.npy", "model_summary.txt"):
        if not (out_dir / required).is_file():
            raise FileNotFoundError(f"{out_dir / required} is missing: run `make train` first")
    data = load_data(data_dir)
    paths = write_plots(out_dir, data)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    summary = (out_dir / "model_summary.txt").read_text(encoding="utf-8")
    train, test = class_counts(data.y_train), class_counts(data.y_test)
    cfg = metrics.get("config", {})
    per_class = [
        [n, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", v["support"]]
        for n, v in metrics["per_class"].items()
    ]
    titles = dict(PLOTS)
    figures = "".join(f"<h3>{html.escape(titles[n])}</h3>{_img(p)}" for n, p in paths.items())
    body = f"""
<h1>Fashion-MNIST CNN report</h1>
<p>Test accuracy <b>{metrics["test_accuracy"]:.2%}</b> on {len(data.y_test):,} test images;
{metrics["params"]:,} parameters; trained {metrics["epochs"]} epochs in {metrics["train_seconds"]:.0f} s
(seed {metrics["seed"]}).</p>
<h2>Data</h2>
<p>Source: <code>{html.escape(str(data.source))}</code> ({html.escape(data.how_found)}); SHA-256 of all four
decompressed files verified.</p>
{_table(["class", "train", "test"], [[n, a, b] for n, a, b in zip(CLASS_NAMES, train, test, strict=True)])}
<h2>Model</h2><pre>{html.escape(summary)}</pre>
<h2>Training</h2>
{_table(["setting", "value"], [[k, v] for k, v in cfg.items()])}
<h2>Metrics</h2>
{_table(["class", "precision", "recall", "F1", "support"], per_class)}
<h3>Classification report</h3><pre>{html.escape(metrics["classification_report"])}</pre>
<h2>Figures</h2>{figures}
{"".join(_extra_sections(out_dir))}
<p class="foot">Versions: {html.escape(json.dumps(metrics.get("versions", {})))}</p>
"""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fashion-MNIST CNN report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
th{{background:#f3f3f3}}img{{max-width:100%}}pre{{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:12px}}
.foot{{color:#777;font-size:12px}}</style></head><body>{body}</body></html>
"""
    path = out_dir / "report.html"
    write_text(path, page)
    return path

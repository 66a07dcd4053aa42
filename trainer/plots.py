"""The training plots: ``fmnist-train fit`` writes them under ``plots/`` beside its other
artifacts, and the report only embeds them. Each is saved by :func:`trainer.figures.save_figure`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime import CLASS_NAMES, IMAGE_SIZE
from edge_runtime.preprocess import model_input
from trainer.batches import augment_batch
from trainer.data import Dataset, class_counts
from trainer.figures import pyplot, save_figure
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
"""The training plots: file stem under ``plots/`` and title."""


def _mosaic(
    ax,  # noqa: ANN001 - a matplotlib Axes
    images: list[np.ndarray | None],
    cols: int,
    *,
    label_rows: int,
) -> tuple[int, int]:
    """Draw 28×28 images (None: a blank cell) as one tiled picture on ``ax`` (one image is far
    quicker to draw than an axes per image), ``label_rows`` pixel rows of white above each for
    its label.

    Returns:
        The ``(width, height)`` of a cell in pixels, for placing labels.
    """
    gap = 4
    cell_w, cell_h = IMAGE_SIZE + gap, IMAGE_SIZE + label_rows
    rows = max(1, -(-len(images) // cols))
    tiled = np.full((rows * cell_h, cols * cell_w), 255, np.uint8)
    for k, image in enumerate(images):
        if image is None:  # a blank cell
            continue
        top, left = (k // cols) * cell_h + label_rows, (k % cols) * cell_w + gap // 2
        tiled[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE] = image
    ax.imshow(tiled, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    # The picture fills the figure (the saved PNG is cropped to what is drawn, a title
    # above the figure included).
    ax.set_position((0, 0, 1, 1))
    ax.figure.set_figheight(ax.figure.get_figwidth() * tiled.shape[0] / tiled.shape[1])
    return cell_w, cell_h


def _grid(
    images: list[np.ndarray], titles: list[str], cols: int, path: Path, suptitle: str
) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(cols * 1.3, 1))
    cell_w, cell_h = _mosaic(ax, images, cols, label_rows=18)
    for k, title in enumerate(titles):
        x, y = (k % cols + 0.5) * cell_w, (k // cols) * cell_h + 17
        ax.text(x, y, title, ha="center", va="bottom", fontsize=7)
    fig.suptitle(suptitle, y=1.0, va="bottom")
    save_figure(fig, path)


def plot_samples(data: Dataset, path: Path, *, per_class: int = 8) -> None:
    """A row of training images per class."""
    plt = pyplot()

    images: list[np.ndarray | None] = []
    for c in range(len(CLASS_NAMES)):
        row = [data.x_train[i] for i in np.flatnonzero(data.y_train == c)[:per_class]]
        images += row + [None] * (per_class - len(row))
    fig, ax = plt.subplots(figsize=(per_class * 0.9, 1))
    cell_w, cell_h = _mosaic(ax, images, per_class, label_rows=4)
    for c, name in enumerate(CLASS_NAMES):
        ax.text(-2, (c + 0.5) * cell_h + 2, name, ha="right", va="center", fontsize=8)
    fig.suptitle("Training samples per class", y=1.0, va="bottom")
    save_figure(fig, path)


def plot_distribution(data: Dataset, path: Path) -> None:
    """Bar chart of images per class, train and test side by side."""
    plt = pyplot()

    x = np.arange(len(CLASS_NAMES))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(x - 0.2, class_counts(data.y_train), 0.4, label="train")
    ax.bar(x + 0.2, class_counts(data.y_test), 0.4, label="test")
    ax.set_xticks(x, CLASS_NAMES, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.legend()
    ax.set_title("Class distribution")
    save_figure(fig, path)


def _photo_style(image: np.ndarray) -> np.ndarray:
    """Fake a catalogue photo from a Fashion-MNIST image: dark item on a large white canvas, off-centre."""
    from PIL import Image

    big = np.asarray(Image.fromarray(255 - image).resize((112, 112), Image.Resampling.BILINEAR))
    canvas = np.full((200, 160), 255, np.uint8)
    canvas[20:132, 30:142] = big
    return canvas


def plot_preprocessing(data: Dataset, path: Path, *, seed: int = 0, examples: int = 5) -> None:
    """Raw pixels, the 0–1 values the model computes on, augmented versions, and the photo path."""
    plt = pyplot()

    idx = [int(np.flatnonzero(data.y_train == c)[0]) for c in range(examples)]
    raw = model_input(data.x_train[idx])
    augmented = augment_batch(raw, "flip-shift", seed).numpy().astype(np.uint8)
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
    save_figure(fig, path)


def plot_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[key], label="train")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def plot_confusion(cm: np.ndarray, path: Path) -> None:
    """Row-normalised confusion matrix with the rate in each cell."""
    plt = pyplot()

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
    save_figure(fig, path)


def plot_confused_pairs(
    data: Dataset, y_pred: np.ndarray, path: Path, *, pairs: int = 5, per_pair: int = 6
) -> None:
    """One row per most-confused (true, predicted) pair with example test images."""
    images, titles = [], []
    for t, p, count in most_confused_pairs(confusion_matrix(data.y_test, y_pred), pairs):
        idx = np.flatnonzero((data.y_test == t) & (y_pred == p))[:per_pair]
        for k in range(per_pair):
            images.append(data.x_test[idx[k]] if k < len(idx) else np.zeros((28, 28), np.uint8))
            titles.append(f"{CLASS_NAMES[t]}→{CLASS_NAMES[p]}\n({count})" if k == 0 else "")
    _grid(images, titles, per_pair, path, "Most-confused pairs (true→predicted, count)")


def plot_misclassified(data: Dataset, y_pred: np.ndarray, path: Path, *, count: int = 40) -> None:
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


def write_plots(
    out_dir: Path, *, data: Dataset, history: dict[str, list[float]], y_pred: np.ndarray, seed: int
) -> dict[str, Path]:
    """Write every plot in :data:`PLOTS` under ``out_dir/plots``.

    Args:
        out_dir: The artifacts folder.
        data: The dataset the model was trained and tested on.
        history: Per-epoch metrics from training.
        y_pred: Predicted class per test image.
        seed: The training seed (the augmentation examples use it).

    Returns:
        The paths written, by plot name.
    """
    paths = {name: out_dir / "plots" / f"{name}.png" for name, _ in PLOTS}
    plot_samples(data, paths["samples_per_class"])
    plot_distribution(data, paths["class_distribution"])
    plot_preprocessing(data, paths["preprocessing"], seed=seed)
    plot_curves(history, paths["curves"])
    plot_confusion(confusion_matrix(data.y_test, y_pred), paths["confusion_matrix"])
    plot_confused_pairs(data, y_pred, paths["confused_pairs"])
    plot_misclassified(data, y_pred, paths["misclassified"])
    return paths

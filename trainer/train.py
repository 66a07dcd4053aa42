"""Training workflow, top to bottom: data → model → train → evaluate → save.

Each step is a small function so that tests, the benchmark and the CLI can call them one by one;
:func:`run` chains them the way ``make train`` does.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_runtime import CLASS_NAMES
from edge_runtime.atomic import atomic_path, write_text
from edge_runtime.photos import Photo, labelled_photos, score
from edge_runtime.preprocess import model_input
from edge_runtime.provenance import package_versions
from trainer import photos as real
from trainer.batches import evaluation_batches, training_batches
from trainer.data import Dataset, load_data, stratified_indices, summary
from trainer.metrics import summarize
from trainer.model import answers
from trainer.objective import set_accuracy, set_cross_entropy
from trainer.plots import write_plots

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe. Defaults are the recipe ``make train`` uses.

    Attributes:
        epochs: Passes over the Fashion-MNIST training images (early stopping may end sooner);
            the photos come on top, as :attr:`photo_share` of every batch.
        batch_size: Images per step.
        learning_rate: Peak Adam learning rate; it decays along a cosine to 1% by the last epoch.
        validation_size: Images held out of the *training* set for validation (never the test set).
        patience: Epochs without a validation-accuracy gain before early stopping.
        augment: ``none``, ``flip`` (random left-right flip) or ``flip-shift`` (flip plus a random
            shift of up to 2 px). Never vertical flips: a flipped ankle boot is not a boot.
        seed: Seeds every random choice; the same seed gives the same model on the same machine.
        limit: Use only this many Fashion-MNIST training images (stratified), for smoke tests.
        label_smoothing: Weight moved from the right classes to all classes in the loss. It
            bounds the logits, so the int8 model's logit grid is finer, and it made the float
            model more accurate too.
        photos: Folders of labelled photos to train on besides the vendored collection's
            training split (a device's labelled captures, ``DIR/labelled``), laid out by photo
            folder (:func:`edge_runtime.photos.labelled_photos`).
        real_photos: Train on the vendored real-photo collection at all (False: Fashion-MNIST
            and :attr:`photos` only).
        photo_copies: Examples made of each photo (itself, and augmented copies) for a folder
            of average size; smaller folders get more, larger ones fewer.
        photo_share: The share of every batch drawn from the photos.
        outlier_weight: Weight of the photos of garments with no class, which are pushed
            towards "not sure" (outlier exposure).
    """

    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 5e-3
    validation_size: int = 5000
    patience: int = 6
    augment: str = "flip"
    seed: int = 0
    limit: int | None = None
    label_smoothing: float = 0.1
    photos: tuple[Path, ...] = ()
    real_photos: bool = True
    photo_copies: int = 4
    photo_share: float = 0.2
    outlier_weight: float = 1.0


@dataclass
class TrainResult:
    """What :func:`train` returns: the model with its best weights, the history and the wall time."""

    model: keras.Model
    history: dict[str, list[float]]
    seconds: float
    epochs_run: int


def split_validation(
    x: np.ndarray, y: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a stratified validation set of ``size`` images off the training set.

    Returns:
        ``(x_train, y_train, x_val, y_val)``.
    """
    val = stratified_indices(y, size, seed)
    keep = np.ones(len(y), bool)
    keep[val] = False
    return x[keep], y[keep], x[val], y[val]


def set_determinism(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TF ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def config_json(config: TrainConfig) -> dict:
    """``config`` as JSON values (paths as text), as ``metrics.json`` records it."""
    return json.loads(json.dumps(asdict(config), default=str))


def _backup_matches(backup_dir: Path, config: TrainConfig) -> bool:
    stamp = backup_dir / "config.json"
    return stamp.is_file() and json.loads(stamp.read_text()) == config_json(config)


@dataclass(frozen=True)
class PhotoSets:
    """The photos of one training run.

    Attributes:
        train: What is trained on: the collection's training split but its held-out share,
            and every photo of :attr:`TrainConfig.photos`.
        held_out: The collection's held-out share, which calibrates the threshold.
    """

    train: list[Photo]
    held_out: list[Photo]


def photo_sets(config: TrainConfig) -> PhotoSets:
    """The photos ``config`` trains on and calibrates with.

    Raises:
        PhotoError, PhotosMissing: A folder of photos cannot be read.
    """
    train, held_out = [], []
    if config.real_photos:
        train, held_out = real.calibration_split(real.collection_split("train"))
    for folder in config.photos:
        train += labelled_photos(folder)
    return PhotoSets(train, held_out)


def fashion_mnist_split(
    data: Dataset, config: TrainConfig
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The Fashion-MNIST images ``config`` trains and validates on, as model input.

    Returns:
        ``((x_train, target rows), (x_val, y_val))``.
    """
    x, y = data.x_train, data.y_train
    if config.limit is not None and config.limit < len(y):
        idx = stratified_indices(y, config.limit, config.seed)
        x, y = x[idx], y[idx]
    val_size = min(config.validation_size, len(y) // 5)
    x_tr, y_tr, x_val, y_val = split_validation(model_input(x), y, val_size, config.seed)
    return (x_tr, real.class_targets(y_tr)), (x_val, y_val)


def train(data: Dataset, config: TrainConfig, backup_dir: Path | None = None) -> TrainResult:
    """Train a fresh :func:`~trainer.model.build_model` on ``data`` and the photos.

    Resumable: with ``backup_dir``, the state is saved at every epoch end and a later call with
    the same config resumes from it (a kill -9 costs at most one epoch). A backup made with a
    different config is discarded, never resumed. After a resume, the returned wall time covers
    only this process, and early stopping counts its patience from the resumed epoch.

    Call order: photo examples (worker processes, started before TensorFlow loads) and the
    Fashion-MNIST split (:func:`fashion_mnist_split`) → the mixed batches → fit, with early
    stopping on the Fashion-MNIST validation split.

    Args:
        data: The loaded dataset; its test split is not touched here.
        config: The recipe.
        backup_dir: Where to keep the resumable state, or None for no resume.

    Returns:
        The trained model (best validation weights), history and wall time.
    """
    start = time.perf_counter()
    sets = photo_sets(config)
    with ThreadPoolExecutor(1) as background:
        # The photo examples are made in worker processes while this one loads TensorFlow and
        # prepares Fashion-MNIST: the same examples, a little sooner.
        made = (
            background.submit(
                real.photo_examples, sets.train, copies=config.photo_copies, seed=config.seed
            )
            if sets.train
            else None
        )
        import keras

        from trainer.model import build_model

        set_determinism(config.seed)
        fmnist, (x_val, y_val) = fashion_mnist_split(data, config)
        parts, shares = [fmnist], [1.0]
        if made is not None:
            # The loss weighs the photos of no class by config.outlier_weight (set_cross_entropy).
            parts.append(made.result())
            shares = [1.0 - config.photo_share, config.photo_share]
    train_ds = training_batches(
        parts, shares, batch_size=config.batch_size, augment=config.augment, seed=config.seed
    )
    val_ds = evaluation_batches(x_val, real.class_targets(y_val))

    # An epoch is one pass over the Fashion-MNIST images; the photos come on top of them.
    steps_per_epoch = int(np.ceil(len(fmnist[0]) / (config.batch_size * shares[0])))
    steps = config.epochs * steps_per_epoch
    # A schedule object lives in the optimizer state, so a resumed run continues the same curve.
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.01)
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=set_cross_entropy(config.label_smoothing, config.outlier_weight),
        metrics=[keras.metrics.MeanMetricWrapper(set_accuracy, name="accuracy")],
    )
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=config.patience,
            restore_best_weights=True,
        )
    ]
    if backup_dir is not None:
        if backup_dir.exists() and not _backup_matches(backup_dir, config):
            print(f"Discarding {backup_dir}: it was made with a different recipe.", file=sys.stderr)
            shutil.rmtree(backup_dir)
        backup_dir.mkdir(parents=True, exist_ok=True)
        write_text(backup_dir / "config.json", json.dumps(config_json(config)))
        # The CSV keeps the epochs run before a kill, which fit()'s own history forgets. It is
        # written before the backup, so a kill between the two repeats a row; _read_history
        # keeps the last copy of each epoch. Keras's own delete_checkpoint would remove the
        # whole folder, CSV included, so the folder is removed here once the CSV is read.
        callbacks.insert(0, keras.callbacks.CSVLogger(str(backup_dir / "history.csv"), append=True))
        callbacks.insert(
            1, keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False)
        )

    photos = len(parts[1][0]) if len(parts) > 1 else 0
    print(
        f"Training on {len(fmnist[0]):,} Fashion-MNIST images and {photos:,} photo examples "
        f"({shares[-1]:.0%} of each batch when there are photos), validating on "
        f"{len(y_val):,}: {config}",
        file=sys.stderr,
    )
    fit = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    if backup_dir is not None:
        history = _read_history(backup_dir / "history.csv")
        shutil.rmtree(backup_dir, ignore_errors=True)
    return TrainResult(model, history, seconds, len(history.get("loss", [])))


def _read_history(csv_path: Path) -> dict[str, list[float]]:
    """Per-epoch metrics from a CSVLogger file, one row per epoch (the last copy wins)."""
    import csv

    with open(csv_path, newline="") as f:
        rows = {int(r["epoch"]): r for r in csv.DictReader(f) if r.get("epoch", "").isdigit()}
    keys = [k for k in next(iter(rows.values()), {}) if k != "epoch"]
    return {k: [float(rows[e][k]) for e in sorted(rows)] for k in keys}


def mirror_average(config: TrainConfig) -> bool:
    """Whether a model of ``config`` answers with the mean over an image and its mirror image:
    so it does when it was trained on mirrored images."""
    return config.augment != "none"


def predict_classes(model: keras.Model, images: np.ndarray, *, mirror: bool = False) -> np.ndarray:
    """Class ids answered for model-input images (N, 28, 28, 1), raw 0–255 (with ``mirror``,
    averaged over each image and its mirror image, as the runtime answers)."""
    return np.argmax(answers(model, images, mirror_average=mirror), axis=1)


def evaluate(model: keras.Model, data: Dataset, *, mirror: bool = False) -> dict:
    """Evaluate on the full test set: accuracy, confusion matrix, per-class scores, text report."""
    return summarize(data.y_test, predict_classes(model, model_input(data.x_test), mirror=mirror))


def save_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` to ``path`` (.keras) atomically: a half-written file is never visible.

    A model trained with this project's loss is saved compiled with a standard one: any Keras,
    in ``safe_mode``, loads it without this project's code.
    """
    import keras

    if not isinstance(model.loss, str | keras.losses.Loss | type(None)):
        model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_model(path: Path) -> keras.Model:
    """Load a .keras model with ``safe_mode=True`` (no arbitrary code from Lambda layers)."""
    import keras

    return keras.saving.load_model(path, safe_mode=True)


def run(config: TrainConfig, out_dir: Path, data_dir: Path | None = None) -> dict:
    """The whole ``make train`` step: load → train → evaluate → save the artifacts → plot.

    Writes ``model.keras``, ``metrics.json``, ``history.json``, ``classification_report.txt``,
    ``test_predictions.npy``, ``model_summary.txt`` and the training plots under ``plots/``
    into ``out_dir``, each atomically.

    Returns:
        The metrics written to ``metrics.json``.
    """
    data = load_data(data_dir)
    result = train(data, config, backup_dir=out_dir / ".train-backup")
    mirror = mirror_average(config)
    y_pred = predict_classes(result.model, model_input(data.x_test), mirror=mirror)
    metrics = summarize(data.y_test, y_pred)
    metrics["mirror_average"] = mirror
    metrics["photos"] = photo_metrics(result.model, config)
    metrics.update(
        params=int(result.model.count_params()),
        train_seconds=round(result.seconds, 2),
        epochs=result.epochs_run,
        seed=config.seed,
        config=config_json(config),
        labels=list(CLASS_NAMES),
        data=summary(data),
        versions=package_versions(),
    )
    save_model(result.model, out_dir / "model.keras")
    # The report reads these instead of loading TensorFlow again.
    with atomic_path(out_dir / "test_predictions.npy") as tmp:
        np.save(tmp, y_pred.astype(np.uint8))
    lines: list[str] = []
    result.model.summary(print_fn=lambda line, **_: lines.append(line))
    write_text(out_dir / "model_summary.txt", "\n".join(lines))
    write_text(out_dir / "history.json", json.dumps(result.history, indent=1))
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=1))
    write_text(out_dir / "classification_report.txt", metrics["classification_report"] + "\n")
    write_plots(out_dir, data=data, history=result.history, y_pred=y_pred, seed=config.seed)
    shown = metrics["photos"]
    on_photos = (
        f"; real photos (validation): {shown['validation']['strict']:.1%} strict, "
        f"{shown['validation']['family']:.1%} family"
        if shown
        else ""
    )
    print(
        f"Test accuracy {metrics['test_accuracy']:.4f}{on_photos}, after {result.epochs_run} "
        f"epochs in {result.seconds:.0f} s; wrote {out_dir}/model.keras",
        file=sys.stderr,
    )
    return metrics


def photo_metrics(model: keras.Model, config: TrainConfig) -> dict | None:
    """The float model's "not sure" threshold, calibrated on the held-out training photos, and
    its scores on the collection's validation split (None without the collection)."""
    if not config.real_photos:
        return None
    sets = photo_sets(config)
    validation = real.collection_split("validation")

    def probabilities(photos: list[Photo]) -> np.ndarray:
        return answers(model, real.photo_inputs(photos), mirror_average=mirror_average(config))

    held = probabilities(sets.held_out)
    threshold = real.not_sure_threshold(sets.held_out, held)
    folders = [p.folder for p in validation]
    return {
        "not_sure_below": threshold,
        "held_out": score(
            [p.folder for p in sets.held_out], held, not_sure_below=threshold
        ).to_json(),
        "validation": score(folders, probabilities(validation), not_sure_below=threshold).to_json(),
        "train_photos": len(sets.train),
    }

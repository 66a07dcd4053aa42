"""The Keras model and the training loop (TensorFlow: marked slow)."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from trainer.batches import mixed_rows, training_batches
from trainer.data import stratified_indices
from trainer.train import TrainConfig, split_validation

pytestmark = pytest.mark.slow


def test_parameter_count_is_the_seed_stack():
    from trainer.model import SEED_PARAMS, build_model

    model = build_model()
    assert model.count_params() == SEED_PARAMS == 107_598
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Rescaling",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert model.layers[0].scale == pytest.approx(1 / 255)


def test_model_takes_raw_pixels():
    from trainer.model import build_model

    model = build_model()
    out = model(np.full((2, 28, 28, 1), 255, np.float32), training=False).numpy()
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_training_is_deterministic_for_a_seed(dataset):
    from trainer.train import train

    config = TrainConfig(epochs=1, limit=1000, validation_size=100, seed=3)
    a = train(dataset, config).model.get_weights()
    b = train(dataset, config).model.get_weights()
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_train_save_reload_safe_mode_evaluate(dataset, tmp_path: Path):
    """Integration on the real data: a short run, atomic save, safe-mode reload, same predictions."""
    from trainer.train import evaluate, load_model, save_model, train

    # Batch 32: enough steps for the BatchNorm moving statistics to settle in a short run.
    result = train(dataset, TrainConfig(epochs=2, limit=3000, batch_size=32, validation_size=300))
    path = tmp_path / "m.keras"
    save_model(result.model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"], "no temp file may remain"
    reloaded = load_model(path)
    before, after = evaluate(result.model, dataset), evaluate(reloaded, dataset)
    assert before["test_accuracy"] == after["test_accuracy"]
    # ~0.50 seen after 2 short epochs on 2,700 images; chance is 0.10.
    assert after["test_accuracy"] > 0.3, "a short run must already beat chance by far"


def test_stratified_split_is_balanced_and_disjoint():
    y = np.repeat(np.arange(10), 100)
    x = np.arange(1000)
    x_tr, y_tr, x_val, y_val = split_validation(x, y, 50, seed=0)
    assert np.bincount(y_val).tolist() == [5] * 10
    assert not set(x_tr) & set(x_val) and len(x_tr) + len(x_val) == 1000
    np.testing.assert_array_equal(stratified_indices(y, 50, 1), stratified_indices(y, 50, 1))


def test_stale_backup_is_discarded_not_resumed(dataset, tmp_path: Path):
    from trainer.train import train

    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "config.json").write_text(json.dumps({"epochs": 99}))
    (backup / "junk").write_text("x")
    train(dataset, TrainConfig(epochs=1, limit=500, validation_size=100), backup_dir=backup)
    assert not backup.exists(), "a finished run removes its backup"


def test_the_loss_weighs_a_photo_of_no_class_once_by_the_outlier_weight():
    from trainer.objective import set_cross_entropy
    from trainer.photos import TARGET_WIDTH, class_targets

    p = np.array([[0.5, 0.3] + [0.025] * 8], np.float32)
    outlier = np.zeros((1, TARGET_WIDTH), np.float32)
    outlier[0, :10] = outlier[0, 10] = outlier[0, 11] = 1.0  # as trainer.photos.target makes it
    uniform = float(-np.log(p).mean())
    for weight in (0.5, 2.0):
        loss = set_cross_entropy(0.1, weight)
        assert float(loss(outlier, p)[0]) == pytest.approx(weight * uniform, rel=1e-5)
    # A Fashion-MNIST image of class 0: label-smoothed cross-entropy.
    known = float(set_cross_entropy(0.1, 2.0)(class_targets(np.array([0])), p)[0])
    assert known == pytest.approx(0.9 * -np.log(0.5) + 0.1 * uniform, rel=1e-5)


def _draws(seed: int) -> np.ndarray:
    return np.concatenate(list(islice(mixed_rows([10, 3], [0.75, 0.25], 8, seed=seed), 1000)))


def test_mixed_rows_draw_each_part_in_passes_at_its_share():
    draws = _draws(seed=0)
    # Every pass over a part is a permutation of its rows: none repeats before all have come.
    for part, size in ((draws[draws < 10], 10), (draws[draws >= 10] - 10, 3)):
        passes = part[: len(part) // size * size].reshape(-1, size)
        assert (np.sort(passes, axis=1) == np.arange(size)).all()
    assert abs(np.mean(draws >= 10) - 0.25) < 0.02
    np.testing.assert_array_equal(draws, _draws(seed=0))
    assert not np.array_equal(draws, _draws(seed=1))


def test_training_batches_keep_each_image_with_its_target():
    # Each image's pixels and its target row spell its row number, so a mix-up shows.
    parts = [
        (
            np.repeat(r, 28 * 28).reshape(-1, 28, 28).astype(np.uint8),
            np.repeat(r, 12).reshape(-1, 12),
        )
        for r in (np.arange(40), np.arange(40, 52))
    ]
    batches = training_batches(parts, [0.5, 0.5], batch_size=16, augment="none", seed=0)
    images, targets = (t.numpy() for t in next(iter(batches)))
    assert images.shape == (16, 28, 28, 1) and images.dtype == np.float32
    row = images[:, 0, 0, 0]
    assert (images == row[:, None, None, None]).all()
    assert (targets == row[:, None]).all()
    assert (row < 40).any() and (row >= 40).any()

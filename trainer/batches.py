"""The ``tf.data`` pipeline that feeds training: shuffling, augmentation and batching.

Its input is model input (what :func:`edge_runtime.preprocess.model_input` made), so the pixels
trained on are made by the same code as the pixels the Pi classifies; augmentation here only
moves and mirrors them (a photo's own augmentation happens before preprocessing, in
:mod:`trainer.photos`). Targets are rows of :data:`trainer.photos.TARGET_WIDTH`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from edge_runtime import INPUT_SHAPE

if TYPE_CHECKING:
    import tensorflow as tf

AUGMENTATIONS = ("none", "flip", "flip-shift")
"""``none``; ``flip``: a random left-right flip; ``flip-shift``: that plus a random shift of up to
2 px. Never vertical flips: a flipped ankle boot is not a boot."""


def flip_batch(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Mirror a random half of a batch of (N, 28, 28, 1) images left to right."""
    import tensorflow as tf

    coin = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=seed) < 0.5
    return tf.where(coin, tf.reverse(images, axis=[2]), images)


def augment_batch(images: tf.Tensor, augment: str, seed: int) -> tf.Tensor:
    """A batch of (N, 28, 28, 1) model input as float32 raw 0–255 pixels, augmented by one of
    :data:`AUGMENTATIONS`; row ``i`` of the result is row ``i`` of ``images``."""
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    if augment != "none":
        images = flip_batch(images, seed)
    if augment == "flip-shift":
        padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
        images = tf.image.random_crop(padded, tf.shape(images), seed=seed + 1)
    return images


def mixed_rows(
    sizes: list[int], shares: list[float], batch_size: int, seed: int
) -> Iterator[np.ndarray]:
    """Endless batches of row numbers into the parts stacked end to end.

    Each row comes from part ``i`` with probability ``shares[i]``, and each part is drawn
    without replacement in a fresh random order on every pass over it: the mix
    ``tf.data.Dataset.sample_from_datasets`` makes of shuffled, repeated parts, chosen here a
    batch at a time in numpy, because tf.data chooses an example at a time, and on two cores
    that work is taken from the training steps (the README has the figures).
    """
    rng = np.random.default_rng(seed)
    starts = np.cumsum([0, *sizes[:-1]])
    p = np.asarray(shares, float) / np.sum(shares)
    queued = [np.empty(0, np.int64) for _ in sizes]
    while True:
        part = rng.choice(len(sizes), size=batch_size, p=p)
        rows = np.empty(batch_size, np.int64)
        for i, size in enumerate(sizes):
            slots = np.flatnonzero(part == i)
            while len(queued[i]) < len(slots):
                queued[i] = np.concatenate([queued[i], rng.permutation(size)])
            rows[slots] = starts[i] + queued[i][: len(slots)]
            queued[i] = queued[i][len(slots) :]
        yield rows


def training_batches(
    parts: list[tuple[np.ndarray, np.ndarray]],
    shares: list[float],
    *,
    batch_size: int,
    augment: str,
    seed: int,
) -> tf.data.Dataset:
    """Endless shuffled batches of (float32 raw 0–255 pixels (N, 28, 28, 1), target rows),
    each example drawn from ``parts[i]`` with probability ``shares[i]`` (:func:`mixed_rows`).

    Args:
        parts: ``(model input uint8 (N, 28, 28) or (N, 28, 28, 1), target rows (N, 12))``.
        shares: How often each part is drawn from (they sum to 1).
        batch_size: Images per batch.
        augment: One of :data:`AUGMENTATIONS`, applied to each batch.
        seed: Seeds the shuffling, the mix and the augmentation.
    """
    import tensorflow as tf

    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    images = np.concatenate([x.reshape(-1, *INPUT_SHAPE) for x, _ in parts])
    targets = np.concatenate([t for _, t in parts]).astype(np.float32)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows in mixed_rows([len(x) for x, _ in parts], shares, batch_size, seed):
            yield images[rows], targets[rows]

    def prepare(images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return augment_batch(images, augment, seed), targets

    signature = (
        tf.TensorSpec((batch_size, *INPUT_SHAPE), images.dtype),
        tf.TensorSpec((batch_size, targets.shape[1]), tf.float32),
    )
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )


def evaluation_batches(
    x: np.ndarray, targets: np.ndarray, batch_size: int = 1024
) -> tf.data.Dataset:
    """Batches of (float32 pixels, target rows) in order, once (validation)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x.reshape(-1, *INPUT_SHAPE), targets))
    return ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b))

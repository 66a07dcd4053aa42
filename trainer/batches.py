"""The ``tf.data`` pipeline that feeds training: shuffling, augmentation and batching.

Its input is model input (what :func:`edge_runtime.preprocess.model_input` made), so the pixels
trained on are made by the same code as the pixels the Pi classifies; augmentation here only
moves and mirrors them (a photo's own augmentation happens before preprocessing, in
:mod:`trainer.photos`). Targets are rows of :data:`trainer.photos.TARGET_WIDTH`.
"""

from __future__ import annotations

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


def training_batches(
    parts: list[tuple[np.ndarray, np.ndarray]],
    shares: list[float],
    *,
    batch_size: int,
    augment: str,
    seed: int,
) -> tf.data.Dataset:
    """Endless shuffled batches of (float32 raw 0–255 pixels (N, 28, 28, 1), target rows),
    each example drawn from ``parts[i]`` with probability ``shares[i]``.

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
    streams = [
        tf.data.Dataset.from_tensor_slices((x.reshape(-1, *INPUT_SHAPE), t))
        .shuffle(len(x), seed=seed + i, reshuffle_each_iteration=True)
        .repeat()
        for i, (x, t) in enumerate(parts)
    ]
    ds = (
        streams[0]
        if len(streams) == 1
        else tf.data.Dataset.sample_from_datasets(streams, weights=shares, seed=seed)
    )

    def prepare(images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = tf.cast(images, tf.float32)
        if augment != "none":
            images = flip_batch(images, seed)
        if augment == "flip-shift":
            padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
            images = tf.image.random_crop(padded, tf.shape(images), seed=seed + 1)
        return images, targets

    batches = ds.batch(batch_size)
    return batches.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )


def evaluation_batches(
    x: np.ndarray, targets: np.ndarray, batch_size: int = 1024
) -> tf.data.Dataset:
    """Batches of (float32 pixels, target rows) in order, once (validation)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x.reshape(-1, *INPUT_SHAPE), targets))
    return ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b))

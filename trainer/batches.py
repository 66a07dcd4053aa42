"""The ``tf.data`` pipeline that feeds training: shuffling, augmentation and batching.

Its input is model input (what :func:`edge_runtime.preprocess.model_input` made), so the pixels
trained on are made by the same code as the pixels the Pi classifies; augmentation here only
moves and mirrors them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge_runtime import CLASS_NAMES

if TYPE_CHECKING:
    import tensorflow as tf

AUGMENTATIONS = ("none", "flip", "flip-shift")
"""``none``; ``flip``: a random left-right flip; ``flip-shift``: that plus a random shift of up to
2 px. Never vertical flips: a flipped ankle boot is not a boot."""


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    augment: str = "none",
    seed: int = 0,
) -> tf.data.Dataset:
    """A batched ``tf.data`` pipeline of (float32 raw 0–255 pixels (N,28,28,1), one-hot labels).

    Args:
        x: Model input, uint8 (N, 28, 28, 1), as made by :func:`edge_runtime.preprocess.model_input`.
        y: Class ids (N,).
        batch_size: Images per batch.
        shuffle: Reshuffle every epoch (training only).
        augment: One of :data:`AUGMENTATIONS`, applied per image.
        seed: Seed for shuffling and augmentation.
    """
    import tensorflow as tf

    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    ds = tf.data.Dataset.from_tensor_slices((x, y))

    def flip(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.image.random_flip_left_right(image, seed=seed), label

    def shift(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        padded = tf.pad(image, [[2, 2], [2, 2], [0, 0]])
        return tf.image.random_crop(padded, tf.shape(image), seed=seed + 1), label

    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment != "none":
        ds = ds.map(flip, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if augment == "flip-shift":
            ds = ds.map(shift, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    classes = len(CLASS_NAMES)
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), tf.one_hot(b, classes)))
    return ds.prefetch(tf.data.AUTOTUNE)

"""The seed CNN, exactly as specified, taking raw 0–255 pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge_runtime import CLASS_NAMES, IMAGE_SIZE

if TYPE_CHECKING:
    import keras

SEED_PARAMS = 107_598
"""Parameters as Keras counts them: 107,554 trainable plus 44 BatchNorm moving statistics."""


def build_model() -> keras.Model:
    """Build the uncompiled seed CNN.

    Input is a uint8-valued (N, 28, 28, 1) float tensor of raw 0–255 pixels; the first layer
    rescales to 0–1 so that the .tflite models take raw pixels too. Output is (N, 10) softmax
    probabilities in :data:`edge_runtime.CLASS_NAMES` order.

    Returns:
        Conv2D(6,5×5,relu,same) → BN → MaxPool 2 → Conv2D(16,5×5,relu,same) → BN → MaxPool 2 →
        Flatten → Dense 128 relu → Dropout .2 → Dense 32 relu → Dropout .2 → Dense 10 softmax.
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels"),
            layers.Rescaling(1.0 / 255.0, name="rescale"),
            layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16, 5, padding="same", activation="relu", name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="dense1"),
            layers.Dropout(0.2, name="drop1"),
            layers.Dense(32, activation="relu", name="dense2"),
            layers.Dropout(0.2, name="drop2"),
            layers.Dense(len(CLASS_NAMES), activation="softmax", name="probs"),
        ],
        name="fmnist_cnn",
    )


def answers(model: keras.Model, x: np.ndarray, *, mirror_average: bool) -> np.ndarray:
    """The model's answers (N, 10) for model input (N, 28, 28, 1), as the runtime gives them:
    its probabilities, averaged over each image and its mirror image with ``mirror_average``
    (:class:`edge_runtime.classifier.Classifier` does the same with a .tflite)."""
    probs = model.predict(x.astype(np.float32), batch_size=1000, verbose=0)
    if not mirror_average:
        return probs
    mirrored = model.predict(x[:, :, ::-1].astype(np.float32), batch_size=1000, verbose=0)
    return (probs + mirrored) / 2

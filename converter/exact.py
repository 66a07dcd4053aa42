"""An exact export-time rewrite of the seed network: the same float function, a graph that
quantizes far better.

The seed puts BatchNorm *after* the ReLU, so TFLite cannot fold it into the convolution; it
runs as an int8 MUL and ADD, and the ReLU's output is quantized with the range of the multiply
(6.5× coarser steps for conv1). With ``a = gamma / sqrt(var + eps)`` and ``c = beta - a·mean``
per channel, BN(relu(z)) = a·relu(z) + c, and for ``a > 0``:

- ``a·relu(z) = relu(a·z)``: ``a`` folds into the convolution's kernel and bias (ReLU is
  positively homogeneous);
- ``max_pool(y + c) = max_pool(y) + c``: the shift moves after the pooling;
- bn2's shift, after pool2 and flatten, folds into dense1's bias (``b += tile(c2, 49) @ W``,
  channels last);
- bn1's shift cannot cross conv2's zero padding exactly (the border would change), so it stays
  an explicit per-channel add: one int8 ADD instead of a MUL and an ADD.

Dropout is the identity at inference. The rewritten graph ends in logits (the softmax is applied
by the runtime), which keeps the last layer's int8 grid for the logits themselves.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.convert import ConvertError
from edge_runtime import INPUT_SHAPE

if TYPE_CHECKING:
    import keras

WEIGHTS = ("k1", "b1", "c1", "k2", "b2", "w3", "b3", "w4", "b4", "w5", "b5")
"""The rewritten graph's weights: conv1 (k1, b1), bn1's shift (c1), conv2 (k2, b2), dense1
(w3, b3), dense2 (w4, b4) and the logits layer (w5, b5)."""


def _batchnorm(layer: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNormalization layer as ``y = a·x + c`` per channel (float64)."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in layer.get_weights())
    a = gamma / np.sqrt(var + layer.epsilon)
    return a, beta - a * mean


def fold_batchnorm(model: keras.Model) -> dict[str, np.ndarray]:
    """The weights of the rewritten graph for a trained seed model (see the module docstring).

    Raises:
        ConvertError: Not the seed network, or a BatchNorm channel has a scale ≤ 0 (where ReLU
            does not commute with it).
    """
    layers = {layer.name: layer for layer in model.layers}
    expected = ("conv1", "bn1", "conv2", "bn2", "dense1", "dense2", "probs")
    missing = [name for name in expected if name not in layers]
    if missing:
        raise ConvertError(
            f"the int8 route rewrites the seed network, and this model lacks its layers "
            f"{', '.join(missing)}; convert it with --quantize int8-ptq"
        )
    a1, c1 = _batchnorm(layers["bn1"])
    a2, c2 = _batchnorm(layers["bn2"])
    bad = int(np.sum(a1 <= 0) + np.sum(a2 <= 0))
    if bad:
        raise ConvertError(
            f"{bad} BatchNorm channel(s) have a scale ≤ 0, so the exact rewrite does not apply; "
            "convert with --quantize int8-ptq"
        )
    k1, b1 = (np.asarray(w, np.float64) for w in layers["conv1"].get_weights())
    k2, b2 = (np.asarray(w, np.float64) for w in layers["conv2"].get_weights())
    w3, b3 = (np.asarray(w, np.float64) for w in layers["dense1"].get_weights())
    w4, b4 = (np.asarray(w, np.float64) for w in layers["dense2"].get_weights())
    w5, b5 = (np.asarray(w, np.float64) for w in layers["probs"].get_weights())
    pooled = w3.shape[0] // len(c2)  # 7 × 7 positions, each with bn2's channels
    return {
        "k1": k1 * a1,
        "b1": b1 * a1,
        "c1": c1,
        "k2": k2 * a2,
        "b2": b2 * a2,
        "w3": w3,
        "b3": b3 + np.tile(c2, pooled) @ w3,
        "w4": w4,
        "b4": b4,
        "w5": w5,
        "b5": b5,
    }


def build_rewritten(keras_module: ModuleType, weights: dict[str, np.ndarray]) -> Any:
    """The rewritten graph as a Keras functional model with ``weights``, logits out.

    Args:
        keras_module: ``keras`` (Keras 3) or ``tf_keras``: the quantization-aware training tools
            work only with the latter, so the same graph is built with either.
        weights: From :func:`fold_batchnorm`.

    Returns:
        A model from raw 0–255 pixels (N, 28, 28, 1) to logits (N, 10). Its layers are named
        ``rescale, conv1, pool1, bn1_shift, conv2, pool2, flatten, dense1, dense2, logits``.
    """
    layers = keras_module.layers

    class ChannelShift(layers.Layer):
        """``x + c`` per channel: the part of bn1 that cannot cross conv2's zero padding."""

        def __init__(self, shift: Any, **kwargs: Any) -> None:
            # **kwargs: Keras's layer protocol (name, dtype, trainable...) that clone_model and
            # quantize_apply round-trip through get_config().
            super().__init__(**kwargs)
            self.shift = np.asarray(shift, np.float32)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "shift": self.shift.tolist()}

        def build(self, input_shape: Any) -> None:
            self.c = self.add_weight(
                name="c",
                shape=self.shift.shape,
                initializer=keras_module.initializers.Constant(self.shift),
                trainable=False,
            )

        def call(self, x: Any) -> Any:
            return x + self.c

    def f32(name: str) -> np.ndarray:
        return np.asarray(weights[name], np.float32)

    pixels = keras_module.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(pixels)
    x = layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = ChannelShift(weights["c1"], name="bn1_shift")(x)
    x = layers.Conv2D(16, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense1")(x)
    x = layers.Dense(32, activation="relu", name="dense2")(x)
    logits = layers.Dense(10, name="logits")(x)
    model = keras_module.Model(pixels, logits, name="fmnist_cnn_rewritten")
    for layer, (kernel, bias) in {
        "conv1": ("k1", "b1"),
        "conv2": ("k2", "b2"),
        "dense1": ("w3", "b3"),
        "dense2": ("w4", "b4"),
        "logits": ("w5", "b5"),
    }.items():
        model.get_layer(layer).set_weights([f32(kernel), f32(bias)])
    return model


def check_same_function(
    original: keras.Model, rewritten: keras.Model, images: np.ndarray
) -> dict[str, float]:
    """Prove on ``images`` that the rewrite computes the original's function.

    Returns:
        ``max_abs_diff`` of the probabilities and ``argmax_identical`` (a share).

    Raises:
        ConvertError: The probabilities differ by more than float rounding. (An answer may
            still flip where two classes are tied to within that rounding.)
    """
    x = images.astype(np.float32)
    probs = original.predict(x, batch_size=1000, verbose=0)
    logits = rewritten.predict(x, batch_size=1000, verbose=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    rewritten_probs = e / e.sum(axis=1, keepdims=True)
    result = {
        "max_abs_diff": float(np.abs(rewritten_probs - probs).max()),
        "argmax_identical": float(np.mean(rewritten_probs.argmax(1) == probs.argmax(1))),
    }
    if result["max_abs_diff"] > 1e-4:
        raise ConvertError(f"the BatchNorm rewrite is not exact here: {result}")
    return result

"""The benchmark's peer: an ONNX graph built from the Keras weights computes the same function."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def with_batch_statistics(model, seed: int = 0):
    """``model`` with random BatchNormalization statistics (a fresh layer's are the identity, so
    a mistake in their order or epsilon would pass unseen)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            shape = layer.get_weights()[0].shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, shape),  # gamma
                    rng.normal(0, 0.5, shape),  # beta
                    rng.normal(0, 0.5, shape),  # moving mean
                    rng.uniform(0.5, 2, shape),  # moving variance
                ]
            )
    return model


def onnx_answers(model, x: np.ndarray) -> np.ndarray:
    import onnx
    import onnxruntime as ort

    from benchmarks.peer import onnx_graph

    proto = onnx_graph(model)
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"pixels": x})[0]


def test_the_seed_network_is_the_same_function():
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(1)
    model = with_batch_statistics(build_model())
    x = np.random.default_rng(2).integers(0, 256, (64, 28, 28, 1)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    got = onnx_answers(model, x)
    assert got.shape == (64, 10)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_valid_padding_strides_and_pools_follow_keras():
    """The tiny test fixture's shape of network: 'valid' convolutions, strides, 4×4 pools."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Rescaling(1 / 127.5, offset=-1),
            layers.Conv2D(4, 3, strides=2, activation="relu"),
            layers.Conv2D(5, 4, padding="same"),
            layers.MaxPooling2D(3, strides=2, padding="same"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    x = np.random.default_rng(4).integers(0, 256, (16, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(onnx_answers(model, x), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("AveragePooling2D", "no ONNX builder for a layer of type AveragePooling2D"),
        ("tanh", "no ONNX builder for activation 'tanh'"),
    ],
)
def test_a_layer_without_a_builder_is_refused(layer: str, message: str):
    import keras
    from keras import layers

    from benchmarks.peer import onnx_graph

    middle = (
        layers.AveragePooling2D(2)
        if layer == "AveragePooling2D"
        else layers.Dense(4, activation=layer)
    )
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), middle, layers.Flatten()])
    with pytest.raises(ValueError, match=message):
        onnx_graph(model)

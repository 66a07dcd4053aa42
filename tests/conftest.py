"""Shared fixtures (helpers that are not fixtures live in :mod:`tests.helpers`). Tests marked
``slow`` need TensorFlow; ``dataset`` tests need the real data.

A missing dataset is a failure, never a skip: ``make test`` installs it first.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import TINY_INT8, scene, unavailable


@pytest.fixture(scope="module")
def two_classes(dataset) -> list[np.ndarray]:
    """Two test images of different classes that the tiny fixture model gets right with the
    most confidence when it sees them as camera scenes (:func:`tests.helpers.scene`): scenes
    whose label must visibly change."""
    from edge_runtime.classifier import Classifier
    from edge_runtime.preprocess import model_input

    scenes = model_input([scene(item) for item in dataset.x_test[:300]])
    probs = Classifier.from_file(TINY_INT8).probabilities(scenes)
    picked: dict[int, np.ndarray] = {}
    for i in np.argsort(-probs.max(axis=1)):
        label = int(probs[i].argmax())
        if label == dataset.y_test[i]:
            picked.setdefault(label, dataset.x_test[i])
        if len(picked) == 2:
            return list(picked.values())
    raise AssertionError("the fixture model is not confident on two classes")


@pytest.fixture(scope="session")
def dataset():
    """The real, verified Fashion-MNIST. Fails (never skips) when it is missing."""
    from trainer.data import DataError, load_data

    try:
        return load_data(allow_download=False)
    except DataError as e:
        unavailable(f"real dataset not installed (run `make data`): {e}")


@pytest.fixture(scope="session")
def tiny_keras(dataset, tmp_path_factory):
    """A tiny CNN (tests.fixtures.make_fixtures.build_tiny) trained 2 epochs on 10,000 real
    images and saved as .keras: ``(model, path)``. Shared by the converter and bench tests."""
    import keras
    import numpy as np

    from edge_runtime.preprocess import model_input
    from tests.fixtures.make_fixtures import build_tiny
    from trainer.train import save_model

    keras.utils.set_random_seed(0)
    model = build_tiny()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(
        model_input(dataset.x_train[:10000]).astype(np.float32),
        dataset.y_train[:10000],
        epochs=2,
        batch_size=64,
        verbose=0,
    )
    path = tmp_path_factory.mktemp("tiny") / "model.keras"
    save_model(model, path)
    return model, path

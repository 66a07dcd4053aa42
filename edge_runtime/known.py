"""Known images: a few labelled Fashion-MNIST test images the runtime carries, to check a model
before it serves (:mod:`edge_runtime.serve.models` runs a swapped-in model on them).

The converter records each model's accuracy on them in its sidecar (``known_images``); a model
offered later must score within :data:`BAND` of what its own sidecar recorded, which catches a
model that is damaged, mismatched with its sidecar, or of a different kind than it claims. The
file is ``edge_runtime/data/known_images.npz`` (images uint8 (N, 28, 28), labels uint8 (N,));
``python -m trainer.known_images`` derives it from the verified test set (see its README).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runtime.preprocess import model_input

if TYPE_CHECKING:
    from edge_runtime.classifier import Classifier

PATH = Path(__file__).parent / "data" / "known_images.npz"
BAND = 0.03
"""How far (absolute, 0–1) a model's accuracy on the known images may be from its sidecar's
record: the two runtimes of one model differ by a few images at most here."""


@functools.cache
def known_images() -> tuple[np.ndarray, np.ndarray, str]:
    """``(model input uint8 (N, 28, 28, 1), labels (N,), SHA-256 of the file)``."""
    data = PATH.read_bytes()
    with np.load(PATH) as npz:
        return model_input(npz["images"]), npz["labels"], hashlib.sha256(data).hexdigest()


def accuracy(classifier: Classifier) -> float:
    """The share of the known images ``classifier`` gets right."""
    x, y, _ = known_images()
    return float(np.mean(classifier.predict_classes(x) == y))


def record(classifier: Classifier) -> dict[str, Any]:
    """The sidecar's ``known_images`` entry for ``classifier``."""
    x, _, sha = known_images()
    return {"count": len(x), "sha256": sha, "accuracy": round(accuracy(classifier), 4)}

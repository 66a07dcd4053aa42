"""Derive ``edge_runtime/data/known_images.npz`` from the verified Fashion-MNIST test set.

    python -m trainer.known_images

:data:`PER_CLASS` test images of each class, drawn stratified with seed 0 (the file's README says
the same). Fashion-MNIST is © Zalando SE, MIT licence; these 200 images are a subset of it.
"""

from __future__ import annotations

import io

import numpy as np

from edge_runtime.atomic import write_bytes
from edge_runtime.known import PATH
from trainer.data import load_data, stratified_indices

PER_CLASS = 20


def derive() -> bytes:
    """The file's bytes: the same for the same dataset, every time."""
    data = load_data()
    picked = stratified_indices(data.y_test, PER_CLASS * 10, seed=0)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, images=data.x_test[picked], labels=data.y_test[picked], indices=picked
    )
    return buffer.getvalue()


if __name__ == "__main__":
    write_bytes(PATH, derive())
    print(f"wrote {PATH}")

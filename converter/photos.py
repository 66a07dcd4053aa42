"""The real photos the converter calibrates, fine-tunes and checks each model with.

The same vendored collection the trainer learns from (:mod:`trainer.photos`), split the same
way: the training photos (less their held-out share) go into the int8 model's calibration set
and its quantization-aware fine-tuning, so that it is tuned on what it will meet; the held-out
share calibrates each model's own "not sure" threshold; the validation split is what each
model is scored on (its sidecar's ``photos``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.photos import Photo, score, shown_answers
from trainer import photos as real
from trainer.data import stratified_indices

CALIBRATION_PHOTOS = 200
"""Training photos (stratified by folder) added to the int8 calibration set."""
FINE_TUNING_COPIES = 2
"""Examples of each training photo (itself and an augmented copy, balanced by folder) in the
quantization-aware fine-tuning."""


@dataclass(frozen=True)
class PhotoReference:
    """The photos every model is made with and checked on, as model input.

    Attributes:
        train: The training photos (the collection's training split less its held-out share).
        held_out: The held-out share, which calibrates each model's threshold.
        validation: The validation split, which each model is scored on.
        x_held_out, x_validation: Those as model input (uint8 N×28×28×1).
        float_validation: The float Keras model's answers (N, 10) on the validation photos.
        float_not_sure_below: The float model's own threshold, calibrated on the held-out photos.
    """

    train: list[Photo]
    held_out: list[Photo]
    validation: list[Photo]
    x_held_out: np.ndarray
    x_validation: np.ndarray
    float_validation: np.ndarray
    float_not_sure_below: float

    @property
    def images(self) -> np.ndarray:
        """What each model runs on besides the test set: validation then held-out photos."""
        return np.concatenate([self.x_validation, self.x_held_out])


def load_photos(answers: Any) -> PhotoReference:
    """The collection's photos, split as the trainer splits them.

    Args:
        answers: The float model's answers for model input (a function).

    Raises:
        PhotosMissing: The repository's vendored photos are not there.
    """
    train, held_out = real.calibration_split(real.collection_split("train"))
    validation = real.collection_split("validation")
    x_validation, x_held_out = real.photo_inputs(validation), real.photo_inputs(held_out)
    return PhotoReference(
        train=train,
        held_out=held_out,
        validation=validation,
        x_held_out=x_held_out,
        x_validation=x_validation,
        float_validation=answers(x_validation),
        float_not_sure_below=real.not_sure_threshold(held_out, answers(x_held_out)),
    )


def calibration_photos(photos: PhotoReference) -> np.ndarray:
    """:data:`CALIBRATION_PHOTOS` training photos (stratified by folder) as model input."""
    folders = np.array([p.folder.name for p in photos.train])
    codes = np.unique(folders, return_inverse=True)[1]
    picked = stratified_indices(codes, min(CALIBRATION_PHOTOS, len(codes)), seed=0)
    return real.photo_inputs([photos.train[i] for i in picked])


def fine_tuning_photos(photos: PhotoReference, *, seed: int = 0) -> np.ndarray:
    """The training photos and augmented copies of them, as model input (N, 28, 28, 1)."""
    x, _ = real.photo_examples(photos.train, copies=FINE_TUNING_COPIES, seed=seed)
    return x[..., np.newaxis]


def photo_record(answers: np.ndarray, photos: PhotoReference) -> dict[str, Any]:
    """A model's sidecar ``photos``: its threshold calibrated on the held-out photos, and its
    scores and agreement with the float model on the validation photos: of the best class
    (``agreement_with_float``), and of the answer shown, a class or "not sure", each model
    with its own threshold (``shown_agreement_with_float``).

    Args:
        answers: Its answers (N, 10) on :attr:`PhotoReference.images`, in that order.
    """
    n = len(photos.validation)
    validation, held_out = answers[:n], answers[n:]
    threshold = real.not_sure_threshold(photos.held_out, held_out)
    scores = score([p.folder for p in photos.validation], validation, not_sure_below=threshold)
    agreement = float(np.mean(validation.argmax(1) == photos.float_validation.argmax(1)))
    shown = shown_answers(validation, threshold) == shown_answers(
        photos.float_validation, photos.float_not_sure_below
    )
    return {
        "not_sure_below": threshold,
        "validation": scores.to_json(),
        "worst_folder": min(scores.per_folder.values()),
        "agreement_with_float": agreement,
        "shown_agreement_with_float": float(np.mean(shown)),
        "photos": {"validation": n, "held_out": len(photos.held_out)},
    }

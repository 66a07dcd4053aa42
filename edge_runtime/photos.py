"""Labelled photos in class folders, and the scores a model gets on them.

The layout is the real-photo collection's (``data/real-photos/train/shirt/….jpg``), which is
also where the server files labelled captures (``DIR/labelled/shirt/<id>/frame.jpg``): a folder
per :data:`edge_runtime.vocab.PHOTO_FOLDERS` name, holding photos or capture folders.

Scores, as the collection defines them, over the photos of folders with a class:

- **strict**: the share whose answer is one of the folder's right classes;
- **family**: the share whose answer is of the folder's coarse kind (top, trouser, ...);
- **per folder**: each folder's strict share;

and, with a threshold, the shares answered "not sure" among those photos and among the photos
of folders with no class (skirts, shorts, hats), for which "not sure" is the honest answer.
The answer is the best class (what ``classify --json`` gives as ``label``/``class_id``);
``strict_answered`` also counts a "not sure" as wrong.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.preprocess import image_files
from edge_runtime.vocab import FAMILY_OF_CLASS, PHOTO_FOLDERS, PhotoFolder

CAPTURE_FRAME, CAPTURE_RECORD = "frame.jpg", "capture.json"
"""How a capture folder holds its photo (see :mod:`edge_runtime.captures`)."""


class PhotoError(ValueError):
    """A folder of photos that cannot be read as labelled photos. ``str()`` is one line."""


@dataclass(frozen=True)
class Photo:
    """A photo and the folder (label) it is filed under."""

    path: Path
    folder: PhotoFolder


def labelled_photos(root: str | os.PathLike[str]) -> list[Photo]:
    """Every labelled photo under ``root``: ``root/<photo folder>/<image>`` and labelled
    captures ``root/<photo folder>/<id>/frame.jpg``, sorted by folder and name.

    Raises:
        PhotoError: ``root`` is not a folder, has folders of no known name, or no photo.
    """
    root = Path(root)
    if not root.is_dir():
        raise PhotoError(f"{root}: not a folder of labelled photos")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name not in PHOTO_FOLDERS]
    if unknown:
        raise PhotoError(
            f"{root}: folders {', '.join(unknown)} are not photo folders; "
            f"use {', '.join(PHOTO_FOLDERS)}"
        )
    photos = []
    for folder in folders:
        label = PHOTO_FOLDERS[folder.name]
        photos += [Photo(p, label) for p in image_files(folder)]
        captures = sorted(d for d in folder.iterdir() if (d / CAPTURE_RECORD).is_file())
        photos += [Photo(d / CAPTURE_FRAME, label) for d in captures]
    if not photos:
        raise PhotoError(f"{root}: no photos in its folders")
    return photos


@dataclass(frozen=True, kw_only=True)
class PhotoScores:
    """A model's answers on a set of labelled photos (see the module docstring).

    Attributes:
        mapped: Photos of folders with a class (the ones strict and family count).
        unmapped: Photos of folders with none.
        strict, family: Shares of the mapped photos (0–1).
        per_folder: Strict share of each mapped folder.
        not_sure_below: The threshold used, or None.
        not_sure_mapped, not_sure_unmapped: Shares answered "not sure" (None without a
            threshold, or without photos of that kind).
        strict_answered: Like strict, with every "not sure" counted wrong.
    """

    mapped: int
    unmapped: int
    strict: float
    family: float
    per_folder: dict[str, float]
    not_sure_below: float | None = None
    not_sure_mapped: float | None = None
    not_sure_unmapped: float | None = None
    strict_answered: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhotoScores:
        return cls(**data)


def right_classes(folders: Sequence[PhotoFolder]) -> np.ndarray:
    """A (N, 10) boolean mask: the classes that count as right for each photo's folder."""
    mask = np.zeros((len(folders), len(FAMILY_OF_CLASS)), bool)
    for i, folder in enumerate(folders):
        mask[i, list(folder.strict)] = True
    return mask


def shown_answers(probs: np.ndarray, not_sure_below: float) -> np.ndarray:
    """The answers a user is shown for probabilities (N, 10): the best class's id, or -1 for
    "not sure" (best score below ``not_sure_below``, the rule
    :meth:`edge_runtime.classifier.Classifier.prediction` applies to one image)."""
    probs = np.asarray(probs)
    return np.where(probs.max(1) < not_sure_below, -1, probs.argmax(1))


def score(
    folders: Sequence[PhotoFolder], probs: np.ndarray, *, not_sure_below: float | None = None
) -> PhotoScores:
    """Score a model's probabilities (N, 10) on photos filed under ``folders``.

    Raises:
        PhotoError: No photo of a folder with a class.
    """
    probs = np.asarray(probs)
    answer = probs.argmax(1)
    mapped = np.array([bool(f.strict) for f in folders])
    if not mapped.any():
        raise PhotoError("no photo of a folder with a class to score")
    strict = right_classes(folders)[np.arange(len(answer)), answer]
    family = np.array(
        [FAMILY_OF_CLASS[a] == f.family for a, f in zip(answer, folders, strict=True)]
    )
    names = np.array([f.name for f in folders])
    per_folder = {
        name: float(strict[names == name].mean())
        for name in PHOTO_FOLDERS
        if PHOTO_FOLDERS[name].strict and (names == name).any()
    }
    scores = {
        "mapped": int(mapped.sum()),
        "unmapped": int((~mapped).sum()),
        "strict": float(strict[mapped].mean()),
        "family": float(family[mapped].mean()),
        "per_folder": per_folder,
    }
    if not_sure_below is not None:
        unsure = shown_answers(probs, not_sure_below) < 0
        scores |= {
            "not_sure_below": not_sure_below,
            "not_sure_mapped": float(unsure[mapped].mean()),
            "not_sure_unmapped": float(unsure[~mapped].mean()) if (~mapped).any() else None,
            "strict_answered": float((strict & ~unsure)[mapped].mean()),
        }
    return PhotoScores(**scores)


def calibrate_threshold(best_scores: np.ndarray, *, reject: float) -> float:
    """The threshold below which a share ``reject`` of these (mapped, held-out) photos' best
    scores fall: the "not sure" threshold that turns away that share of the photos a model
    should answer."""
    return round(float(np.quantile(np.asarray(best_scores, np.float64), reject)), 4)

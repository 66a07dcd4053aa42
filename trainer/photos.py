"""Real photos in training: what the camera sees, mixed into Fashion-MNIST.

The photos are the vendored copy of the real-photo collection (``data/real-photos``), plus any
folders of labelled photos given with ``--photos`` (the device's labelled captures). Each photo
becomes a few training examples: itself and augmented versions of it (crops, zoom-out, small
rotations, flips, light, colour, blur, noise, JPEG), every one made into model input by
:func:`edge_runtime.preprocess.model_input`, the path the Pi runs. Folders with few photos get
more copies, so that no kind is drowned out.

Targets are sets: a photo of a long-sleeved top is right as Pullover or Shirt, a pair of shoes
as any footwear (the collection's ``strict`` classes). Photos of garments with no class
(skirts, shorts, hats) teach the model to be unsure: their target is the uniform distribution
(outlier exposure), never an eleventh class. Targets are rows of :data:`TARGET_WIDTH`: the
mask of right classes, a flag for "no class", and the example's weight.

A share of the collection's training split (:data:`CALIBRATION_SHARE`, stratified) is held out
of training: the "not sure" threshold is calibrated on it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import CLASS_NAMES
from edge_runtime.photos import Photo, PhotoError, calibrate_threshold, labelled_photos
from edge_runtime.preprocess import load_image, model_input, to_rgb

COLLECTION = Path(__file__).resolve().parents[1] / "data" / "real-photos"
"""The vendored copy of the real-photo collection (see its README)."""
CALIBRATION_SHARE = 0.1
"""Share of each folder of the collection's training split held out to calibrate the threshold."""
NOT_SURE_REJECTS = 0.07
"""The threshold is set so that this share of the held-out photos with a class is "not sure":
under the 10% a user may be turned away, because photos the model has not seen come out a
little less sure than the held-out ones. It was chosen with the validation split's figures for
other shares in view (the README says so beside the figures)."""
TARGET_WIDTH = len(CLASS_NAMES) + 2
"""A target row: the right classes (10), the "no class" flag, the example's weight."""


class PhotosMissing(PhotoError, FileNotFoundError):
    """The vendored photos are not where the repository keeps them. ``str()`` is one line."""


def collection_split(split: str) -> list[Photo]:
    """The vendored collection's ``train`` or ``validation`` photos.

    Raises:
        PhotosMissing: The repository's ``data/real-photos`` is not there.
    """
    folder = COLLECTION / split
    if not folder.is_dir():
        raise PhotosMissing(
            f"{folder} is missing: the vendored real photos come with the repository "
            "(data/real-photos; derive.py there makes them from the original collection)"
        )
    return labelled_photos(folder)


def calibration_split(photos: Sequence[Photo], *, seed: int = 0) -> tuple[list[Photo], list[Photo]]:
    """Split photos into (training, held out) by folder, :data:`CALIBRATION_SHARE` held out."""
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    names = np.array([p.folder.name for p in photos])
    for name in dict.fromkeys(names):
        members = rng.permutation(np.flatnonzero(names == name))
        held.update(members[: int(round(CALIBRATION_SHARE * len(members)))].tolist())
    train = [p for i, p in enumerate(photos) if i not in held]
    return train, [p for i, p in enumerate(photos) if i in held]


def target(photo: Photo, weight: float = 1.0) -> np.ndarray:
    """The target row of a photo (see the module docstring)."""
    row = np.zeros(TARGET_WIDTH, np.float32)
    if photo.folder.strict:
        row[list(photo.folder.strict)] = 1.0
    else:
        row[: len(CLASS_NAMES)] = 1.0
        row[len(CLASS_NAMES)] = 1.0
    row[-1] = weight
    return row


def class_targets(labels: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Target rows of Fashion-MNIST images: one right class each."""
    rows = np.zeros((len(labels), TARGET_WIDTH), np.float32)
    rows[np.arange(len(labels)), labels] = 1.0
    rows[:, -1] = weight
    return rows


def augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An augmented copy of an RGB photo, made before preprocessing: a random crop or a
    zoom-out that shows more of the floor (as a camera further away would), a small rotation,
    a mirror image, light and colour cast, gamma, noise, blur, JPEG re-encoding."""
    h, w = rgb.shape[:2]
    image = rgb
    kind = rng.random()
    if kind < 0.35:
        share = rng.uniform(0.8, 1.0)
        ch, cw = int(h * rng.uniform(share, 1.0)), int(w * rng.uniform(share, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        image = image[y : y + ch, x : x + cw]
    elif kind < 0.7:
        ph, pw = int(h * rng.uniform(0, 0.25)), int(w * rng.uniform(0, 0.6))
        top, left = rng.integers(0, ph + 1), rng.integers(0, pw + 1)
        image = cv2.copyMakeBorder(image, top, ph - top, left, pw - left, cv2.BORDER_REPLICATE)
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        turn = cv2.getRotationMatrix2D(
            (w / 2, h / 2), rng.uniform(-12, 12), rng.uniform(0.95, 1.05)
        )
        image = cv2.warpAffine(
            image, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    if rng.random() < 0.5:
        image = image[:, ::-1]
    f = image.astype(np.float32)
    if rng.random() < 0.8:
        mean = f.mean()
        f = (f - mean) * rng.uniform(0.7, 1.25) + mean * rng.uniform(0.6, 1.3)
        f = f * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    if rng.random() < 0.3:
        f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** rng.uniform(0.7, 1.5)
    if rng.random() < 0.2:
        f = f + rng.normal(0, rng.uniform(2, 8), f.shape).astype(np.float32)
    image = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        image = cv2.GaussianBlur(image, (k, k), 0)
    if rng.random() < 0.3:
        quality = int(rng.integers(60, 95))
        ok, data = cv2.imencode(
            ".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(image)


def copies_per_folder(photos: Sequence[Photo], copies: int) -> dict[str, int]:
    """Examples per photo of each folder: ``copies`` for a folder of average size, more for
    smaller folders and fewer for larger ones (between half and three times ``copies``)."""
    counts = Counter(p.folder for p in photos)
    with_class = [n for folder, n in counts.items() if folder.strict]
    average = float(np.mean(with_class)) if with_class else 1.0
    low, high = max(2, copies // 2), 3 * copies
    return {f.name: int(np.clip(round(copies * average / n), low, high)) for f, n in counts.items()}


@dataclass(frozen=True)
class _Job:
    path: str
    copies: int
    seed: tuple[int, ...]


def _examples(job: _Job) -> np.ndarray:
    """The model inputs of one photo: copy 0 as it is, the others augmented (a worker's task)."""
    rgb = to_rgb(load_image(job.path))
    images = [rgb] + [
        augment(rgb, np.random.default_rng([*job.seed, k])) for k in range(1, job.copies)
    ]
    return model_input(images)[..., 0]


def photo_examples(
    photos: Sequence[Photo],
    *,
    copies: int,
    seed: int,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training examples of ``photos``: model input uint8 (N, 28, 28) and target rows (N, 12).

    Made in worker processes (spawned, so that they never share TensorFlow's state), one task
    per photo; the result is the same whatever the number of workers.

    Args:
        photos: Labelled photos.
        copies: Examples per photo of a folder of average size (see :func:`copies_per_folder`);
            1 means the photos themselves, unaugmented.
        seed: Seeds every augmentation (with the photo's index and the copy's).
        workers: Processes (None: one per core).
    """
    per = copies_per_folder(photos, copies) if copies > 1 else {p.folder.name: 1 for p in photos}
    jobs = [_Job(str(p.path), per[p.folder.name], (seed, i)) for i, p in enumerate(photos)]
    print(f"Preprocessing {sum(j.copies for j in jobs):,} examples of {len(photos):,} photos",
          file=sys.stderr, flush=True)  # fmt: skip
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 50:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            made = list(pool.map(_examples, jobs, chunksize=32))
    else:
        made = [_examples(job) for job in jobs]
    x = np.concatenate(made) if made else np.zeros((0, 28, 28), np.uint8)
    y = np.concatenate(
        [np.repeat(target(p)[None], j.copies, 0) for p, j in zip(photos, jobs, strict=True)]
    )
    return x, y


def not_sure_threshold(held_out: Sequence[Photo], probs: np.ndarray) -> float:
    """A model's "not sure" threshold from its answers (N, 10) on the held-out photos: the best
    score below which :data:`NOT_SURE_REJECTS` of those of a class fall."""
    mapped = np.array([bool(p.folder.strict) for p in held_out])
    return calibrate_threshold(np.asarray(probs).max(1)[mapped], reject=NOT_SURE_REJECTS)


def photo_inputs(photos: Sequence[Photo]) -> np.ndarray:
    """The photos themselves as model input (N, 28, 28, 1), as ``classify`` would see them."""
    return model_input(load_image(p.path) for p in photos)

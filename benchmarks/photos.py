"""The real-photo measurements of ``fmnist-bench``: every variant on every Pi runtime, on the
vendored validation photos, through the path ``fmnist-edge classify`` runs (decode, find the
garment, answer); and a camera clip made of those photos.

- Scores: strict, family, per folder and the "not sure" shares with each model's own threshold
  (:func:`edge_runtime.photos.score`).
- Time: one 400×534 JPEG (the collection's size; each validation photo enlarged to it), from
  its bytes to the answer, one thread, per photo after warm-up.
- Camera: :func:`camera_clip` shows each validation photo in a 640×480 frame for half a second
  of a 30 FPS MJPEG video; the frame loop (:func:`edge_runtime.webcam.classify_frames`) runs
  over it, and a garment counts as right when the majority of its frames' answers is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_runtime.photos import Photo, score
from edge_runtime.vocab import FAMILY_OF_CLASS

PHOTO_SIZE = (400, 534)
"""Width × height of the timed photos: the collection's originals' usual size."""
CAMERA_SIZE = (640, 480)
CAMERA_FPS = 30
HOLD_FRAMES = 15
"""Frames each photo is held for in the camera clip: half a second at :data:`CAMERA_FPS`."""


def enlarged_photos(photos: Sequence[Photo], folder: Path) -> list[Path]:
    """Each photo as a 400×534 (or 534×400) JPEG of quality 90, as a phone would hand it in."""
    paths = []
    for i, photo in enumerate(photos):
        with Image.open(photo.path) as image:
            rgb = image.convert("RGB")
        size = PHOTO_SIZE if rgb.height >= rgb.width else PHOTO_SIZE[::-1]
        path = folder / f"{i:04d}.jpg"
        rgb.resize(size, Image.Resampling.LANCZOS).save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def camera_frame(rgb: np.ndarray, size: tuple[int, int] = CAMERA_SIZE) -> np.ndarray:
    """A photo (RGB) shown in a W×H camera frame: fitted inside, centred, black around it."""
    width, height = size
    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = np.asarray(Image.fromarray(rgb).resize(new, Image.Resampling.LANCZOS))
    frame = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new[1]) // 2, (width - new[0]) // 2
    frame[top : top + new[1], left : left + new[0]] = fitted
    return frame


def camera_clip(photos: Sequence[Photo], path: Path) -> Path:
    """The camera clip: each photo held for :data:`HOLD_FRAMES` frames of an MJPEG video."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), CAMERA_FPS, CAMERA_SIZE)
    for photo in photos:
        with Image.open(photo.path) as image:
            frame = camera_frame(np.asarray(image.convert("RGB")))
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        for _ in range(HOLD_FRAMES):
            writer.write(bgr)
    writer.release()
    return path


def majority_answers(answers: Sequence[int], *, hold: int = HOLD_FRAMES) -> np.ndarray:
    """The answer most frames of each held photo gave (ties: the earliest answer)."""
    held = [answers[i : i + hold] for i in range(0, len(answers), hold)]
    return np.array([Counter(frames).most_common(1)[0][0] for frames in held])


def camera_scores(photos: Sequence[Photo], answers: Sequence[int]) -> dict[str, Any]:
    """The share of the clip's garments (with a class) whose majority answer is right, by folder
    too, from each frame's answer."""
    majority = majority_answers(answers)
    if len(majority) != len(photos):
        raise ValueError(
            f"the clip gave {len(majority)} garments' answers for {len(photos)} photos"
        )
    # Each garment's majority answer, scored as a photo's answer is.
    scores = score([p.folder for p in photos], np.eye(len(FAMILY_OF_CLASS))[majority])
    return {"majority_right": scores.strict, "garments": scores.mapped, "frames": len(answers),
            "per_folder": scores.per_folder}  # fmt: skip


def photo_scores(photos: Sequence[Photo], probs: np.ndarray, threshold: float | None) -> dict:
    """:func:`edge_runtime.photos.score` as JSON, with the worst folder beside it."""
    scores = score([p.folder for p in photos], probs, not_sure_below=threshold).to_json()
    return {**scores, "worst_folder": min(scores["per_folder"].values())}

"""Derive this folder's compact copy of the real-photo collection from the original photos.

    python data/real-photos/derive.py SOURCE

SOURCE is the collection as published (``train/``, ``validation/`` and ``classes.json``; its
held-out test split is never read). Each photo is decoded with its EXIF orientation applied,
reduced so that its longer side is :data:`LONG_SIDE` pixels (Lanczos), and saved as a baseline
JPEG of quality :data:`QUALITY` under the same split, folder and name. The output is the same
for the same input, so the copy can be checked against its source.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

LONG_SIDE = 160
"""Pixels of the longer side: the preprocessing works at 128 px or less, so nothing it uses is
lost, and the whole collection fits in about 15 MB."""
QUALITY = 80
SPLITS = ("train", "validation")
HERE = Path(__file__).parent


def derive_photo(source: Path, target: Path) -> None:
    with Image.open(source) as image:
        image.draft("RGB", (2 * LONG_SIDE, 2 * LONG_SIDE))  # decode at a reduced scale
        small = ImageOps.exif_transpose(image).convert("RGB")
    small.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    small.save(target, format="JPEG", quality=QUALITY, optimize=True)


def derive(source: Path, out: Path = HERE) -> int:
    """Write the copy of ``source`` under ``out``; returns the number of photos."""
    count = 0
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        for photo in sorted((source / split).glob("*/*.jpg")):
            derive_photo(photo, out / split / photo.parent.name / photo.name)
            count += 1
    shutil.copy(source / "classes.json", out / "classes.json")
    return count


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "train").is_dir():
        sys.exit(__doc__)
    print(f"{derive(Path(sys.argv[1]))} photos derived into {HERE}")

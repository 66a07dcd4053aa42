"""The one preprocessing path: any image in, the model's 28×28 uint8 input out.

Trainer, converter calibration and the edge runtime all call :func:`model_input`, so the pixels
a model is trained, calibrated and run on are made by the same code. Rescaling to 0–1 happens
inside the model (a ``Rescaling`` layer), so the model input is raw 0–255 pixels.

A photo is treated the way Fashion-MNIST was made from product photos (Xiao et al. 2017):
greyscale, negate a light background so the item is light on black, trim the background, resize
the longest edge to 28 keeping the aspect ratio, and centre on a 28×28 canvas. An image that
already looks like Fashion-MNIST (28×28 with a dark background) passes through unchanged.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge_runtime import IMAGE_SIZE

MAX_PIXELS = 40_000_000
"""Refuse images with more pixels than this (a decompression-bomb guard; Pillow's own is 89 M)."""

WORK_SIZE = 448
"""Large images are reduced to at most this many pixels per side before trimming: the output is
28 px, and working on 12 MP would cost ~100 ms for nothing."""

FOREGROUND_THRESHOLD = 24
"""A pixel is part of the item when it is this much brighter than the background (0–255)."""


class ImageError(ValueError):
    """An input image that cannot be used. ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file, apply its EXIF orientation and decode its first frame.

    Args:
        path: An image file in any format Pillow reads (PNG, JPEG, GIF, BMP, TIFF, WebP, ...).

    Returns:
        A fully loaded Pillow image in its own mode (RGB, RGBA, L, I;16, CMYK, P, ...).

    Raises:
        ImageError: The file is missing, a directory, empty, not an image, truncated, corrupt,
            or has more than :data:`MAX_PIXELS` pixels.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageError(path, "is a directory, not an image file")
        if path.stat().st_size == 0:
            raise ImageError(path, "empty file")
        with open(path, "rb") as f:
            return _decode(f, path)
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None


def image_suffixes() -> set[str]:
    """The file extensions Pillow reads (``.jpg``, ``.png``, ...), lower case."""
    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly in ``folder`` (by extension), sorted by name."""
    suffixes = image_suffixes()
    return sorted(c for c in Path(folder).iterdir() if c.is_file() and c.suffix.lower() in suffixes)


def decode_image(data: bytes, name: str) -> Image.Image:
    """Decode an image held in memory (an upload), with every check of :func:`load_image`.

    Args:
        data: The encoded file's bytes.
        name: What to call the image in errors (an upload's file name; never opened).

    Raises:
        ImageError: Empty, not an image, truncated, corrupt, or too many pixels.
    """
    if not data:
        raise ImageError(name, "empty file")
    return _decode(io.BytesIO(data), name)


def _first_frame(fp: BinaryIO, name: str | os.PathLike[str]) -> Image.Image:
    """Open, check the size of, and decode the first frame (errors: see :func:`_decode`)."""
    with Image.open(fp) as img:
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                name,
                f"{width}x{height} is {width * height:,} pixels, more than the "
                f"{MAX_PIXELS:,} allowed (possible decompression bomb)",
            )
        img.seek(0)  # animated GIF/WebP/TIFF: the first frame
        if img.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: the output is 28 px anyway.
            img.draft(img.mode, (WORK_SIZE, WORK_SIZE))
        img.load()
        return ImageOps.exif_transpose(img)


def _decode(fp: BinaryIO, name: str | os.PathLike[str]) -> Image.Image:
    """Decode the first frame of an open image file and apply its EXIF orientation."""
    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 MP at open() (our own, lower cap below decides instead) and
            # about odd tags of damaged files; what matters reaches the caller as ImageError.
            warnings.simplefilter("ignore")
            return _first_frame(fp, name)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(name, "not an image (unrecognised format)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(name, f"refused as a decompression bomb: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError/ValueError/EOFError.
        raise ImageError(name, f"truncated or corrupt image ({e})") from None
    except Exception as e:  # noqa: BLE001 - untrusted bytes: a plugin may raise anything
        # Format plugins fed hostile bytes also raise struct.error, IndexError, KeyError,
        # ZeroDivisionError...: all of them mean the same thing to the caller.
        raise ImageError(name, f"corrupt image ({type(e).__name__}: {e})") from None


def to_grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """Convert an image of any mode to an 8-bit greyscale array.

    Transparent pixels are composited over white (a product shot's background). 16- and 32-bit
    integer images are scaled to 8 bits; float images are read as 0–1 when their maximum is ≤ 1,
    else as 0–255.

    Args:
        image: A Pillow image of any mode, or a uint8 array of shape (H, W) or (H, W, 3) in
            **RGB** order. Callers holding OpenCV frames (BGR) must convert them first.

    Returns:
        A uint8 array of shape (H, W).
    """
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                f"expected a uint8 (H, W) or (H, W, 3) array, got {image.dtype} {image.shape}"
            )
        if image.ndim == 2:
            return image
        if image.shape[2] != 3:
            raise ValueError(f"expected 3 channels (RGB), got {image.shape[2]}")
        image = Image.fromarray(image)  # (H, W, 3) uint8 → mode RGB

    mode = image.mode
    if mode == "LAB":
        # Pillow converts LAB to nothing else; its L channel is the lightness, 0–255.
        return np.asarray(image.getchannel("L"))
    if mode == "La":
        # Premultiplied alpha: Pillow converts it only to LA, composited below like LA.
        image, mode = image.convert("LA"), "LA"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(image).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(a * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
    if mode == "F":
        a = np.asarray(image, dtype=np.float64)
        a = a * 255.0 if a.max() <= 1.0 else a
        return np.clip(a + 0.5, 0, 255).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    # Pillow's L uses ITU-R 601-2 luma; CMYK, YCbCr, P, 1 and RGB all convert through it.
    return np.asarray(image.convert("L"))


def _border_median(grey: np.ndarray) -> int:
    """The median of the outermost rows and columns, rounded down (``int(np.median(...))``,
    computed by a sort: np.median costs 13 µs on these ~100 values, which is felt at 2,000
    requests a second)."""
    border = np.sort(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    middle = border.size // 2
    if border.size % 2:
        return int(border[middle])
    return (int(border[middle - 1]) + int(border[middle])) // 2


def preprocess(image: Image.Image | np.ndarray) -> np.ndarray:
    """Turn one image into the model's input pixels, the way Fashion-MNIST was made.

    Steps: greyscale; if the border is light, negate so the item is light on black; subtract the
    background level; trim to the item's bounding box; resize the longest edge to 28 px keeping
    the aspect ratio; centre on a black 28×28 canvas. A 28×28 image with a dark border is
    returned unchanged, so Fashion-MNIST images themselves pass through bit for bit. An image
    with no item (all white, all black, 1×1) becomes an all-black canvas.

    Args:
        image: A Pillow image of any mode, or a uint8 array (H, W) or (H, W, 3) in RGB order.

    Returns:
        A uint8 array of shape (28, 28), values 0–255, item light on black.
    """
    if (
        isinstance(image, Image.Image)
        and max(image.size) > WORK_SIZE
        and image.mode in ("RGB", "L")
    ):
        # Reduce before anything else, 448 px being plenty to trim on: grey first (the same
        # ITU-R 601 luma as below, and a third of the data to average), then a box filter.
        image = image.convert("L")
        image.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)
    grey = to_grayscale(image)
    background = _border_median(grey)
    light_background = background > 127
    if grey.shape == (IMAGE_SIZE, IMAGE_SIZE) and not light_background:
        return grey
    # Negate a light background and subtract the background level in one saturating uint8 step:
    # light: (255 - g) - (255 - bg) = bg - g; dark: g - bg; both clipped at 0.
    if light_background:
        grey = background - np.minimum(grey, background)
    else:
        grey = np.maximum(grey, background) - background

    rows = np.flatnonzero((grey > FOREGROUND_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((grey > FOREGROUND_THRESHOLD).any(axis=0))
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    if rows.size == 0:
        return canvas
    item = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = item.shape
    scale = IMAGE_SIZE / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(Image.fromarray(item).resize((new_w, new_h), Image.Resampling.LANCZOS))
    top, left = (IMAGE_SIZE - new_h) // 2, (IMAGE_SIZE - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def looks_like_fashion_mnist(images: np.ndarray) -> np.ndarray:
    """Tell which of a batch of 28×28 images :func:`preprocess` would pass through unchanged.

    Args:
        images: uint8 array of shape (N, 28, 28).

    Returns:
        Boolean array of shape (N,).
    """
    border = np.concatenate(
        [images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1
    )
    return np.median(border, axis=1) <= 127


def model_input(images: np.ndarray | Iterable[Image.Image | np.ndarray]) -> np.ndarray:
    """Build a model input batch. Call this, and only this, to feed a model.

    Args:
        images: Either a uint8 array of shape (N, 28, 28) (Fashion-MNIST as loaded from IDX),
            or an iterable of images as accepted by :func:`preprocess` (Pillow images or RGB
            arrays of any size).

    Returns:
        A uint8 array of shape (N, 28, 28, 1), raw 0–255 pixels, item light on black.
    """
    if (
        isinstance(images, np.ndarray)
        and images.ndim == 3
        and images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)
    ):
        if images.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels 0-255, got {images.dtype}")
        out = images.copy()
        # Vectorised fast path: Fashion-MNIST passes through; anything else takes the full path.
        for i in np.flatnonzero(~looks_like_fashion_mnist(images)):
            out[i] = preprocess(images[i])
        return out[..., np.newaxis]
    batch = [preprocess(image) for image in images]
    if not batch:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8)
    return np.stack(batch)[..., np.newaxis]

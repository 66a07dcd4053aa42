"""The one preprocessing path: any image in, the model's 28×28 uint8 input out.

Trainer, converter calibration and the edge runtime all call :func:`model_input`, so the pixels
a model is trained, calibrated and run on are made by the same code. Rescaling to 0–1 happens
inside the model (a ``Rescaling`` layer), so the model input is raw 0–255 pixels.

Fashion-MNIST was made from catalogue shots (Xiao et al. 2017): the background trimmed, the
item fitted in 28×28, intensities negated so the item is light on black. A phone photo of a
shirt on a wooden floor, or a camera pointed at one, has no plain background to trim, so the
garment is found first. Call order of :func:`preprocess`:

1. a 28×28 image with a dark border is Fashion-MNIST already: returned unchanged, bit for bit;
2. reduce to a working size (longer side ≤ :data:`WORK_LONG`, shorter ≤ :data:`WORK_SHORT`);
3. :func:`trim_flat`: strip margins of repeated rows or columns (letterbox bars, padding);
4. :func:`garment_mask`: model the background's colours from the image's border and the
   garment's from its centre (Lab histograms, with a prior for the centre), keep the largest
   region with its holes filled, and once more with colour models from that region;
5. :func:`render`: the garment's negated luminance inside the mask, exactly 0 outside, cropped
   to the mask, longest edge 28 px, centred on black.

Colour order: every array here is **RGB** (convert OpenCV's BGR frames first).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge_runtime import IMAGE_SIZE

MAX_PIXELS = 40_000_000
"""Refuse images with more pixels than this (a decompression-bomb guard; Pillow's own is 89 M)."""

WORK_LONG = 128
WORK_SHORT = 96
"""The working size, in pixels (longer and shorter side): the output is 28 px, and finding the
garment at this size costs about a millisecond; JPEGs are decoded straight to about it."""

BINS = 8
"""Histogram bins per Lab channel of the colour models (8 × 8 × 8)."""
RING = 3
"""Pixels of the border that model the background."""
FLAT = 1.0
"""A margin row or column whose pixels differ from the next by less than this on average
(0–255) is padding, not picture."""
MIN_GARMENT = 0.02
"""A garment region smaller than this share of the image is not believed: the whole image is."""
PLAIN = 5.0
"""A border whose colours spread less than this (the largest standard deviation of its Lab
channels) is a plain background: a studio or catalogue shot, or a drawing."""
PLAIN_DIFFERENCE = 16.0
"""On a plain background, a pixel this far from its colour (in any Lab channel) is garment."""
CENTRE_PRIOR = 1.0
"""Log odds against a garment at the middle of an edge, relative to the centre (see
:func:`garment_mask`): people point the camera at the garment."""


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
    except OSError as e:  # a symlink loop, a path through a file, a name too long, EIO ...
        raise ImageError(path, e.strerror or type(e).__name__) from None


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
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, still at least the working size.
            img.draft(img.mode, (WORK_LONG, WORK_LONG))
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


def to_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """An image of any mode as an 8-bit RGB array.

    Transparent pixels are composited over white (a product shot's background). 16- and 32-bit
    integer images are scaled to 8 bits; float images are read as 0–1 when their maximum is ≤ 1,
    else as 0–255; CIELab images give their lightness.

    Args:
        image: A Pillow image of any mode, or a uint8 array of shape (H, W) or (H, W, 3) in
            **RGB** order. Callers holding OpenCV frames (BGR) must convert them first.

    Returns:
        A uint8 array of shape (H, W, 3).
    """
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                f"expected a uint8 (H, W) or (H, W, 3) array, got {image.dtype} {image.shape}"
            )
        if image.ndim == 2:
            return np.repeat(image[:, :, np.newaxis], 3, axis=2)
        if image.shape[2] != 3:
            raise ValueError(f"expected 3 channels (RGB), got {image.shape[2]}")
        return np.ascontiguousarray(image)
    mode = image.mode
    if mode == "LAB":
        # Pillow converts LAB to nothing else; its L channel is the lightness, 0–255.
        image, mode = image.getchannel("L"), "L"
    if mode == "La":
        # Premultiplied alpha: Pillow converts it only to LA, composited below like LA.
        image, mode = image.convert("LA"), "LA"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(image).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        image, mode = (
            Image.fromarray(np.clip(a * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)),
            "L",
        )
    if mode == "F":
        # NaN pixels are black (0) and ±inf clip, so that no cast of a non-finite value warns.
        a = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        a = a * 255.0 if a.max() <= 1.0 else a
        image, mode = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8)), "L"
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    # CMYK, YCbCr, P, 1, L and RGB all convert through Pillow's own conversions.
    return np.asarray(image.convert("RGB"))


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB uint8 array, as uint8 (what Pillow's ``L`` is)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _dark_border(grey: np.ndarray) -> bool:
    """Whether the median of the outermost rows and columns is dark (≤ 127), rounded down as
    ``int(np.median(...))`` would (computed by a sort, which is cheaper on ~100 values)."""
    border = np.sort(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    middle = border.size // 2
    median = (
        border[middle] if border.size % 2 else (int(border[middle - 1]) + int(border[middle])) // 2
    )
    return int(median) <= 127


def _fashion_mnist(image: Image.Image | np.ndarray) -> np.ndarray | None:
    """The image's own pixels when it is Fashion-MNIST already (28×28 greyscale, dark border)."""
    if isinstance(image, np.ndarray):
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE) or image.dtype != np.uint8:
            return None
        grey = image
    elif image.mode == "L" and image.size == (IMAGE_SIZE, IMAGE_SIZE):
        grey = np.asarray(image)
    else:
        return None
    return grey if _dark_border(grey) else None


def to_work(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` reduced (area average) to the working size; smaller images are left as they are."""
    h, w = rgb.shape[:2]
    scale = min(WORK_LONG / max(h, w), WORK_SHORT / min(h, w))
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def busy_lines(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where an RGB image changes: the indices ``(cols, rows)`` of the steps from one column
    (row) to the next whose mean absolute difference, over its pixels and channels, is above
    :data:`FLAT`. Step ``i`` is between lines ``i`` and ``i + 1``."""
    h, w = rgb.shape[:2]
    # cv2.absdiff on uint8 is exact and the sums are integers, so the means are the float64
    # ones np.mean makes of the int16 differences, without widening the image first.
    cols = rows = np.zeros(0, np.intp)
    if w >= 2:  # (cv2 gives no array for an empty difference)
        across = cv2.absdiff(rgb[:, 1:], rgb[:, :-1]).reshape(h, 3 * (w - 1))
        across = across.sum(axis=0, dtype=np.int64).reshape(w - 1, 3).sum(axis=1)
        cols = np.flatnonzero(across / (3.0 * h) > FLAT)
    if h >= 2:
        down = cv2.absdiff(rgb[1:], rgb[:-1]).reshape(h - 1, 3 * w).sum(axis=1, dtype=np.int64)
        rows = np.flatnonzero(down / (3.0 * w) > FLAT)
    return cols, rows


def trim_flat(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` without its margins of repeated rows or columns (no :func:`busy_lines` step):
    letterbox bars, or a frame padded by repeating its edge. Kept whole when that would leave
    less than 30% of a side."""
    cols, rows = busy_lines(rgb)
    if cols.size == 0 or rows.size == 0:
        return rgb
    x0, x1, y0, y1 = cols[0], cols[-1] + 2, rows[0], rows[-1] + 2
    if x1 - x0 < 0.3 * rgb.shape[1] or y1 - y0 < 0.3 * rgb.shape[0]:
        return rgb
    return rgb[y0:y1, x0:x1]


_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def _clean(mask: np.ndarray) -> np.ndarray:
    """Open and close away specks, keep the largest region (the whole image when that is under
    :data:`MIN_GARMENT` of it), and fill the region's holes (a print on a T-shirt)."""
    h, w = mask.shape
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _OPEN)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _CLOSE)
    count, regions, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask.astype(bool)
    largest = regions == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if largest.sum() < MIN_GARMENT * h * w:
        return np.ones((h, w), bool)
    # Holes: regions of the rest that do not touch the image's edge.
    count, rest = cv2.connectedComponents((~largest).astype(np.uint8), connectivity=4)
    if count > 2:
        edge = np.unique(np.concatenate([rest[0], rest[-1], rest[:, 0], rest[:, -1]]))
        hole = np.ones(count, bool)
        hole[edge] = False
        hole[0] = False
        largest |= hole[rest]
    return largest


def _centre_prior(h: int, w: int) -> np.ndarray:
    """How much less likely a garment is away from the centre (log odds): ``CENTRE_PRIOR ·
    (r² − ½)``, with ``r`` the distance from the centre, 1 at the middle of each edge."""
    yy = (np.arange(h)[:, None] - (h - 1) / 2) / (h / 2)
    xx = (np.arange(w)[None, :] - (w - 1) / 2) / (w / 2)
    return (CENTRE_PRIOR * (yy**2 + xx**2 - 0.5)).astype(np.float32)


def garment_mask(rgb: np.ndarray) -> np.ndarray:
    """Where the garment is: a boolean (H, W) mask of an RGB working-size image.

    On a plain background (:data:`PLAIN`), the garment is whatever differs from its colour.
    Otherwise, colour models in Lab (:data:`BINS` bins per channel): the background's from the
    outer :data:`RING` pixels, the garment's from the central half of the image. A pixel is garment
    where the log-likelihood ratio of its colour, less a prior that favours the centre and
    blurred a little, is positive; :func:`_clean` then keeps one whole region. A second pass
    re-estimates both colour models from that region and its complement (as GrabCut iterates,
    without the graph cut).
    """
    h, w = rgb.shape[:2]
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    q = (lab // (256 // BINS)).astype(np.int32)
    code = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
    ring = np.zeros((h, w), bool)
    ring[:RING] = ring[-RING:] = True
    ring[:, :RING] = ring[:, -RING:] = True
    border = lab[ring].astype(np.float32)
    if border.std(axis=0).max() < PLAIN:
        difference = np.abs(lab.astype(np.float32) - np.median(border, axis=0)).max(axis=2)
        return _clean(difference > PLAIN_DIFFERENCE)
    garment = np.zeros((h, w), bool)
    garment[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    background, prior = ring, _centre_prior(h, w)
    for _ in range(2):
        # +0.1 per bin: a colour never seen on either side is neither's evidence.
        bg = np.bincount(code[background], minlength=BINS**3).astype(np.float32) + 0.1
        fg = np.bincount(code[garment], minlength=BINS**3).astype(np.float32) + 0.1
        ratio = np.log((fg / fg.sum()) / (bg / bg.sum()))[code] - prior
        garment = _clean(cv2.GaussianBlur(ratio, (0, 0), 1.5) > 0)
        background = ~garment | ring
    return garment


def render(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Draw the masked garment the Fashion-MNIST way: its negated luminance (light where the
    garment is dark), 0 outside the mask, cropped to the mask, longest edge 28 px (area
    average), centred on a black 28×28 canvas."""
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return canvas
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    grey = _luma(np.ascontiguousarray(rgb[y0:y1, x0:x1])).astype(np.float32)
    item = np.where(mask[y0:y1, x0:x1], 255.0 - grey, 0.0)
    h, w = item.shape
    scale = IMAGE_SIZE / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(item, (new_w, new_h), interpolation=cv2.INTER_AREA)
    top, left = (IMAGE_SIZE - new_h) // 2, (IMAGE_SIZE - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = np.clip(resized + 0.5, 0, 255).astype(np.uint8)
    return canvas


def preprocess(image: Image.Image | np.ndarray) -> np.ndarray:
    """Turn one image into the model's input pixels (see the module docstring for the steps).

    A 28×28 greyscale image with a dark border is returned unchanged, so Fashion-MNIST images
    themselves pass through bit for bit. An image with no garment to find (blank, 1×1) becomes
    an all-black canvas.

    Args:
        image: A Pillow image of any mode, or a uint8 array (H, W) or (H, W, 3) in RGB order.

    Returns:
        A uint8 array of shape (28, 28), values 0–255, garment light on black.
    """
    if (pixels := _fashion_mnist(image)) is not None:
        return pixels
    rgb = to_rgb(image)
    if min(rgb.shape[:2]) < 2:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    rgb = trim_flat(to_work(rgb))
    if rgb.std() == 0:  # one colour: nothing to find
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return render(rgb, garment_mask(rgb))


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

"""The one preprocessing path, without TensorFlow: goldens, every image mode, inversion, trim, EXIF."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.preprocess import (
    ImageError,
    busy_lines,
    decode_image,
    load_image,
    model_input,
    preprocess,
    trim_flat,
)


def product_shot(
    mode: str = "L", *, size=(100, 50), box=(30, 10, 50, 20), item=0, background=255
) -> Image.Image:
    """A light canvas (W×H = size) with a dark rectangle at box = (left, top, right, bottom)."""
    a = np.full((size[1], size[0]), background, np.uint8)
    a[box[1] : box[3], box[0] : box[2]] = item
    return Image.fromarray(a).convert(mode)


def assert_light_block(out: np.ndarray, *, rows: tuple[int, int], cols: tuple[int, int]) -> None:
    """``out`` is a light block on exact black: 255 inside rows × cols, 0 beyond one pixel of
    them (the garment mask's edge is soft by a pixel, so the rim in between blends)."""
    (r0, r1), (c0, c1) = rows, cols
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert (out[r0:r1, c0:c1] == 255).all(), out
    rim = np.zeros((28, 28), bool)
    rim[max(0, r0 - 1) : r1 + 1, max(0, c0 - 1) : c1 + 1] = True
    assert (out[~rim] == 0).all(), out


# The golden: a 20×10 dark item on white becomes a light 28×14 block centred in 28×28.
GOLDEN = np.zeros((28, 28), np.uint8)
GOLDEN[7:21, :] = 255


def assert_golden(out: np.ndarray) -> None:
    """``out`` is the golden, its four corners rounded by the mask's clean-up."""
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert (out[:7] == 0).all() and (out[21:] == 0).all(), out
    assert (out[9:19] == 255).all() and (out != GOLDEN).sum() <= 16, out


def test_golden_product_shot():
    assert_golden(preprocess(product_shot()))


def test_golden_tall_item_keeps_aspect_ratio():
    out = preprocess(product_shot(size=(60, 90), box=(10, 5, 20, 65)))  # 10 wide × 60 tall
    assert_light_block(out, rows=(1, 27), cols=(12, 16))  # 28 tall, about 5 wide, centred


def test_fashion_mnist_like_image_passes_through_bit_for_bit():
    rng = np.random.default_rng(0)
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 6:22] = rng.integers(1, 256, (20, 16))
    np.testing.assert_array_equal(preprocess(img), img)
    np.testing.assert_array_equal(preprocess(Image.fromarray(img)), img)


def test_a_light_garment_on_a_dark_floor_is_found_and_drawn_negated():
    out = preprocess(product_shot(item=200, background=30))
    assert out[14, 14] == 255 - 200 and out[0, 0] == 0  # its own negated luminance, on black


def test_the_background_is_zero_whatever_its_shade():
    out = preprocess(product_shot(item=40, background=200))
    assert out[0, 0] == 0 and out[14, 14] == 255 - 40


def test_a_garment_on_a_patterned_floor_loses_the_pattern():
    rng = np.random.default_rng(0)
    floor = rng.integers(120, 200, (120, 160, 3), dtype=np.uint8)  # a noisy, wood-like floor
    floor[::6] //= 2  # with grain
    floor[20:100, 60:100] = (20, 40, 160)  # a blue garment, 40 wide × 80 tall
    out = preprocess(floor)
    # The garment, 28 tall and 14 wide, in its own negated luminance; the floor is gone.
    garment = 255 - int(np.asarray(Image.new("RGB", (1, 1), (20, 40, 160)).convert("L"))[0, 0])
    assert (out[1:27, 8:20] == garment).all()
    assert (out[:, :6] == 0).all() and (out[:, 22:] == 0).all()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "CMYK", "1", "I", "F", "YCbCr", "I;16"])
def test_every_mode_gives_the_same_input(mode: str):
    img = (
        product_shot().convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(product_shot()).astype(np.uint16) * 257)
    )  # Pillow infers I;16
    reference = preprocess(product_shot())
    assert np.abs(preprocess(img).astype(int) - reference).max() <= 2


def test_a_float_image_with_nan_pixels_decodes_without_a_warning():
    pixels = np.asarray(product_shot(), np.float32) / 255.0
    pixels[:2, :3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would print a second stderr line
        seen = preprocess(Image.fromarray(pixels, mode="F"))
    assert seen.shape == (28, 28) and seen.max() == 255


def test_lab_tiff_uses_its_lightness():
    # A CIELab TIFF decodes to Pillow's LAB mode, which Pillow cannot convert to L.
    grey = product_shot()
    neutral = Image.new("L", grey.size, 128)
    buffer = io.BytesIO()
    Image.merge("LAB", [grey, neutral, neutral]).save(buffer, format="TIFF")
    assert_golden(preprocess(decode_image(buffer.getvalue(), "lab.tif")))


@pytest.mark.parametrize("mode", sorted(Image.MODES))
def test_no_pillow_mode_is_refused(mode: str):
    pixels = preprocess(Image.new(mode, (40, 30)))
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8


def test_rgba_transparent_background_composites_over_white():
    a = np.zeros((50, 100, 4), np.uint8)  # fully transparent black everywhere...
    a[10:20, 30:50] = (0, 0, 0, 255)  # ...but an opaque black item
    assert_golden(preprocess(Image.fromarray(a)))


def test_rgb_array_input_matches_pillow_input():
    shot = product_shot("RGB")
    np.testing.assert_array_equal(preprocess(np.asarray(shot)), preprocess(shot))


def test_blank_and_tiny_images_give_a_black_canvas():
    for img in (
        Image.new("L", (64, 64), 255),
        Image.new("L", (64, 64), 0),
        Image.new("RGB", (1, 1), "red"),
    ):
        out = preprocess(img)
        assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 0


def test_busy_lines_keep_to_their_definition():
    """The steps above FLAT are found as np.mean of int16 differences finds them, means of
    exactly FLAT (1.0) included; letterbox bars are trimmed to the picture and one bar column."""
    from edge_runtime.preprocess import FLAT

    rng = np.random.default_rng(0)
    images = []
    for k in range(200):
        h, w = (int(v) for v in rng.integers(1, 60, size=2))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if k % 4 == 0:  # letterbox bars
            image[:, : w // 4] = image[:, w - w // 4 :] = 0
        elif k % 4 == 1:  # an edge repeated
            image[: h // 3] = image[h // 3]
        elif k % 4 == 2:  # steps of 0 or 2: means at or near FLAT
            image = (100 + 2 * rng.integers(0, 2, (h, w, 3))).astype(np.uint8)
        images.append(image)
    for image in images:
        pixels = image.astype(np.int16)
        cols, rows = busy_lines(image)
        steps = np.abs(np.diff(pixels, axis=1)).mean(axis=(0, 2))
        np.testing.assert_array_equal(cols, np.flatnonzero(steps > FLAT))
        steps = np.abs(np.diff(pixels, axis=0)).mean(axis=(1, 2))
        np.testing.assert_array_equal(rows, np.flatnonzero(steps > FLAT))
    letterboxed = np.zeros((48, 64, 3), np.uint8)
    letterboxed[:, 8:56] = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    # The bars go but for the column beside the picture on each side (the step marks the edge).
    np.testing.assert_array_equal(trim_flat(letterboxed), letterboxed[:, 7:57])


def test_large_photo_is_reduced_but_still_right(tmp_path: Path):
    shot = product_shot("RGB", size=(4000, 3000), box=(1200, 1000, 2400, 1600))  # 12 MP
    # Reduced to the working size first (128 px): the same block, its edges softer.
    out = preprocess(shot)
    assert (out[10:18, 3:25] == 255).all() and (out[:7] == 0).all() and (out[21:] == 0).all()


def test_exif_orientation_is_honoured(tmp_path: Path):
    upright = product_shot("RGB")
    # Store the pixels rotated 90° clockwise with Orientation=6 ("rotate 90 CW to display").
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif.tobytes(), quality=100)
    loaded = load_image(path)
    assert loaded.size == upright.size
    out = preprocess(loaded)  # JPEG, so nearly exact
    assert (out[10:18, 3:25] >= 247).all() and (out[:7] <= 8).all() and (out[21:] <= 8).all()


def test_animated_gif_uses_first_frame(tmp_path: Path):
    first, second = product_shot("P"), Image.new("P", (100, 50), 0)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    assert_golden(preprocess(load_image(path)))


@pytest.mark.parametrize("fmt", ["png", "bmp", "tiff", "webp", "gif"])
def test_formats_load(tmp_path: Path, fmt: str):
    path = tmp_path / f"shot.{fmt}"
    product_shot("RGB").save(path, **({"lossless": True} if fmt == "webp" else {}))
    assert_golden(preprocess(load_image(path)))


def test_unicode_file_name(tmp_path: Path):
    path = tmp_path / "чёрная рубашка 👕.png"
    product_shot().save(path)
    assert_golden(preprocess(load_image(path)))


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not an image"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "no such file"),
    ],
)
def test_bad_files_raise_one_line_image_error(tmp_path: Path, make, problem: str):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageError, match=problem) as err:
        load_image(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_image(tmp_path: Path):
    path = tmp_path / "cut.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path):
    path = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(path)  # 100 MP, a few KB on disk
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(path)


def test_model_input_shapes_and_fast_path():
    batch = np.zeros((3, 28, 28), np.uint8)
    batch[1] = 255  # light border: takes the full path and becomes black
    out = model_input(batch)
    assert out.shape == (3, 28, 28, 1) and out.dtype == np.uint8
    assert out.max() == 0
    assert model_input([product_shot(), product_shot()]).shape == (2, 28, 28, 1)
    assert model_input([]).shape == (0, 28, 28, 1)


def test_fashion_mnist_through_png_equals_trainer_and_calibration_arrays(dataset, tmp_path: Path):
    """Golden identity: edge (PNG file → load_image → model_input), trainer and calibration agree."""
    from converter.convert import representative_images

    rep_direct = model_input(dataset.x_train)  # what the trainer feeds
    rep = representative_images(dataset.x_train, dataset.y_train, 200)
    from trainer.data import stratified_indices

    idx = stratified_indices(dataset.y_train, 200, 0)
    np.testing.assert_array_equal(rep, rep_direct[idx])
    paths = []
    for i in idx[:100]:
        p = tmp_path / f"{i}.png"
        Image.fromarray(dataset.x_train[i]).save(p)
        paths.append(p)
    edge = model_input([load_image(p) for p in paths])
    np.testing.assert_array_equal(edge, rep[:100])


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "bmp", "tiff", "webp"])
def test_mutated_image_bytes_only_ever_raise_image_error(fmt: str):
    """Uploads are hostile: flipped, cut and spliced bytes decode or fail with ImageError."""
    from edge_runtime.preprocess import decode_image

    buffer = io.BytesIO()
    product_shot("RGB", size=(60, 40)).save(buffer, format=fmt)
    original = buffer.getvalue()
    rng = np.random.default_rng(0)
    outcomes = {"decoded": 0, "refused": 0}
    for case in range(300):
        data = bytearray(original)
        for _ in range(1 + case % 8):
            data[rng.integers(len(data))] = rng.integers(256)
        if case % 3 == 1:
            data = data[: rng.integers(1, len(data))]
        if case % 5 == 2:
            data += rng.bytes(int(rng.integers(1, 64)))
        try:
            model_input([decode_image(bytes(data), f"case {case}")])
            outcomes["decoded"] += 1
        except ImageError as e:
            assert "\n" not in str(e) and str(e).startswith(f"case {case}: ")
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0, outcomes

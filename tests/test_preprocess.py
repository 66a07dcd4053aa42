"""The one preprocessing path, without TensorFlow: goldens, every image mode, inversion, trim, EXIF."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.preprocess import (
    ImageError,
    decode_image,
    load_image,
    model_input,
    preprocess,
)


def product_shot(
    mode: str = "L", *, size=(100, 50), box=(30, 10, 50, 20), item=0, background=255
) -> Image.Image:
    """A light canvas (W×H = size) with a dark rectangle at box = (left, top, right, bottom)."""
    a = np.full((size[1], size[0]), background, np.uint8)
    a[box[1] : box[3], box[0] : box[2]] = item
    return Image.fromarray(a).convert(mode)


# The golden: a 20×10 dark item on white becomes a light 28×14 block centred in 28×28.
GOLDEN = np.zeros((28, 28), np.uint8)
GOLDEN[7:21, :] = 255


def test_golden_product_shot():
    np.testing.assert_array_equal(preprocess(product_shot()), GOLDEN)


def test_golden_tall_item_keeps_aspect_ratio():
    out = preprocess(product_shot(size=(60, 90), box=(10, 5, 20, 65)))  # 10 wide × 60 tall
    expected = np.zeros((28, 28), np.uint8)
    expected[:, 11:16] = 255  # 28 tall, round(10 * 28 / 60) = 5 wide, left = (28 - 5) // 2
    np.testing.assert_array_equal(out, expected)


def test_fashion_mnist_like_image_passes_through_bit_for_bit():
    rng = np.random.default_rng(0)
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 6:22] = rng.integers(1, 256, (20, 16))
    np.testing.assert_array_equal(preprocess(img), img)
    np.testing.assert_array_equal(preprocess(Image.fromarray(img)), img)


def test_dark_background_photo_is_not_inverted():
    shot = product_shot(item=200, background=0)
    out = preprocess(shot)
    assert out.max() == 200 and out[0, 0] == 0


def test_grey_background_is_subtracted():
    out = preprocess(product_shot(item=40, background=200))
    assert out[0, 0] == 0 and out[14, 14] == 160  # (255-40) - (255-200)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "CMYK", "1", "I", "F", "YCbCr", "I;16"])
def test_every_mode_gives_the_same_input(mode: str):
    img = (
        product_shot().convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(product_shot()).astype(np.uint16) * 257)
    )  # Pillow infers I;16
    np.testing.assert_array_equal(preprocess(img), GOLDEN)


def test_lab_tiff_uses_its_lightness():
    # A CIELab TIFF decodes to Pillow's LAB mode, which Pillow cannot convert to L.
    grey = product_shot()
    neutral = Image.new("L", grey.size, 128)
    buffer = io.BytesIO()
    Image.merge("LAB", [grey, neutral, neutral]).save(buffer, format="TIFF")
    np.testing.assert_array_equal(preprocess(decode_image(buffer.getvalue(), "lab.tif")), GOLDEN)


@pytest.mark.parametrize("mode", sorted(Image.MODES))
def test_no_pillow_mode_is_refused(mode: str):
    pixels = preprocess(Image.new(mode, (40, 30)))
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8


def test_rgba_transparent_background_composites_over_white():
    a = np.zeros((50, 100, 4), np.uint8)  # fully transparent black everywhere...
    a[10:20, 30:50] = (0, 0, 0, 255)  # ...but an opaque black item
    np.testing.assert_array_equal(preprocess(Image.fromarray(a)), GOLDEN)


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


def test_large_photo_is_reduced_but_still_right(tmp_path: Path):
    shot = product_shot("RGB", size=(4000, 3000), box=(1200, 1000, 2400, 1600))  # 12 MP
    diff = np.abs(preprocess(shot).astype(int) - GOLDEN)
    # Box-reducing 4000 px to 448 blends the item's edge pixels; the interior stays exact.
    assert diff.max() <= 32 and diff.mean() < 1 and (diff[8:20, 3:25] <= 1).all()


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
    assert np.abs(preprocess(loaded).astype(int) - GOLDEN).max() <= 8  # JPEG, so nearly exact


def test_animated_gif_uses_first_frame(tmp_path: Path):
    first, second = product_shot("P"), Image.new("P", (100, 50), 0)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    np.testing.assert_array_equal(preprocess(load_image(path)), GOLDEN)


@pytest.mark.parametrize("fmt", ["png", "bmp", "tiff", "webp", "gif"])
def test_formats_load(tmp_path: Path, fmt: str):
    path = tmp_path / f"shot.{fmt}"
    product_shot("RGB").save(path, **({"lossless": True} if fmt == "webp" else {}))
    np.testing.assert_array_equal(preprocess(load_image(path)), GOLDEN)


def test_unicode_file_name(tmp_path: Path):
    path = tmp_path / "чёрная рубашка 👕.png"
    product_shot().save(path)
    np.testing.assert_array_equal(preprocess(load_image(path)), GOLDEN)


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

"""Real photos of real clothes: the vendored copy, and the shipped int8 model on its validation
split through the path ``fmnist-edge classify`` runs, and through the camera frame loop.

The model tests need the real model (``make test`` converts it first) and fail, never skip,
when it is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime import vocab
from edge_runtime.classifier import Classifier
from edge_runtime.photos import labelled_photos, score
from edge_runtime.preprocess import load_image, model_input
from edge_runtime.vocab import MODES, PHOTO_FOLDERS, ROUTE_MODE, TARGETS
from tests.helpers import ROOT, assert_shipped_targets, run_cli, unavailable

COPY = ROOT / "data" / "real-photos"
MODEL = ROOT / vocab.ARTIFACTS / MODES[ROUTE_MODE].file


# --- the vendored copy --------------------------------------------------------------------------


def test_the_vendored_copy_is_whole_compact_and_documented():
    counts = {split: len(labelled_photos(COPY / split)) for split in ("train", "validation")}
    assert counts == {"train": 3068, "validation": 341}
    size = sum(p.stat().st_size for p in COPY.rglob("*") if p.is_file())
    assert size <= 20 * 10**6, f"{size:,} bytes"
    readme = (COPY / "README.md").read_text()
    assert "CC0" in readme and "derive.py" in readme and "held-out" in readme
    assert "CC0 1.0 Universal" in (COPY / "LICENSE").read_text()
    with Image.open(next((COPY / "validation" / "shirt").iterdir())) as photo:
        assert max(photo.size) == 160 and photo.format == "JPEG"


def test_the_collections_classes_are_the_vocabularys_photo_folders():
    classes = json.loads((COPY / "classes.json").read_text())
    for name, entry in classes["folders"].items():
        folder = PHOTO_FOLDERS[name]
        assert list(folder.strict) == entry["strict"] and folder.family == entry["family"]
    families = {int(k): v for k, v in classes["family_of_id"].items()}
    assert [families[i] for i in range(10)] == list(vocab.FAMILY_OF_CLASS)


def test_derive_makes_the_same_copy_every_time(tmp_path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive", COPY / "derive.py")
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    source = tmp_path / "source"
    for split, folder in (("train", "shirt"), ("validation", "hat")):
        (source / split / folder).mkdir(parents=True)
        rng = np.random.default_rng(len(split))
        pixels = rng.integers(0, 256, (534, 400, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(source / split / folder / "a.jpg", quality=95)
    (source / "classes.json").write_text("{}")
    first, second = tmp_path / "first", tmp_path / "second"
    assert derive.derive(source, first) == derive.derive(source, second) == 2
    for path in first.rglob("*.jpg"):
        twin = second / path.relative_to(first)
        assert path.read_bytes() == twin.read_bytes()
        assert Image.open(path).size == (120, 160)


def test_the_known_images_are_what_their_script_derives(dataset):
    import io

    from edge_runtime.known import PATH
    from trainer.known_images import derive

    with np.load(io.BytesIO(derive())) as fresh, np.load(PATH) as kept:
        for name in ("images", "labels", "indices"):
            np.testing.assert_array_equal(fresh[name], kept[name])


# --- the shipped model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    """The int8 model ``make convert`` made, as ``classify`` loads it."""
    if not MODEL.is_file():
        unavailable(f"{MODEL} is missing: `make test` converts the real model first")
    return Classifier.from_file(MODEL)


@pytest.fixture(scope="module")
def answered(shipped: Classifier):
    """The validation photos and the shipped model's answers, one photo at a time."""
    photos = labelled_photos(COPY / "validation")
    probs = np.stack([shipped.probabilities(model_input([load_image(p.path)]))[0] for p in photos])
    return photos, probs


@pytest.mark.slow
def test_the_shipped_model_on_real_photos(shipped: Classifier, answered):
    """The issue's targets on the vendored validation photos (``strict``, ``family`` and the
    worst folder are in the README with the figures on the original photos)."""
    photos, probs = answered
    scores = score([p.folder for p in photos], probs, not_sure_below=shipped.not_sure_below)
    recorded = shipped.sidecar.photos["validation"]
    # The converter measured the same, through the same path, in a worker of its own.
    assert scores.strict == pytest.approx(recorded["strict"], abs=1e-9)
    assert scores.family == pytest.approx(recorded["family"], abs=1e-9)
    assert scores.per_folder == pytest.approx(recorded["per_folder"], abs=1e-9)
    assert min(scores.per_folder.values()) == shipped.sidecar.photos["worst_folder"]
    # Met as they stand, or (family, a miss the README reports) at least this release's figure.
    assert_shipped_targets(shipped.sidecar)


@pytest.mark.slow
def test_not_sure_turns_away_what_has_no_class(shipped: Classifier, answered):
    photos, probs = answered
    scores = score([p.folder for p in photos], probs, not_sure_below=shipped.not_sure_below)
    assert TARGETS["photo_not_sure_mapped"].met(scores.not_sure_mapped), scores
    assert TARGETS["photo_not_sure_unmapped"].met(scores.not_sure_unmapped), scores


@pytest.mark.slow
def test_classify_answers_a_phone_photo_as_the_library_does(
    shipped: Classifier, answered, tmp_path
):
    photos, probs = answered
    picked = [photos[i] for i in range(0, len(photos), 40)]
    r = run_cli(
        "fmnist-edge", "classify", "--json", "--model", str(MODEL), *[str(p.path) for p in picked]
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    for row, index in zip(rows, range(0, len(photos), 40), strict=True):
        assert row["class_id"] == int(probs[index].argmax())
        assert row["not_sure"] == bool(probs[index].max() < shipped.not_sure_below)
    seen = tmp_path / "seen"
    r = run_cli("fmnist-edge", "classify", "--model", str(MODEL), "--save-preprocessed", str(seen),
                str(picked[0].path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    saved = np.asarray(Image.open(seen / f"{picked[0].path.stem}.preprocessed.png"))
    np.testing.assert_array_equal(saved, model_input([load_image(picked[0].path)])[0, :, :, 0])


@pytest.mark.slow
def test_a_camera_pointed_at_the_garments(shipped: Classifier, tmp_path: Path):
    """A clip of the validation photos, each in a 640×480 frame for half a second, through the
    one frame loop: the majority answer is right for most garments."""
    from benchmarks.photos import camera_clip, camera_scores
    from edge_runtime.sources import VideoFile
    from edge_runtime.webcam import classify_frames

    photos = labelled_photos(COPY / "validation")
    clip = camera_clip(photos, tmp_path / "clip.avi")
    answers = [r.prediction.class_id for r, _ in classify_frames(shipped, VideoFile(clip).open())]
    scores = camera_scores(photos, answers)
    assert scores["frames"] == 15 * len(photos)
    assert TARGETS["camera_majority"].met(scores["majority_right"]), scores

"""A source is a type: what ``--source`` text names, and what each kind of source delivers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.sources import (
    Camera,
    ImageFolder,
    PiCamera,
    SourceError,
    StreamUrl,
    VideoFile,
    parse_source,
)
from tests.helpers import TINY_INT8, live_server, write_video


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Camera(0)),
        ("12", Camera(12)),
        ("/dev/video2", Camera("/dev/video2")),
        ("picamera", PiCamera()),
        ("rtsp://cam.local/stream", StreamUrl("rtsp://cam.local/stream")),
        ("HTTP://10.0.0.2:8080/api/stream", StreamUrl("HTTP://10.0.0.2:8080/api/stream")),
        ("clip.avi", VideoFile(Path("clip.avi"))),
        ("frame_%03d.png", VideoFile(Path("frame_%03d.png"))),
        ("٣", VideoFile(Path("٣"))),  # not an ASCII digit: a file name
        ("1234567", VideoFile(Path("1234567"))),  # too long to be a camera index
    ],
)
def test_parse_source(text: str, expected):
    source = parse_source(text)
    assert source == expected and str(source) == text
    assert source.ends == isinstance(expected, VideoFile)


def test_a_folder_is_a_slide_show_of_its_photos(tmp_path: Path):
    colours = [(200, 10, 10), (10, 200, 10)]
    for i, colour in enumerate(colours):
        Image.new("RGB", (64, 48), colour).save(tmp_path / f"{i}.jpg", quality=100)
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "2.png").write_bytes(b"not a png either")  # skipped, as classify does
    source = parse_source(str(tmp_path))
    assert source == ImageFolder(tmp_path) and source.ends
    source.check()
    frames = list(source.open())
    assert [f.shape for f in frames] == [(48, 64, 3)] * 2
    for frame, colour in zip(frames, colours, strict=True):
        assert np.abs(frame.reshape(-1, 3).mean(0) - colour).max() < 3  # RGB order
    looped = source.open(loop=True)
    assert len([next(looped) for _ in range(5)]) == 5
    looped.close()


def test_an_empty_folder_and_a_missing_file_fail_fast(tmp_path: Path):
    with pytest.raises(SourceError, match="no image files"):
        parse_source(str(tmp_path)).check()
    with pytest.raises(SourceError, match="no such video file"):
        parse_source(str(tmp_path / "nope.avi")).check()


def test_paths_become_absolute_for_a_service(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_source("clip.avi").absolute() == VideoFile(tmp_path / "clip.avi")
    assert parse_source("0").absolute() == Camera(0)


def test_an_http_camera_is_read_from_a_live_mjpeg_stream(tmp_path: Path):
    """Another fmnist-edge serve's /api/stream, read as a network camera by OpenCV."""
    frames = [np.full((480, 640, 3), (i * 8) % 256, np.uint8) for i in range(30)]
    clip = write_video(tmp_path / "clip.avi", frames)
    with live_server("--model", str(TINY_INT8), "--source", str(clip), "--loop") as (url, _):
        source = parse_source(f"{url}/api/stream")
        assert isinstance(source, StreamUrl) and not source.ends
        source.check()
        stream = source.open()
        got = [next(stream) for _ in range(5)]
        stream.close()
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in got)


def test_an_unreachable_stream_is_one_line():
    stream = parse_source("http://127.0.0.1:9/nothing").open()
    with pytest.raises(SourceError, match="cannot open"):
        next(stream)

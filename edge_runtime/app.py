"""What ``fmnist-edge classify`` does, as one library call: :func:`classify_paths`."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from edge_runtime.atomic import atomic_path
from edge_runtime.classifier import Prediction
from edge_runtime.options import ClassifyOptions
from edge_runtime.preprocess import ImageError, image_files, load_image, model_input


def expand_paths(args: list[str]) -> Iterator[tuple[str, Path | ImageError]]:
    """Expand CLI arguments into image paths, in order.

    A file is yielded as is (even if it is not an image: it then fails with a clear message).
    A directory yields its image files (by extension, sorted, not recursive). A pattern that is
    not an existing path is globbed. A folder without images, or a pattern that matches
    nothing, is yielded as an :class:`ImageError` so that it is reported like a bad file.

    Yields:
        ``(shown name, path or the error to report)``.
    """
    for arg in args:
        try:
            yield from _expand(arg)
        except OSError as e:  # a name too long to look up, a symlink loop on the way ...
            yield arg, ImageError(arg, e.strerror or type(e).__name__)


def _expand(arg: str) -> Iterator[tuple[str, Path | ImageError]]:
    """What one argument names (see :func:`expand_paths`)."""
    path = Path(arg)
    if path.is_dir():
        children = image_files(path)
        if not children:
            yield arg, ImageError(arg, "is a directory with no image files in it")
        for child in children:
            yield str(child), child
    elif path.exists() or not glob.has_magic(arg):
        yield arg, path
    else:
        matches = sorted(glob.glob(arg, recursive=True))
        if not matches:
            yield arg, ImageError(arg, "no such file (the pattern matched nothing)")
        for match in matches:
            yield match, Path(match)


def _emit(record: dict, prediction: Prediction | None, options: ClassifyOptions) -> None:
    if options.as_json:
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    if prediction is None:
        return
    if prediction.sure:
        print(f"{record['path']}: {prediction.label} ({prediction.score:.1%})", flush=True)
    else:
        print(
            f"{record['path']}: not sure (best guess {prediction.label}, {prediction.score:.1%})",
            flush=True,
        )
    if options.top_k > 1:
        for rank, (label, _, score) in enumerate(prediction.top_k, 1):
            print(f"    {rank}. {label:<12} {score:6.1%}")


def classify_paths(paths: list[str], options: ClassifyOptions) -> int:
    """Classify every image named by ``paths`` and print one result per image.

    Bad images are reported on stderr (one line each: file and problem) and, with ``as_json``,
    as ``{"path", "error"}`` on stdout; the rest are still classified.

    Args:
        paths: Files, directories or glob patterns.
        options: The model and how to report.

    Returns:
        The exit code: 0 if every image was classified, 1 if any failed.

    Raises:
        ModelError, RuntimeMissingError: The model cannot be used (nothing is classified).
    """
    classifier = options.load()
    failures = 0
    saved: set[str] = set()
    for shown, path in expand_paths(paths):
        try:
            if isinstance(path, ImageError):
                raise path
            seen = model_input([load_image(path)])  # once: finding the garment is the work
        except ImageError as e:
            failures += 1
            print(f"error: {e}", file=sys.stderr, flush=True)
            _emit({"path": shown, "error": e.problem}, None, options)
            continue
        prediction = classifier.prediction(classifier.probabilities(seen)[0], options.top_k)
        if options.save_preprocessed is not None:
            try:
                _save_preprocessed(options.save_preprocessed, path, seen[0, :, :, 0], saved)
            except OSError as e:
                failures += 1
                problem = e.strerror or type(e).__name__
                print(f"error: {shown}: cannot save what the model saw: {problem}", file=sys.stderr)
        _emit({"path": shown, **prediction.as_json()}, prediction, options)
    return 1 if failures else 0


def _save_preprocessed(folder: Path, source: Path, pixels: np.ndarray, saved: set[str]) -> None:
    """Write the exact 28×28 pixels the model saw (zoom in a viewer; nothing is resampled), as
    ``<stem>.preprocessed.png``; a stem already written in this run (``a/x.jpg`` after
    ``b/x.png``) gets ``-2``, ``-3``... so that no image's file replaces another's."""
    name, n = f"{source.stem}.preprocessed.png", 1
    while name in saved:
        n += 1
        name = f"{source.stem}-{n}.preprocessed.png"
    saved.add(name)
    with atomic_path(folder / name) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")

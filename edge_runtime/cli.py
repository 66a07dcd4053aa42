"""``fmnist-edge``: classify images or a camera on the Pi. Never imports TensorFlow.

Each command parses its arguments and calls one library function; OpenCV is imported only by
``webcam``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge_runtime.classifier import RUNTIMES, ModelError, RuntimeMissingError
from edge_runtime.errors import one_line_errors

model_option = click.option(
    "--model",
    type=click.Path(path_type=Path),
    default=None,
    help="A .tflite model with its .json sidecar beside it "
    "[default: $FMNIST_MODEL, else artifacts/model_int8.tflite].",
)
threads_option = click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Interpreter threads.",
)
runtime_option = click.option(
    "--runtime",
    type=click.Choice(["auto", *RUNTIMES]),
    default="auto",
    show_default=True,
    help="TFLite interpreter to use.",
)


@click.group()
def main() -> None:
    """Classify Fashion-MNIST items with a TFLite model (no TensorFlow needed)."""


@main.command()
@model_option
@click.option(
    "--top-k",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="Classes to list per image.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@threads_option
@runtime_option
@click.option(
    "--save-preprocessed",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the 28x28 image the model saw for each input into this folder.",
)
@click.argument("paths", nargs=-1, required=True)
@one_line_errors(ModelError, RuntimeMissingError, OSError)
def classify(
    model: Path | None,
    top_k: int,
    as_json: bool,
    threads: int,
    runtime: str,
    save_preprocessed: Path | None,
    paths: tuple[str, ...],
) -> None:
    """Classify image files, folders or glob patterns (PATHS).

    Exit code 0 when every image was classified, 1 when any failed (after all the others),
    2 for usage errors.
    """
    from edge_runtime.app import classify_paths, default_model

    code = classify_paths(
        model or default_model(),
        list(paths),
        top_k,
        as_json,
        threads,
        None if runtime == "auto" else runtime,
        save_preprocessed,
    )
    sys.exit(code)


@main.command()
@model_option
@click.option(
    "--source",
    default="0",
    show_default=True,
    help="Camera index, /dev/videoN, a video file, or 'picamera' (Pi camera via picamera2).",
)
@click.option(
    "--headless",
    is_flag=True,
    default=None,
    help="No window: print results instead [default: on when $DISPLAY is unset].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after N frames.")
@click.option(
    "--roi", default=None, metavar="X,Y,W,H", help="Classify only this box of each frame (pixels)."
)
@click.option(
    "--smooth",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Average over the last N frames so the label does not flicker.",
)
@threads_option
@runtime_option
@one_line_errors(ModelError, RuntimeMissingError, RuntimeError, ValueError)
def webcam(
    model: Path | None,
    source: str,
    headless: bool | None,
    as_json: bool,
    max_frames: int | None,
    roi: str | None,
    smooth: int,
    threads: int,
    runtime: str,
) -> None:
    """Classify a live camera or a video file until it ends, N frames, q, or Ctrl-C."""
    from edge_runtime.app import default_model
    from edge_runtime.webcam import run_webcam

    run_webcam(
        model or default_model(),
        source,
        headless,
        as_json,
        max_frames,
        roi,
        threads,
        smooth,
        None if runtime == "auto" else runtime,
    )


if __name__ == "__main__":
    main()

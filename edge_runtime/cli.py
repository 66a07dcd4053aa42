"""``fmnist-edge``: classify images or a camera on the Pi. Never imports TensorFlow.

Each command parses its arguments into an options object and makes one library call; OpenCV is
imported only by ``webcam``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge_runtime.classifier import ModelError, RuntimeMissingError
from edge_runtime.cli_support import (
    SHOW_DEFAULTS,
    Number,
    OptionsCommand,
    one_line_errors,
    options_from,
)
from edge_runtime.options import (
    CaptureOptions,
    ClassifyOptions,
    ModelOptions,
    ServeOptions,
    WebcamOptions,
)
from edge_runtime.sources import Source, SourceError, parse_source
from edge_runtime.vocab import RUNTIMES

model_option = click.option(
    "--model",
    type=click.Path(path_type=Path),
    envvar="FMNIST_MODEL",
    default=ModelOptions.model,
    show_envvar=True,
    help="A .tflite model with its .json sidecar beside it.",
)
threads_option = click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=ModelOptions.threads,
    help="Interpreter threads.",
)
not_sure_option = click.option(
    "--not-sure-below",
    type=Number(0, 1),
    default=ModelOptions.not_sure_below,
    help="Answer 'not sure' when the best score is below this (0: never) "
    "[default: the threshold calibrated with the model, from its sidecar].",
)
runtime_option = click.option(
    "--runtime",
    type=click.Choice(["auto", *RUNTIMES]),
    default=ModelOptions.runtime or "auto",
    callback=lambda ctx, param, value: None if value == "auto" else value,
    help="TFLite interpreter to use.",
)


def capture_options(command):  # noqa: ANN001, ANN201 - a click command, decorated
    """The flags of :class:`edge_runtime.options.CaptureOptions`."""
    for option in reversed(
        (
            click.option(
                "--capture",
                type=click.Path(file_okay=False, path_type=Path),
                default=CaptureOptions.capture,
                help="Save what the model is unsure of into this folder, to label and retrain.",
            ),
            click.option(
                "--capture-below",
                type=Number(0, 1),
                default=CaptureOptions.capture_below,
                help="Save a camera frame when its best score is below this "
                "[default: the model's 'not sure' threshold].",
            ),
            click.option(
                "--capture-max-mb",
                type=Number(1, min_open=False),
                default=CaptureOptions.capture_max_mb,
                help="Disk budget of the captures: past it the oldest unlabelled ones go.",
            ),
        )
    ):
        command = option(command)
    return command


class SourceParam(click.ParamType):
    """``--source`` text → an :class:`edge_runtime.sources.Source` (``none`` → None)."""

    name = "source"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):  # noqa: ANN201
        if value is None or isinstance(value, Source):
            return value
        return None if value == "none" else parse_source(str(value))


SOURCE_HELP = (
    "a camera index (0), /dev/videoN, 'picamera' (Pi camera via picamera2), an rtsp:// or "
    "http:// camera URL, a video file, or a folder of photos"
)


def parse_roi(
    ctx: click.Context, param: click.Parameter, text: str | None
) -> tuple[int, int, int, int] | None:
    """``--roi x,y,w,h`` → four non-negative ints with w, h > 0."""
    if not text:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected x,y,w,h as four integers") from None
    if min(x, y) < 0 or w <= 0 or h <= 0:
        raise click.BadParameter(f"{text!r}: x and y must be ≥ 0, w and h > 0")
    return x, y, w, h


@click.group(context_settings=SHOW_DEFAULTS)
def main() -> None:
    """Classify Fashion-MNIST items with a TFLite model (no TensorFlow needed)."""


@main.command(cls=OptionsCommand, options=ClassifyOptions)
@model_option
@click.option(
    "--top-k",
    type=click.IntRange(1, 10),
    default=ClassifyOptions.top_k,
    help="Classes to list per image.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@threads_option
@runtime_option
@not_sure_option
@click.option(
    "--save-preprocessed",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the 28x28 image the model saw for each input into this folder.",
)
@click.argument("paths", nargs=-1, required=True)
@one_line_errors(ModelError, RuntimeMissingError, OSError)
def classify(ctx: click.Context) -> None:
    """Classify image files, folders or glob patterns (PATHS).

    Exit code 0 when every image was classified, 1 when any failed (after all the others),
    2 for usage errors.
    """
    from edge_runtime.app import classify_paths

    options = options_from(ctx, besides=("paths",))
    sys.exit(classify_paths(list(ctx.params["paths"]), options))


@main.command(cls=OptionsCommand, options=WebcamOptions)
@model_option
@click.option(
    "--source",
    type=SourceParam(),
    default=str(WebcamOptions.source),
    help=f"Where frames come from: {SOURCE_HELP}.",
)
@click.option(
    "--headless",
    is_flag=True,
    default=WebcamOptions.headless,
    help="No window: print results instead [default: on when $DISPLAY is unset].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame.")
@click.option(
    "--max-frames",
    type=click.IntRange(1),
    default=WebcamOptions.max_frames,
    help="Stop after N frames.",
)
@click.option(
    "--roi",
    default=WebcamOptions.roi,
    metavar="X,Y,W,H",
    callback=parse_roi,
    help="Classify only this box of each frame (pixels).",
)
@click.option(
    "--smooth",
    type=click.IntRange(1, 100),
    default=WebcamOptions.smooth,
    help="Average over the last N frames so the label does not flicker.",
)
@threads_option
@runtime_option
@not_sure_option
@capture_options
@one_line_errors(ModelError, RuntimeMissingError, SourceError, ValueError)
def webcam(ctx: click.Context) -> None:
    """Classify a live camera or a video file until it ends, N frames, q, or Ctrl-C."""
    from edge_runtime.webcam import run_webcam

    run_webcam(options_from(ctx))


@main.command(cls=OptionsCommand, options=ServeOptions)
@model_option
@click.option("--host", default=ServeOptions.host, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=ServeOptions.port,
    help="0: any free port.",
)
@click.option(
    "--source",
    type=SourceParam(),
    default=str(ServeOptions.source or "none"),
    help=f"A camera to show live: {SOURCE_HELP}; or none.",
)
@click.option("--loop", is_flag=True, help="Start a video file over when it ends.")
@click.option(
    "--token",
    envvar="FMNIST_TOKEN",
    default=ServeOptions.token,
    callback=lambda ctx, param, value: value or None,
    show_envvar=True,
    help="Require 'Authorization: Bearer TOKEN' on /api, /v2 and /metrics.",
)
@threads_option
@runtime_option
@not_sure_option
@click.option(
    "--max-upload-mb",
    type=Number(0, 1024, min_open=True),
    default=ServeOptions.max_upload_mb,
    help="Refuse request bodies larger than this (413).",
)
@capture_options
@click.option(
    "--watch",
    is_flag=True,
    help="Swap the model in when its file changes (besides SIGHUP and the v2 load request).",
)
@click.option(
    "--systemd-unit", "unit", is_flag=True, help="Print a systemd unit for these options, and exit."
)
@one_line_errors(ModelError, RuntimeMissingError, SourceError, OSError)
def serve(ctx: click.Context) -> None:
    """Serve the model over HTTP: a page, a JSON API, the v2 inference protocol, metrics."""
    try:
        from edge_runtime.serve import SERVICE_ENV, run_server, systemd_unit
    except ImportError as e:
        raise RuntimeMissingError(
            f"{e.name or e} is missing: pip install '.[edge,serve]'"
        ) from None

    options = options_from(ctx, besides=("unit",))
    if ctx.params["unit"]:
        if options.token is not None:
            # A unit file is world-readable: the service reads the token from its own file.
            click.echo(
                f"The token is not written into the unit: put it in {SERVICE_ENV}.", err=True
            )
        click.echo(systemd_unit(options), nl=False)
    else:
        run_server(options)


if __name__ == "__main__":
    main()

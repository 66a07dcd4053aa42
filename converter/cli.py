"""``fmnist-convert``: parse the options, then one call to :func:`converter.pipeline.convert_models`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from converter.convert import IO_TYPES, ConvertError
from converter.pipeline import ConvertOptions
from edge_runtime.cli_support import SHOW_DEFAULTS, OptionsCommand, one_line_errors, options_from
from edge_runtime.photos import PhotoError
from edge_runtime.vocab import MODES, RUNTIMES, check_line
from edge_runtime.worker import WorkerError
from trainer.cli import data_dir_option, out_dir_option
from trainer.data import DataError

# TensorFlow's C++ INFO/WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@click.command(cls=OptionsCommand, options=ConvertOptions, context_settings=SHOW_DEFAULTS)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ConvertOptions.model,
    help="Trained .keras model.",
)
@click.option(
    "--quantize",
    "modes",
    type=click.Choice([*MODES, "all"]),
    required=True,
    callback=lambda ctx, param, value: tuple(MODES.values()) if value == "all" else (MODES[value],),
    help="Which model to make; `all` makes every mode.",
)
@click.option(
    "--representative-samples",
    "samples",
    type=click.IntRange(10, 60000),
    default=ConvertOptions.samples,
    help="Training images (stratified by class) used to calibrate int8/int16x8.",
)
@click.option(
    "--io-type",
    type=click.Choice(IO_TYPES),
    default=ConvertOptions.io_type,
    help="Input/output dtype of the int8-ptq model (int8 always has int8 I/O).",
)
@click.option(
    "--target-runtime",
    type=click.Choice(list(RUNTIMES)),
    default=ConvertOptions.target_runtime,
    help="Refuse modes this runtime cannot load.",
)
@click.option(
    "--format",
    "c_array",
    type=click.Choice(["tflite", "c-array"]),
    default="c-array" if ConvertOptions.c_array else "tflite",
    callback=lambda ctx, param, value: value == "c-array",
    help="c-array also writes model_<mode>.cc/.h for TFLite Micro.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Also write where each int8 model's error sits, layer by layer (int8_debug.json/.png).",
)
@click.option(
    "--mirror-average/--no-mirror-average",
    default=ConvertOptions.mirror_average,
    help="Models answer with the mean over an image and its mirror image "
    "[default: as the model was trained, from the metrics.json beside it].",
)
@click.option(
    "--real-photos/--no-real-photos",
    default=ConvertOptions.real_photos,
    help="Calibrate and fine-tune int8 on the vendored real photos too, and score every model on them.",
)
@out_dir_option
@data_dir_option
@one_line_errors(ConvertError, DataError, PhotoError, WorkerError)
def main(ctx: click.Context) -> None:
    """Convert the Keras model to TFLite, validate every model on the test set, write sidecars."""
    from converter.pipeline import convert_models

    for sidecar in convert_models(options_from(ctx)):
        for check in sidecar.targets:
            click.echo(check_line(check))


if __name__ == "__main__":
    main()

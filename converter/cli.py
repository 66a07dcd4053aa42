"""``fmnist-convert``: parse the options, then one call to :func:`converter.pipeline.convert_models`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from converter.convert import IO_TYPES, ConvertError
from edge_runtime.errors import one_line_errors
from edge_runtime.vocab import DEFAULT_RUNTIME, MODES, RUNTIMES, check_line
from trainer.cli import data_dir_option, out_dir_option
from trainer.data import DataError

# TensorFlow's C++ INFO/WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@click.command()
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("artifacts/model.keras"),
    show_default=True,
    help="Trained .keras model.",
)
@click.option(
    "--quantize",
    "mode",
    type=click.Choice([*MODES, "all"]),
    required=True,
    help="Which model to make; `all` makes every mode.",
)
@click.option(
    "--representative-samples",
    type=click.IntRange(10, 60000),
    default=500,
    show_default=True,
    help="Training images (stratified by class) used to calibrate int8/int16x8.",
)
@click.option(
    "--io-type",
    type=click.Choice(IO_TYPES),
    default="int8",
    show_default=True,
    help="Input/output dtype of the int8 model.",
)
@click.option(
    "--target-runtime",
    type=click.Choice(list(RUNTIMES)),
    default=DEFAULT_RUNTIME,
    show_default=True,
    help="Refuse modes this runtime cannot load.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tflite", "c-array"]),
    default="tflite",
    show_default=True,
    help="c-array also writes model_<mode>.cc/.h for TFLite Micro.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="With int8: write a per-layer quantization error report (int8_debug.json/.png).",
)
@out_dir_option
@data_dir_option
@one_line_errors(ConvertError, DataError)
def main(
    model_path: Path,
    mode: str,
    representative_samples: int,
    io_type: str,
    target_runtime: str,
    fmt: str,
    debug: bool,
    out_dir: Path,
    data_dir: Path | None,
) -> None:
    """Convert the Keras model to TFLite, validate every model on the test set, write sidecars."""
    from converter.pipeline import ConvertOptions, convert_models

    options = ConvertOptions(
        model=model_path,
        modes=MODES if mode == "all" else (mode,),
        out_dir=out_dir,
        samples=representative_samples,
        io_type=io_type,
        target_runtime=target_runtime,
        data_dir=data_dir,
        c_array=fmt == "c-array",
        debug=debug,
    )
    for sidecar in convert_models(options):
        for check in sidecar["targets"]:
            click.echo(check_line(check))


if __name__ == "__main__":
    main()

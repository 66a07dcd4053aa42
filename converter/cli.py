"""``fmnist-convert``: thin click wrapper around :func:`converter.pipeline.convert_models`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from converter.convert import IO_TYPES, MODES, TARGETS, ConvertError
from edge_runtime.errors import one_line_errors
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
    type=click.Choice(TARGETS),
    default="ai-edge-litert",
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
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("artifacts"),
    show_default=True,
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FMNIST_DATA_DIR",
    help="Fashion-MNIST folder (default: the usual lookup).",
)
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
    from converter.pipeline import convert_models, target_checks, write_report_section

    modes = list(MODES) if mode == "all" else [mode]
    sidecars = convert_models(
        model_path,
        modes,
        out_dir,
        representative_samples,
        io_type,
        target_runtime,
        data_dir,
        c_format=fmt == "c-array",
        debug=debug,
    )
    write_report_section(out_dir)
    for what, measured, ok in target_checks(sidecars):
        click.echo(f"{'met   ' if ok else 'MISSED'} {what}: {measured}")


if __name__ == "__main__":
    main()

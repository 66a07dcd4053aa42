"""``fmnist-train``: data, training and report commands. Thin: each calls one library function."""

from __future__ import annotations

import os
from pathlib import Path

import click

from edge_runtime.cli_support import (
    SHOW_DEFAULTS,
    Number,
    OptionsCommand,
    one_line_errors,
    options_from,
)
from edge_runtime.photos import PhotoError
from edge_runtime.vocab import ARTIFACTS
from trainer.batches import AUGMENTATIONS
from trainer.data import DataError
from trainer.train import TrainConfig

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FMNIST_DATA_DIR",
    help="Folder with the four Fashion-MNIST files (default: look them up; see `data info`).",
)
out_dir_option = click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=ARTIFACTS,
    help="Where artifacts are written.",
)


# TensorFlow's C++ INFO/WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@click.group(context_settings=SHOW_DEFAULTS)
def main() -> None:
    """Train the Fashion-MNIST CNN and report on it."""


@main.group()
def data() -> None:
    """Find, fetch and inspect the dataset."""


@data.command("info")
@data_dir_option
@one_line_errors(DataError)
def data_info(data_dir: Path | None) -> None:
    """Print where the data came from, counts per class and checksum status."""
    from trainer.data import describe_data

    click.echo(describe_data(data_dir))


@data.command("fetch")
@data_dir_option
@one_line_errors(DataError)
def data_fetch(data_dir: Path | None) -> None:
    """Make sure a verified copy is available, downloading it if none is found."""
    from trainer.data import load_data

    found = load_data(data_dir)
    click.echo(f"Fashion-MNIST verified in {found.source} ({found.how_found})")


@main.command(cls=OptionsCommand, options=TrainConfig)
@click.option("--epochs", type=click.IntRange(1), default=TrainConfig.epochs)
@click.option("--batch-size", type=click.IntRange(1), default=TrainConfig.batch_size)
@click.option(
    "--learning-rate",
    type=Number(0, min_open=True),
    default=TrainConfig.learning_rate,
)
@click.option("--augment", type=click.Choice(AUGMENTATIONS), default=TrainConfig.augment)
@click.option(
    "--patience",
    type=click.IntRange(1),
    default=TrainConfig.patience,
    help="Epochs without validation gain before stopping early.",
)
@click.option(
    "--validation-size",
    type=click.IntRange(10),
    default=TrainConfig.validation_size,
)
@click.option(
    "--label-smoothing",
    type=Number(0, 1, max_open=True),
    default=TrainConfig.label_smoothing,
    help="Label smoothing of the loss (it bounds the logits: a finer int8 grid).",
)
@click.option(
    "--photos",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    multiple=True,
    default=TrainConfig.photos,
    callback=lambda ctx, param, value: tuple(value),
    help="A folder of labelled photos (a device's DIR/labelled) to train on too; repeatable.",
)
@click.option(
    "--real-photos/--no-real-photos",
    default=TrainConfig.real_photos,
    help="Train on the vendored real-photo collection (data/real-photos) too.",
)
@click.option(
    "--photo-copies",
    type=click.IntRange(1, 50),
    default=TrainConfig.photo_copies,
    help="Examples made of each photo (itself and augmented copies).",
)
@click.option(
    "--photo-share",
    type=Number(0, 1, min_open=True, max_open=True),
    default=TrainConfig.photo_share,
    help="Share of every batch drawn from the photos.",
)
@click.option(
    "--outlier-weight",
    type=Number(0),
    default=TrainConfig.outlier_weight,
    help="Loss weight of the photos of garments with no class (they teach 'not sure').",
)
@click.option("--seed", type=int, default=TrainConfig.seed)
@click.option(
    "--limit",
    type=click.IntRange(100),
    default=None,
    help="Train on this many images only (a quick smoke run).",
)
@data_dir_option
@out_dir_option
@one_line_errors(DataError, PhotoError, OSError)
def fit(ctx: click.Context) -> None:
    """Train, evaluate on the test set and save model.keras, metrics.json, history.json.

    Resumable: if a run is killed, running the same command again continues from the last epoch.
    """
    from trainer.train import run

    config = options_from(ctx, besides=("data_dir", "out_dir"))
    run(config, ctx.params["out_dir"], ctx.params["data_dir"])


@main.command()
@out_dir_option
@one_line_errors(FileNotFoundError)
def report(out_dir: Path) -> None:
    """Write the self-contained OUT_DIR/report.html from the artifacts every step wrote."""
    from trainer.report import write_report

    path = write_report(out_dir)
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()

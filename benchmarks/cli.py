"""``fmnist-bench``: parse the options, then one call to :func:`benchmarks.measure.run_bench`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from benchmarks.measure import BenchOptions
from edge_runtime.cli_support import (
    SHOW_DEFAULTS,
    OptionsCommand,
    fail,
    one_line_errors,
    options_from,
)
from edge_runtime.vocab import RUNTIMES, check_line
from edge_runtime.worker import WorkerError
from trainer.cli import data_dir_option
from trainer.data import DataError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _ints(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if any(n < 1 for n in numbers):
        raise click.BadParameter("values must be ≥ 1")
    return numbers


def _runtimes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(value.split(","))
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown:
        raise click.BadParameter(
            f"unknown runtime(s) {', '.join(unknown)}; use {','.join(RUNTIMES)}"
        )
    return names


SEEDS_HELP = (
    "With --training: time seeds 0…N-1 of both recipes in pairs (the ratio is their median) "
    "and check our mean accuracy over them (a few minutes per seed)."
)


@click.command(cls=OptionsCommand, options=BenchOptions, context_settings=SHOW_DEFAULTS)
@click.option(
    "--models",
    type=click.Path(file_okay=False, path_type=Path),
    default=BenchOptions.models,
    help="Folder with model.keras and model_*.tflite (+ sidecars).",
)
@click.option("--runtimes", default=",".join(BenchOptions.runtimes), callback=_runtimes)
@click.option(
    "--threads",
    default=",".join(map(str, BenchOptions.threads)),
    callback=_ints,
    help="Interpreter threads to try.",
)
@click.option(
    "--batch",
    "batches",
    default=",".join(map(str, BenchOptions.batches)),
    callback=_ints,
    help="Batch sizes to try.",
)
@click.option(
    "--repeats", type=click.IntRange(5), default=BenchOptions.repeats, help="Timed calls per row."
)
@click.option("--quick", is_flag=True, help="1,000 test images and short runs (CI).")
@click.option(
    "--training", is_flag=True, help="Also time `make train` against the seed recipe (minutes)."
)
@click.option("--seeds", type=click.IntRange(1, 10), default=BenchOptions.seeds, help=SEEDS_HELP)
@click.option(
    "--serve",
    is_flag=True,
    help="Also load a live `fmnist-edge serve` with wrk at 16 connections (needs wrk).",
)
@click.option(
    "--peer/--no-peer",
    default=BenchOptions.peer,
    help="Also run the same network on ONNX Runtime (float32 and static int8) as the peer.",
)
@click.option(
    "--compare",
    "compare_to",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="An earlier benchmarks.json: print what changed beyond the noise.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where benchmarks.json/.md go [default: the --models folder].",
)
@data_dir_option
@one_line_errors(DataError, FileNotFoundError, WorkerError, RuntimeError)
def main(ctx: click.Context) -> None:
    """Compare accuracy, size and latency of every model variant against the Keras original."""
    from benchmarks.measure import Result, run_bench
    from benchmarks.tables import write_outputs
    from benchmarks.verdicts import REGRESSIONS, changes_since

    options = options_from(ctx, besides=("compare_to", "out_dir"))
    if options.seeds > 1 and not options.training:
        raise click.UsageError("--seeds trains models: it goes with --training")
    compare_to = ctx.params["compare_to"]
    old = None
    if compare_to is not None:
        try:
            old = Result.from_json(json.loads(compare_to.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            fail(f"{compare_to}: not a benchmarks.json ({e})")
    result = run_bench(options)
    write_outputs(result, ctx.params["out_dir"] or options.models)
    for check in result.targets:
        click.echo(check_line(check))
    if old is not None:
        changes = changes_since(old, result)
        click.echo("\n".join(changes) if changes else "no change beyond the noise")
        if any(line.startswith(REGRESSIONS) for line in changes):
            sys.exit(3)


if __name__ == "__main__":
    main()

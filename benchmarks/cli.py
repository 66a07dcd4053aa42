"""``fmnist-bench``: thin click wrapper around :func:`benchmarks.bench.run_bench`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from edge_runtime.errors import fail, one_line_errors
from trainer.data import DataError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _ints(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        numbers = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if any(n < 1 for n in numbers):
        raise click.BadParameter("values must be ≥ 1")
    return numbers


def _runtimes(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    names = value.split(",")
    unknown = [n for n in names if n not in ("ai-edge-litert", "tflite-runtime")]
    if unknown:
        raise click.BadParameter(
            f"unknown runtime(s) {', '.join(unknown)}; use ai-edge-litert,tflite-runtime"
        )
    return names


@click.command()
@click.option(
    "--models",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("artifacts"),
    show_default=True,
    help="Folder with model.keras and model_*.tflite (+ sidecars).",
)
@click.option(
    "--runtimes", default="ai-edge-litert,tflite-runtime", show_default=True, callback=_runtimes
)
@click.option(
    "--threads",
    default="1,2",
    show_default=True,
    callback=_ints,
    help="Interpreter threads to try.",
)
@click.option(
    "--batch", default="1,32", show_default=True, callback=_ints, help="Batch sizes to try."
)
@click.option(
    "--repeats", type=click.IntRange(5), default=300, show_default=True, help="Timed calls per row."
)
@click.option("--quick", is_flag=True, help="1,000 test images and short runs (CI).")
@click.option(
    "--training", is_flag=True, help="Also time `make train` against the seed recipe (~12 min)."
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
@one_line_errors(DataError, FileNotFoundError, RuntimeError)
def main(
    models: Path,
    runtimes: list[str],
    threads: list[int],
    batch: list[int],
    repeats: int,
    quick: bool,
    training: bool,
    compare_to: Path | None,
    out_dir: Path | None,
) -> None:
    """Compare accuracy, size and latency of every model variant against the Keras original."""
    from benchmarks.bench import compare, run_bench, write_outputs

    if quick:
        repeats = min(repeats, 50)
    result = run_bench(models, runtimes, threads, batch, repeats, quick, training)
    write_outputs(result, out_dir or models)
    for check in result["targets"]:
        click.echo(
            f"{'met   ' if check['met'] else 'MISSED'} {check['target']}: {check['measured']}"
        )
    if compare_to is not None:
        try:
            old = json.loads(compare_to.read_text())
        except json.JSONDecodeError as e:
            fail(f"{compare_to}: not a benchmarks.json ({e})")
        changes = compare(old, result)
        click.echo("\n".join(changes) if changes else "no change beyond the noise")
        if any(line.startswith(("SLOWER", "LESS ACCURATE", "BIGGER")) for line in changes):
            sys.exit(3)


if __name__ == "__main__":
    main()

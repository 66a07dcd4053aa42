"""Each default is declared once: every command's flags default to its options dataclass's fields."""

from __future__ import annotations

import dataclasses

import click
import pytest

from benchmarks.cli import main as bench_main
from converter.cli import main as convert_main
from edge_runtime.cli import main as edge_main
from edge_runtime.cli_support import OptionsCommand
from trainer.cli import main as train_main


def option_commands() -> list[tuple[str, OptionsCommand]]:
    """Every command of the four CLIs that fills an options dataclass."""
    found, todo = [], [("fmnist-train", train_main), ("fmnist-convert", convert_main),
                       ("fmnist-edge", edge_main), ("fmnist-bench", bench_main)]  # fmt: skip
    while todo:
        name, command = todo.pop()
        if isinstance(command, click.Group):
            todo += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        elif isinstance(command, OptionsCommand):
            found.append((name, command))
    return sorted(found, key=lambda item: item[0])


def required_args(command: click.Command) -> list[str]:
    """The least a command needs to parse: a value for each required parameter."""
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        value = param.type.choices[0] if isinstance(param.type, click.Choice) else "x"
        args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return args


def test_every_cli_is_covered():
    names = [name for name, _ in option_commands()]
    assert names == [
        "fmnist-bench",
        "fmnist-convert",
        "fmnist-edge classify",
        "fmnist-edge serve",
        "fmnist-edge webcam",
        "fmnist-train fit",
    ]


@pytest.mark.parametrize(("name", "command"), option_commands(), ids=lambda v: str(v))
def test_flags_default_to_the_options_fields(name: str, command: OptionsCommand, monkeypatch):
    for variable in ("FMNIST_MODEL", "FMNIST_TOKEN", "FMNIST_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    ctx = command.make_context(name, required_args(command))
    fields = {f.name: f for f in dataclasses.fields(command.options)}
    checked = []
    for param in command.params:
        field = fields.get(param.name or "")
        if field is None or param.required:
            continue
        default = (
            field.default
            if field.default_factory is dataclasses.MISSING
            else field.default_factory()
        )
        assert ctx.params[param.name] == default, f"{name} {param.opts[0]}"
        checked.append(param.name)
    assert len(checked) >= 3, checked

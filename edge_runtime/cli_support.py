"""What every command line of the project shares: options objects and one-line errors.

A command declares its flags once, with click decorators, and names its frozen options
dataclass (``@click.command(cls=OptionsCommand, options=TrainConfig)``), whose fields hold the
defaults the flags show. :class:`OptionsCommand` hands its function the click context alone,
and :func:`options_from` turns the parsed flags into that dataclass, field by field, by name: the
flags are not listed a second time as parameters and a third time as constructor arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

SHOW_DEFAULTS = {"show_default": True}
"""``context_settings`` of every command: ``--help`` shows each option's default."""


class Number(click.FloatRange):
    """``click.FloatRange`` that refuses ``nan`` and ``inf``, which pass its bounds (every
    comparison with NaN is false) and then fail far from the flag, or quietly change answers."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class OptionsCommand(click.Command):
    """A click command whose function is called with the click context alone.

    Args:
        options: The frozen dataclass its flags fill (see :func:`options_from`).
    """

    def __init__(self, *args: Any, options: type, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options

    def invoke(self, ctx: click.Context) -> Any:
        return ctx.invoke(self.callback, ctx) if self.callback else None


def options_from(ctx: click.Context, *, besides: tuple[str, ...] = ()) -> Any:
    """The command's parsed parameters as its options dataclass (:class:`OptionsCommand`).

    Each parameter fills the field of the same name: click names a parameter after its flag
    (``--max-upload-mb`` is ``max_upload_mb``) unless its declaration names it.

    Args:
        ctx: The command's context, with every parameter parsed (and converted by callbacks).
        besides: Parameters that are the command's own business, not options (its arguments,
            a switch for what to print).

    Raises:
        TypeError: A parameter matches no field, or a required field no parameter: a mistake in
            the command's declaration, which shows on its first run.
    """
    cls = ctx.command.options  # type: ignore[attr-defined]
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    stray = set(ctx.params) - fields - set(besides)
    if stray:
        raise TypeError(f"{ctx.info_name}: {sorted(stray)} are not fields of {cls.__name__}")
    return cls(**{name: value for name, value in ctx.params.items() if name in fields})


def command_line(
    command: click.Command, options: object, *, leave_out: tuple[str, ...] = ()
) -> list[str]:
    """The flags that make ``command`` parse into ``options``: the inverse of :func:`options_from`.

    A flag is written for every option that fills a field (its first spelling), a switch only
    when on, and nothing for None (every such option's default parses to None). Tuples are
    written comma-separated, floats in their shortest form.

    Args:
        command: The click command.
        options: Its options object.
        leave_out: Fields never written (a secret, say).
    """
    fields = {f.name for f in dataclasses.fields(options)}  # type: ignore[arg-type]
    args: list[str] = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.name not in fields - set(leave_out):
            continue
        value = getattr(options, param.name)
        if param.is_flag:
            args += [param.opts[0]] if value else []
        elif value is not None:
            if isinstance(value, tuple):
                text = ",".join(map(str, value))
            else:
                text = f"{value:g}" if isinstance(value, float) else str(value)
            args += [param.opts[0], text]
    return args


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def one_line_errors(*expected: type[BaseException]) -> Callable[[F], F]:
    """Decorate a click command so that the ``expected`` exceptions end it with one line.

    ``KeyboardInterrupt`` always ends with exit code 130 and a short note, a closed stdout
    (``| head``) silently with 141 (128 + SIGPIPE), as Unix tools do; anything not listed
    keeps its traceback, because that is a bug to report, not bad input.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: object, **kwargs: object) -> object:
            try:
                return func(*args, **kwargs)
            except KeyboardInterrupt:
                fail("interrupted", 130)
            except BrokenPipeError:
                # The reader went away (`| head`): end quietly, as Unix tools do, with stdout
                # pointed at /dev/null so that Python's own flush at exit cannot fail again.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(141)
            except expected as e:
                fail(str(e))

        return wrapper  # type: ignore[return-value]

    return decorate

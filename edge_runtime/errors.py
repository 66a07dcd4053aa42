"""Turn expected failures into one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def one_line_errors(*expected: type[BaseException]) -> Callable[[F], F]:
    """Decorate a click command so that the ``expected`` exceptions end it with one line.

    ``KeyboardInterrupt`` always ends with exit code 130 and a short note; anything not listed
    keeps its traceback, because that is a bug to report, not bad input.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: object, **kwargs: object) -> object:
            try:
                return func(*args, **kwargs)
            except KeyboardInterrupt:
                fail("interrupted", 130)
            except expected as e:
                fail(str(e))

        return wrapper  # type: ignore[return-value]

    return decorate

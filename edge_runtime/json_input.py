"""JSON that comes from outside: request bodies, sidecars and capture records.

``json.loads`` fails in more ways than ``JSONDecodeError``: bytes that are not UTF-8, nesting a
few thousand levels deep (``RecursionError``), an integer of more than 4,300 digits (a plain
``ValueError``). :func:`parse_json` turns each into :class:`JsonInputError`, so that a caller
catches one exception and reports one line. :func:`wrong_field` then checks the values read
against the dataclass they fill, so a hand-edited file is refused where it is read.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from typing import Any


class JsonInputError(ValueError):
    """Text that is not JSON this program can read. ``str()`` is one line."""


def parse_json(text: bytes | str) -> Any:
    """``json.loads(text)``, with every way it fails raised as :class:`JsonInputError`."""
    try:
        return json.loads(text)
    except RecursionError:
        # json.loads recurses once per nesting level: "[[[[…" a few thousand deep overflows.
        raise JsonInputError("nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, the integer digit limit
        raise JsonInputError(str(e).splitlines()[0]) from None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_a(value: Any, hint: Any) -> bool:
    """Whether a JSON value is of an annotated type, at its top level (``dict[str, int]``
    checks for a dict; an int is a float; a bool is neither)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return any(_is_a(value, h) for h in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    kind = typing.get_origin(hint) or hint
    return isinstance(value, int | float) if kind is float else isinstance(value, kind)


def wrong_field(cls: type, values: dict[str, Any]) -> str | None:
    """The first of ``values`` (field name → value, read from JSON) that is not of the type
    dataclass ``cls`` annotates for it, or None when all are."""
    hints = _hints(cls)
    return next((k for k, v in values.items() if not _is_a(v, hints[k])), None)

"""JSON that comes from outside: request bodies, sidecars and capture records.

``json.loads`` fails in more ways than ``JSONDecodeError``: bytes that are not UTF-8, nesting a
few thousand levels deep (``RecursionError``), an integer of more than 4,300 digits (a plain
``ValueError``). :func:`parse_json` turns each into :class:`JsonInputError`, so that a caller
catches one exception and reports one line.
"""

from __future__ import annotations

import json
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

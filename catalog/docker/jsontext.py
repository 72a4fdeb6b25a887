"""JSON from untrusted input, decoded so that only a one-line JSONTextError can go wrong.

Python's decoder fails in ways a caller does not expect from "invalid JSON": a document
nested a thousand levels deep raises RecursionError, an integer of more than 4300 digits a
ValueError, and `NaN`, `Infinity` or `1e400` decode to floats that no JSON encoder
(ours, Go's) can write back. Go's encoding/json, which Docker decodes with, refuses the
last three and stops nesting at 10,000 levels. Here every document an archive, a registry,
a request or a filter hands us goes through `decode_json`: nesting is bounded far below
what the interpreter's stack can take (so encoding the document again is safe too), and
numbers must be finite.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from catalog.errors import InvalidArgument

__all__ = ["MAX_DEPTH", "JSONTextError", "decode_json", "or_empty"]

# Containers (objects and arrays) inside one another. Configs, manifests and indexes are
# a handful of levels deep; Python's own limit is near a thousand.
MAX_DEPTH = 100


class JSONTextError(InvalidArgument, ValueError):
    """Text that is not JSON we accept; the message is one line, without the input.
    Callers say which document it was (an InvalidArchive, an InvalidFilter, ...)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONTextError(f"number {text[:32]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise JSONTextError(f"invalid value {name} (not JSON)")


def decode_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The document `data` holds (UTF-8 when bytes); JSONTextError when it is not JSON,
    holds a non-finite number, or nests containers deeper than `max_depth`."""
    try:
        # UTF-8, as Go reads it: Python would guess UTF-16 or UTF-32 from the first bytes.
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text, parse_float=_finite_float, parse_constant=_constant)
    except JSONTextError:
        raise
    except RecursionError:
        raise JSONTextError(f"nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONTextError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise JSONTextError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise JSONTextError("a number has too many digits") from None
    _check_depth(document, max_depth)
    return document


def _check_depth(document: Any, max_depth: int) -> None:
    """Walk the containers without recursion; JSONTextError past `max_depth`."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise JSONTextError(f"nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def or_empty(value: Any, empty: Any) -> Any:
    """`empty` for a missing or null member; anything else as it is, for the type checks
    that follow: a falsy `{}`, `""` or `0` where a list belongs is refused, as Go refuses
    it, where `value or empty` would take it for nothing."""
    return empty if value is None else value

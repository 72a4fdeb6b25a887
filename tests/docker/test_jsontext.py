"""JSON from untrusted input: only a one-line JSONTextError can go wrong (issue 12)."""

from __future__ import annotations

import pytest

from catalog.docker.filters import filters_from_json
from catalog.docker.jsontext import MAX_DEPTH, JSONTextError, decode_json
from catalog.errors import InvalidFilter


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_bound_decodes() -> None:
    document = decode_json(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        document = document[0]
    assert document == []
    assert decode_json('{"a": {"b": [1, 2.5, "c", null, true]}}') == {
        "a": {"b": [1, 2.5, "c", None, True]}
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
        # Deep enough for Python's own decoder to raise RecursionError.
        (nested(50_000), f"nested deeper than {MAX_DEPTH} levels"),
        ('{"a":' * 5000 + "1" + "}" * 5000, f"nested deeper than {MAX_DEPTH} levels"),
        ("1" * 5000, "a number has too many digits"),
        ("NaN", "invalid value NaN (not JSON)"),
        ("[-Infinity]", "invalid value -Infinity (not JSON)"),
        ('{"size": 1e400}', "number 1e400 is out of range"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b'["\xc3"]', "not UTF-8"),
        ("[1,", "Expecting value: line 1 column 4 (char 3)"),
        ("", "Expecting value"),
    ],
)
def test_refused_with_one_line(text: str | bytes, message: str) -> None:
    with pytest.raises(JSONTextError) as caught:
        decode_json(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_deeply_nested_filter_is_an_invalid_filter() -> None:
    """It was a RecursionError, and an HTTP 500 from the server."""
    with pytest.raises(InvalidFilter, match=r"^invalid filter$"):
        filters_from_json('{"label":' + nested(100_000) + "}")

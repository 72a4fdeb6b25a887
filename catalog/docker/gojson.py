"""Go's encoding/json where its words reach a user: the JSON text `json.Marshal` writes
(what the daemon sends), the syntax errors `json.Unmarshal`
reports (`invalid character 'x' looking for beginning of value`, `unexpected end of JSON
input`), its type errors for a struct of string fields, and its key matching (exact, else
case-insensitive; the last of several wins).

The daemon decodes some query parameters (`platform`) with `json.Unmarshal` and answers
its error text; so does catalog, with the same words.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from catalog.docker.jsontext import MAX_DEPTH

UNEXPECTED_END = "unexpected end of JSON input"
_SPACE = b" \t\r\n"
_HEX = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"
_ESCAPES = b'"\\/bfnrtu'
# strconv.Quote's named escapes.
_NAMED = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v"}


class GoJSONError(ValueError):
    """What `json.Unmarshal` returned, as its Error() text."""


def quote_char(byte: int) -> str:
    """encoding/json quoteChar: the byte in single quotes, as strconv.Quote shows it."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    char = chr(byte)  # Go's string(c) of a byte is the rune U+00XX
    if byte == 0x5C:
        shown = "\\\\"
    elif byte in _NAMED:
        shown = _NAMED[byte]
    elif char.isprintable():
        shown = char
    elif byte < 0x80:
        shown = f"\\x{byte:02x}"
    else:
        shown = f"\\u{byte:04x}"
    return f"'{shown}'"


def _invalid(byte: int, context: str) -> GoJSONError:
    return GoJSONError(f"invalid character {quote_char(byte)} {context}")


class _Scanner:
    """encoding/json's scanner: the first syntax error of a document, in Go's words."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.depth = 0

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def next_byte(self) -> int:
        byte = self.peek()
        if byte is None:
            raise GoJSONError(UNEXPECTED_END)
        self.pos += 1
        return byte

    def skip_space(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _SPACE:
            self.pos += 1

    def document(self) -> None:
        self.value(self.next_non_space())
        self.skip_space()
        if self.pos < len(self.data):
            raise _invalid(self.data[self.pos], "after top-level value")

    def next_non_space(self) -> int:
        self.skip_space()
        return self.next_byte()

    def value(self, byte: int) -> None:
        if byte in (ord("{"), ord("[")):
            # Go's scanner stops at 10,000 levels; untrusted JSON stops at MAX_DEPTH here
            # (docs/differences.md §16), before Python's recursion limit.
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise GoJSONError("exceeded max depth")
            if byte == ord("{"):
                self.object()
            else:
                self.array()
            self.depth -= 1
        elif byte == ord('"'):
            self.string()
        elif byte == ord("-") or byte in _DIGITS:
            self.number(byte)
        elif byte == ord("t"):
            self.literal("true")
        elif byte == ord("f"):
            self.literal("false")
        elif byte == ord("n"):
            self.literal("null")
        else:
            raise _invalid(byte, "looking for beginning of value")

    def object(self) -> None:
        byte = self.next_non_space()
        if byte == ord("}"):
            return
        while True:
            if byte != ord('"'):
                raise _invalid(byte, "looking for beginning of object key string")
            self.string()
            byte = self.next_non_space()
            if byte != ord(":"):
                raise _invalid(byte, "after object key")
            self.value(self.next_non_space())
            byte = self.next_non_space()
            if byte == ord("}"):
                return
            if byte != ord(","):
                raise _invalid(byte, "after object key:value pair")
            byte = self.next_non_space()

    def array(self) -> None:
        byte = self.next_non_space()
        if byte == ord("]"):
            return
        while True:
            self.value(byte)
            byte = self.next_non_space()
            if byte == ord("]"):
                return
            if byte != ord(","):
                raise _invalid(byte, "after array element")
            byte = self.next_non_space()

    def string(self) -> None:
        while True:
            byte = self.next_byte()
            if byte == ord('"'):
                return
            if byte < 0x20:
                raise _invalid(byte, "in string literal")
            if byte != ord("\\"):
                continue
            byte = self.next_byte()
            if byte not in _ESCAPES:
                raise _invalid(byte, "in string escape code")
            if byte == ord("u"):
                for _ in range(4):
                    byte = self.next_byte()
                    if byte not in _HEX:
                        raise _invalid(byte, "in \\u hexadecimal character escape")

    def number(self, byte: int) -> None:
        if byte == ord("-"):
            byte = self.next_byte()
            if byte not in _DIGITS:
                raise _invalid(byte, "in numeric literal")
        if byte != ord("0"):
            self.digits()
        byte_or_none = self.peek()
        if byte_or_none == ord("."):
            self.pos += 1
            byte = self.next_byte()
            if byte not in _DIGITS:
                raise _invalid(byte, "after decimal point in numeric literal")
            self.digits()
            byte_or_none = self.peek()
        if byte_or_none in (ord("e"), ord("E")):
            self.pos += 1
            byte = self.next_byte()
            if byte in (ord("+"), ord("-")):
                byte = self.next_byte()
            if byte not in _DIGITS:
                raise _invalid(byte, "in exponent of numeric literal")
            self.digits()

    def digits(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _DIGITS:
            self.pos += 1

    def literal(self, word: str) -> None:
        for expected in word[1:]:
            byte = self.next_byte()
            if byte != ord(expected):
                raise _invalid(byte, f"in literal {word} (expecting {quote_char(ord(expected))})")


def check_syntax(data: bytes) -> None:
    """GoJSONError with encoding/json's text if `data` is not one JSON value."""
    _Scanner(data).document()


_KINDS = {
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}


def _kind(value: Any) -> str:
    for python_type, kind in _KINDS.items():
        if isinstance(value, python_type):
            return kind
    return "null"


def unmarshal_struct(
    text: str, *, go_type: str, fields: Mapping[str, str]
) -> dict[str, str | list[str]]:
    """`json.Unmarshal` of `text` into a Go struct whose fields (by JSON name) are
    `string` or `[]string`: the fields set, or GoJSONError with Go's text.

    `go_type` is the struct's package-qualified type (`v1.Platform`). Keys match a field
    exactly, else case-insensitively; unknown keys are ignored; null leaves a field as it
    was; a value of the wrong kind is Go's UnmarshalTypeError (the first one met).
    """
    check_syntax(text.encode())
    document = json.loads(text)  # valid and at most MAX_DEPTH deep: checked above
    struct = go_type.rpartition(".")[2]
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise GoJSONError(
            f"json: cannot unmarshal {_kind(document)} into Go value of type {go_type}"
        )
    result: dict[str, str | list[str]] = {}
    first_error: GoJSONError | None = None
    folded = {name.lower(): name for name in reversed(list(fields))}
    for key, value in document.items():
        name = key if key in fields else folded.get(key.lower())
        if name is None or value is None:
            continue
        field_type = fields[name]
        error = None
        if field_type == "string":
            if isinstance(value, str):
                result[name] = value
            else:
                error = (_kind(value), name, "string")
        elif not isinstance(value, list):
            error = (_kind(value), name, field_type)
        else:
            # An element of the wrong kind (or null) is left as Go's zero value, "".
            result[name] = [item if isinstance(item, str) else "" for item in value]
            bad = [item for item in value if item is not None and not isinstance(item, str)]
            if bad:
                error = (_kind(bad[0]), name, "string")
        if error is not None and first_error is None:
            kind, field, wanted = error
            first_error = GoJSONError(
                f"json: cannot unmarshal {kind} into Go struct field {struct}.{field}"
                f" of type {wanted}"
            )
    if first_error is not None:
        raise first_error
    return result


_MARSHAL_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json_text(value: Any, *, sort_keys: bool = False) -> str:
    """`value` as `json.Marshal`'s text (no trailing newline): compact, UTF-8 kept, `<`,
    `>`, `&` (and U+2028, U+2029) escaped, which is what the Docker daemon sends; with
    `sort_keys`, every object's keys sorted, as Go encodes a map."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return text.translate(_MARSHAL_ESCAPES)


def marshal(document: Any) -> str:
    """`json.Marshal` of a map: its keys sorted as Go sorts a map's."""
    return go_json_text(document, sort_keys=True)


__all__ = [
    "UNEXPECTED_END",
    "GoJSONError",
    "check_syntax",
    "go_json_text",
    "marshal",
    "quote_char",
    "unmarshal_struct",
]

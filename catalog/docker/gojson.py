"""JSON as Go's encoding/json writes it: compact, UTF-8, with `<`, `>`, `&`, U+2028 and
U+2029 escaped (its HTML-safe default), which is what the Docker daemon sends."""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_GO_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def go_json_text(value: Any, *, sort_keys: bool = False) -> str:
    """`value` as Go's json.Marshal text (no trailing newline); with `sort_keys`, every
    object's keys sorted, as Go encodes a map."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return text.translate(_GO_ESCAPES)

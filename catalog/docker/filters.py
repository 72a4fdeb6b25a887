"""Docker's filter arguments: parsing (CLI and API forms), validation and error texts,
and the label checks the listing and prune need (docs/listing.md §2, §3).

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalog.docker.jsontext import JSONTextError, decode_json
from catalog.errors import InvalidFilter

_TRUTHY = frozenset({"1", "true"})
_FALSY = frozenset({"0", "false"})
# containerd labels.Validate
MAX_LABEL_SIZE = 4096


def invalid_filter(name: str = "", values: Iterable[str] | None = None) -> InvalidFilter:
    """moby's invalidFilter texts: `invalid filter`, `invalid filter 'k'`, `... 'k=[a b]'`."""
    if not name:
        return InvalidFilter("invalid filter")
    if values is None:
        return InvalidFilter(f"invalid filter '{name}'")
    return InvalidFilter(f"invalid filter '{name}=[{' '.join(values)}]'")


class FilterArgs:
    """Filter names and their values; values are a set, kept in the order first given."""

    def __init__(self, items: Mapping[str, Iterable[str]] | None = None) -> None:
        self._values: dict[str, dict[str, None]] = {}
        for name, values in (items or {}).items():
            self._values.setdefault(name, {})
            for value in values:
                self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._values.setdefault(name, {})[value] = None

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __bool__(self) -> bool:
        return bool(self._values)

    def names(self) -> list[str]:
        return list(self._values)

    def get(self, name: str) -> list[str]:
        return list(self._values.get(name, {}))

    def to_dict(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self._values.items()}

    def validate(self, accepted: Iterable[str]) -> None:
        """`invalid filter '<name>'` for the first name not accepted."""
        allowed = set(accepted)
        for name in self._values:
            if name not in allowed:
                raise invalid_filter(name)

    def get_bool_or_default(self, name: str, default: bool) -> bool:
        """moby GetBoolOrDefault: true/1 or false/0; anything else, or both, is an error."""
        if name not in self._values:
            return default
        values = self.get(name)
        if not values:
            raise invalid_filter(name)
        truthy = any(v in _TRUTHY for v in values)
        falsy = any(v in _FALSY for v in values)
        if truthy == falsy or any(v not in _TRUTHY | _FALSY for v in values):
            raise invalid_filter(name, values)
        return truthy

    def __repr__(self) -> str:
        return f"FilterArgs({self.to_dict()!r})"


def parse_filter_flags(flags: Iterable[str]) -> FilterArgs:
    """The docker CLI's `-f name=value` parsing: split at the first `=`, name trimmed and
    lower-cased, value trimmed."""
    args = FilterArgs()
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not sep:
            raise InvalidFilter("bad format of filter (expected name=value)")
        args.add(name.strip().lower(), value.strip())
    return args


def filters_from_json(text: str) -> FilterArgs:
    """The API's `filters` parameter: `{"k": {"v": true}}` or the legacy `{"k": ["v"]}`."""
    if not text:
        return FilterArgs()
    try:
        document = decode_json(text)
    except JSONTextError:
        raise invalid_filter() from None
    if not isinstance(document, dict):
        raise invalid_filter()
    args = FilterArgs()
    for name, values in document.items():
        if isinstance(values, dict) and all(isinstance(v, bool) for v in values.values()):
            args._values.setdefault(name, {})
            for value, enabled in values.items():
                if enabled:
                    args.add(name, value)
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            args._values.setdefault(name, {})
            for value in values:
                args.add(name, value)
        else:
            raise invalid_filter()
    return args


@dataclass(frozen=True)
class LabelCheck:
    """One `label`/`label!` value: key present (value None) or key equal to value; negated."""

    key: str
    value: str | None
    negate: bool


def label_checks(args: FilterArgs) -> list[LabelCheck]:
    """Docker's (containerd store) label and label! semantics: every check must hold; a
    key ending in `!` (`label=k!=v`) flips the check, as setupLabelFilter does."""
    checks = []
    for name in ("label", "label!"):
        for raw in args.get(name):
            key, sep, value = raw.partition("=")
            negate = name == "label!"
            if key.endswith("!"):
                key, negate = key[:-1], not negate
            size = len(key) + len(value)
            if size > MAX_LABEL_SIZE:
                raise InvalidFilter(
                    f"label key and value length ({size} bytes) greater than maximum size "
                    f"({MAX_LABEL_SIZE} bytes), key: {key[:64]}: invalid argument"
                )
            checks.append(LabelCheck(key, value if sep else None, negate))
    return checks


def kv_checks(args: FilterArgs, name: str) -> list[tuple[str, str | None]]:
    """moby MatchKVList's terms for `name`: (key, value) or (key, None) for presence."""
    terms: list[tuple[str, str | None]] = []
    for raw in args.get(name):
        key, sep, value = raw.partition("=")
        terms.append((key, value if sep else None))
    return terms


__all__ = [
    "FilterArgs",
    "LabelCheck",
    "filters_from_json",
    "invalid_filter",
    "kv_checks",
    "label_checks",
    "parse_filter_flags",
]

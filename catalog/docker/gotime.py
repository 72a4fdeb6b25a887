"""Go's time parsing, as far as Docker's `until` filter uses it (docs/listing.md §3.5).

Pure: no SQLAlchemy, no Typer. Error texts are Go's, since Docker shows them as they are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from catalog.errors import InvalidArgument

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


class GoTimeError(InvalidArgument, ValueError):
    """A time or duration Go refuses; the message is Go's (callers add which value)."""


# Go's times span billions of years; a datetime (and so the database) holds years 1 to
# 9999. Times beyond are kept as the nearest end, so that they still compare as Go would
# compare them with anything a catalog can store (docs/differences.md §3).
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def unix_seconds(value: datetime) -> int:
    """Go's `Time.Unix()`: whole seconds since 1970, rounded down, exactly (a float
    timestamp rounds the last microsecond of 9999 up into year 10000)."""
    return (value - UNIX_EPOCH) // _ONE_SECOND


def from_unix(seconds: int, microseconds: int = 0) -> datetime:
    """Go's `time.Unix(seconds, 0)` in UTC, kept within EARLIEST..LATEST."""
    try:
        return UNIX_EPOCH + timedelta(seconds=seconds, microseconds=microseconds)
    except OverflowError:
        return EARLIEST if seconds < 0 else LATEST


def shifted(value: datetime, delta: timedelta) -> datetime:
    """`value + delta`, kept within EARLIEST..LATEST (Go's Add does not overflow there)."""
    try:
        return value + delta
    except OverflowError:
        return EARLIEST if delta < timedelta(0) else LATEST


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(value: str) -> str:
    """Go's strconv.Quote, for the values Go's errors show."""
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def parse_duration(value: str) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    original, s = value, value
    negative = False
    if s and s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise GoTimeError(f'time: invalid duration "{original}"')
    total = 0
    while s:
        match = _DURATION_PART.match(s)
        assert match is not None
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not fraction:
            raise GoTimeError(f'time: invalid duration "{original}"')
        if not unit:
            raise GoTimeError(f'time: missing unit in duration "{original}"')
        if unit not in _DURATION_UNITS:
            raise GoTimeError(f'time: unknown unit "{unit}" in duration "{original}"')
        scale = _DURATION_UNITS[unit]
        if len(whole.lstrip("0")) > 19:  # past int64 whatever the unit (Go: overflow)
            raise GoTimeError(f'time: invalid duration "{original}"')
        total += int(whole or "0") * scale
        if fraction:
            # Go reads digits past nanosecond precision and ignores them.
            fraction = fraction[:18]
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > (1 << 63) - 1:
            raise GoTimeError(f'time: invalid duration "{original}"')
        s = s[match.end() :]
    return -total if negative else total


# The elements of the layouts Docker's timestamp.Parse uses, longest first.
_ELEMENTS = ("2006", ".999999999", "Z07:00", "01", "02", "15", "04", "05")


def _layout_elements(layout: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(layout):
        for element in _ELEMENTS:
            if layout.startswith(element, i):
                out.append(element)
                i += len(element)
                break
        else:
            out.append(layout[i])
            i += 1
    return out


def _digits(value: str, fixed: bool) -> tuple[int, str] | None:
    """Go's getnum: one or two digits, exactly two when `fixed`."""
    if not value or not value[0].isdigit():
        return None
    if len(value) < 2 or not value[1].isdigit():
        if fixed:
            return None
        return int(value[0]), value[1:]
    return int(value[:2]), value[2:]


def parse_time(layout: str, value: str, zone: timezone = UTC) -> tuple[datetime, int]:
    """Go's time.Parse / ParseInLocation for Docker's layouts: (time to the microsecond,
    nanoseconds within the second). A layout without a zone uses `zone`."""
    original = value
    year = month = day = 1
    hour = minute = second = nanos = 0
    # The zone's offset east of UTC, as Go keeps it (up to 24 hours and 60 minutes,
    # which a Python timezone cannot hold), or None when the value names no zone.
    offset: timedelta | None = None

    def cannot(rest: str, element: str) -> GoTimeError:
        return GoTimeError(
            f"parsing time {go_quote(original)} as {go_quote(layout)}: "
            f"cannot parse {go_quote(rest)} as {go_quote(element)}"
        )

    for element in _layout_elements(layout):
        rest = value
        if element == "2006":
            if len(value) < 4 or not value[:4].isdigit():
                raise cannot(rest, element)
            year, value = int(value[:4]), value[4:]
        elif element in ("01", "02", "15", "04", "05"):
            got = _digits(value, fixed=element != "15")
            if got is None:
                raise cannot(rest, element)
            number, value = got
            if element == "01":
                month = number
                if not 1 <= month <= 12:
                    raise GoTimeError(f"parsing time {go_quote(original)}: month out of range")
            elif element == "02":
                day = number
            elif element == "15":
                hour = number
                if hour > 23:
                    raise GoTimeError(f"parsing time {go_quote(original)}: hour out of range")
            elif element == "04":
                minute = number
                if minute > 59:
                    raise GoTimeError(f"parsing time {go_quote(original)}: minute out of range")
            else:
                second = number
                if second > 59:
                    raise GoTimeError(f"parsing time {go_quote(original)}: second out of range")
                # Go accepts a fraction after the seconds even when the layout has none.
                if len(value) >= 2 and value[0] in ".," and value[1].isdigit():
                    nanos, value = _fraction(value)
        elif element == ".999999999":
            if len(value) >= 2 and value[0] in ".," and value[1].isdigit():
                nanos, value = _fraction(value)
        elif element == "Z07:00":
            if value[:1] == "Z":
                offset, value = timedelta(0), value[1:]
            elif (
                len(value) >= 6
                and value[0] in "+-"
                and value[1:3].isdigit()
                and value[3] == ":"
                and value[4:6].isdigit()
            ):
                hours, minutes = int(value[1:3]), int(value[4:6])
                for number, limit, what in ((hours, 24, "hour"), (minutes, 60, "minute")):
                    if number > limit:  # Go's bounds: some write offsets of 24 hours
                        raise GoTimeError(
                            f"parsing time {go_quote(original)}: time zone offset {what} "
                            "out of range"
                        )
                sign = -1 if value[0] == "-" else 1
                offset = sign * timedelta(hours=hours, minutes=minutes)
                value = value[6:]
            else:
                raise cannot(rest, element)
        else:
            if not value.startswith(element):
                raise cannot(rest, element)
            value = value[len(element) :]
    if value:
        raise GoTimeError(f"parsing time {go_quote(original)}: extra text: {go_quote(value)}")
    # Year 0 is a year for Go (a leap year, as 2000): check the date in 2000, then keep
    # the time as the earliest a datetime holds.
    try:
        local = datetime(year or 2000, month, day, hour, minute, second, nanos // 1000)
    except ValueError:
        raise GoTimeError(f"parsing time {go_quote(original)}: day out of range") from None
    if year == 0:
        return EARLIEST, nanos
    if offset is None:
        offset = zone.utcoffset(None)
    try:
        return (local - offset).replace(tzinfo=UTC), nanos
    except OverflowError:
        return (EARLIEST if year == 1 else LATEST), nanos


def _fraction(value: str) -> tuple[int, str]:
    i = 1
    while i < len(value) and value[i].isdigit():
        i += 1
    digits = value[1:i][:9].ljust(9, "0")
    return int(digits), value[i:]


def _unix_timestamp(value: str) -> tuple[datetime, int]:
    seconds_text, dot, nanos_text = value.partition(".")
    if not re.fullmatch(r"[+-]?[0-9]+", seconds_text):
        raise GoTimeError(f"invalid seconds {go_quote(seconds_text)}: invalid syntax")
    digits = seconds_text.lstrip("+-").lstrip("0")
    seconds = int(seconds_text) if len(digits) <= 19 else _INT64[1] + 1  # int() stops at 4300
    if not _INT64[0] <= seconds <= _INT64[1]:
        # strconv.ParseInt's range error, as moby's parseTimestamp words it.
        raise GoTimeError(f"invalid seconds {go_quote(seconds_text)}: value out of range")
    if not dot or nanos_text in ("", "0", "000000000"):
        return from_unix(seconds), 0
    if len(nanos_text) > 20:
        raise GoTimeError(f"invalid nanoseconds: length {len(nanos_text)} exceeds maximum 20")
    for i, c in enumerate(nanos_text):
        if not "0" <= c <= "9":
            raise GoTimeError(f"invalid nanoseconds: invalid character {c!r} at position {i}")
    nanos = int(nanos_text[:9].ljust(9, "0"))
    return from_unix(seconds, nanos // 1000), nanos


def parse_docker_timestamp(value: str, now: datetime) -> datetime:
    """moby's timestamp.Parse: a Go duration before `now`, an RFC 3339-like date (in the
    zone of `now` when it names none), or Unix seconds[.fraction]; to the microsecond."""
    if not value.strip():
        raise GoTimeError("failed to parse value as time or duration: value is empty")
    if value != "0":
        try:
            duration = timedelta(microseconds=parse_duration(value) // 1000)
            return shifted(now.astimezone(UTC), -duration)
        except GoTimeError:
            pass
    in_location = not any(c in value for c in "zZ+") and value.count("-") != 3
    if "." in value:
        layout = "2006-01-02T15:04:05.999999999" + ("" if in_location else "Z07:00")
    elif "T" in value:
        colons = value.count(":")
        if not in_location and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1
        base = ("2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05")[min(colons, 2)]
        layout = base + ("" if in_location else "Z07:00")
    else:
        layout = "2006-01-02" + ("" if in_location else "Z07:00")
    zone = now.tzinfo if isinstance(now.tzinfo, timezone) else UTC
    try:
        return parse_time(layout, value, zone)[0]
    except GoTimeError:
        if "-" in value:
            raise
    try:
        return _unix_timestamp(value)[0]
    except GoTimeError as exc:
        raise GoTimeError(f"failed to parse value as time or duration: {exc}") from None

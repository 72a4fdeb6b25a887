"""Sizes and times shown as the docker CLI shows them: go-units' HumanSize and
HumanDuration, and Go's time layouts.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from catalog.docker.gotime import from_unix, unix_seconds

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
# docker/cli formatter: creation times before this are not shown in human units.
HUMAN_EPOCH = unix_seconds(datetime(2000, 1, 1, tzinfo=UTC))


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units and `%.<precision>g`.

    `docker images` uses precision 3; go-units' HumanSize (docker system df) uses 4.
    """
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(_DECIMAL_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.{precision}g}{_DECIMAL_UNITS[unit]}"


def human_duration(duration: timedelta) -> str:
    """go-units HumanDuration: `Less than a second`, `About a minute`, `3 weeks`, ..."""
    total = duration.total_seconds()
    seconds = int(total)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(total / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(total / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(total / 3600) // 24 // 365} years"


# Go's time.Duration is int64 nanoseconds: Time.Sub saturates at about 292 years.
_MAX_DURATION = timedelta(microseconds=((1 << 63) - 1) // 1000)
# 400 Gregorian years repeat the calendar exactly (leap years, weekdays).
_GREGORIAN_CYCLE = timedelta(days=146097)


def created_since(created: datetime | int, now: datetime | None = None) -> str:
    """`<duration> ago`, as docker's CREATED columns show a creation time: Go's Sub
    saturates (anything older than about 292 years is `292 years ago`) and a time in
    the future is `Less than a second ago`."""
    when = from_unix(created) if isinstance(created, int) else created
    elapsed = (now or datetime.now(UTC)) - when
    return human_duration(min(max(elapsed, -_MAX_DURATION), _MAX_DURATION)) + " ago"


def _local(value: datetime) -> tuple[datetime, int]:
    """`value` in the local time zone, and a number of years to add to what it shows:
    near the ends of a datetime's range (years 1 and 9999) the local time may fall
    outside it, and is then computed 400 years away, which shows the same date."""
    try:
        return value.astimezone(), 0
    except OverflowError:
        years = 400 if value.year < 5000 else -400
        cycles = 1 if years > 0 else -1
        return (value + cycles * _GREGORIAN_CYCLE).astimezone(), -years


def go_rfc3339(unix: int) -> str:
    """Go's `time.Unix(n, 0).Format(time.RFC3339)` in the local time zone."""
    local, years = _local(from_unix(unix))
    text = f"{local.year + years:04d}" + local.strftime("-%m-%dT%H:%M:%S")
    offset = local.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def go_time_string(value: datetime) -> str:
    """Go's `time.Time.String()` in the local zone: `2024-01-01 00:00:00 +0000 UTC`."""
    local, years = _local(value)
    return (
        f"{local.year + years:04d}" + local.strftime("-%m-%d %H:%M:%S %z ") + (local.tzname() or "")
    )

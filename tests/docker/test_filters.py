"""Filter parsing, Go time parsing, and the path.Match-to-regex translation."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.docker.filters import FilterArgs, filters_from_json, label_checks, parse_filter_flags
from catalog.docker.gotime import (
    EARLIEST,
    LATEST,
    GoTimeError,
    from_unix,
    parse_docker_timestamp,
    parse_duration,
    unix_seconds,
)
from catalog.docker.humanize import created_since, go_rfc3339, go_time_string
from catalog.docker.pathmatch import BadPattern, path_match, path_pattern_regex
from catalog.errors import InvalidFilter


def test_cli_flags_split_at_the_first_equals() -> None:
    args = parse_filter_flags([" Dangling = true ", "label=a=b=c", "label!=foo", "label=k"])
    assert args.to_dict() == {"dangling": ["true"], "label": ["a=b=c", "k"], "label!": ["foo"]}
    with pytest.raises(InvalidFilter, match=r"^bad format of filter \(expected name=value\)$"):
        parse_filter_flags(["dangling"])


def test_values_are_a_set() -> None:
    assert parse_filter_flags(["a=1", "a=1", "a=2"]).get("a") == ["1", "2"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["true"], True), (["false"], False), (["1"], True), (["0"], False), (["true", "1"], True)],
)
def test_bool_values(values: list[str], expected: bool) -> None:
    assert FilterArgs({"dangling": values}).get_bool_or_default("dangling", False) is expected


@pytest.mark.parametrize(
    "values", [["potato"], ["banana", "potato"], ["false", "true"], ["false", "true", "1"]]
)
def test_bad_bool_values(values: list[str]) -> None:
    with pytest.raises(InvalidFilter) as raised:
        FilterArgs({"dangling": values}).get_bool_or_default("dangling", False)
    assert raised.value.message == f"invalid filter 'dangling=[{' '.join(values)}]'"


def test_absent_is_the_default_and_empty_is_invalid() -> None:
    assert FilterArgs().get_bool_or_default("dangling", True) is True
    with pytest.raises(InvalidFilter, match=r"^invalid filter 'dangling'$"):
        FilterArgs({"dangling": []}).get_bool_or_default("dangling", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"key": ["value"]}', {"key": ["value"]}),
        ('{"key": {"value": true}}', {"key": ["value"]}),
        ('{"a": ["1", "2"], "b": {"x": true, "y": true}}', {"a": ["1", "2"], "b": ["x", "y"]}),
        ("", {}),
    ],
)
def test_api_json(text: str, expected: dict[str, list[str]]) -> None:
    assert filters_from_json(text).to_dict() == expected


@pytest.mark.parametrize(
    "text", ["anything", "['a','list']", "{'key': 'value'}", '{"key": "value"}']
)
def test_api_json_refused(text: str) -> None:
    with pytest.raises(InvalidFilter, match=r"^invalid filter$"):
        filters_from_json(text)


def test_validate_names_the_unknown_filter() -> None:
    with pytest.raises(InvalidFilter, match=r"^invalid filter 'bogus'$"):
        FilterArgs({"dangling": ["true"], "bogus": ["x"]}).validate({"dangling"})


def test_label_checks() -> None:
    args = parse_filter_flags(["label=a", "label=b=", "label=c!=d", "label!=e=f"])
    assert [(c.key, c.value, c.negate) for c in label_checks(args)] == [
        ("a", None, False),
        ("b", "", False),
        ("c", "d", True),
        ("e", "f", True),
    ]


NOW = datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2006-01-02T15:04:05.999999999+07:00", datetime(2006, 1, 2, 8, 4, 5, 999999, UTC)),
        ("2006-01-02T15:04:05", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("2006-01-02T15:04-00:00", datetime(2006, 1, 2, 15, 4, tzinfo=UTC)),
        ("2006-01-02T1", datetime(2006, 1, 2, 1, tzinfo=UTC)),
        ("2006-01-02-00:01", datetime(2006, 1, 2, 0, 1, tzinfo=UTC)),
        ("2006-01-02", datetime(2006, 1, 2, tzinfo=UTC)),
        ("1136073600", datetime(2006, 1, 1, tzinfo=UTC)),
        ("1136073600.000001", datetime(2006, 1, 1, 0, 0, 0, 1, UTC)),
        ("1136073600." + "1" * 20, datetime(2006, 1, 1, 0, 0, 0, 111111, UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("-1m", NOW + timedelta(minutes=1)),
        ("0m", NOW),
        ("1m", NOW - timedelta(minutes=1)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("1h30m", NOW - timedelta(minutes=90)),
    ],
)
def test_until_values(value: str, expected: datetime) -> None:
    assert parse_docker_timestamp(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2006-01-02T15:04:0Z",
        "2006-01-02T15:0",
        "2006-01-02T",
        "2006-01-02TZ",
        " 1136073600 \t",
        "foo.bar",
        "1136073600.bar",
        "1136073600.000000001bar",
        "1136073600." + "1" * 21,
        "invalid",
        "",
    ],
)
def test_until_errors(value: str) -> None:
    with pytest.raises(GoTimeError):
        parse_docker_timestamp(value, NOW)


def test_until_error_texts() -> None:
    with pytest.raises(GoTimeError) as raised:
        parse_docker_timestamp(" 1136073600 \t", NOW)
    assert str(raised.value) == (
        'failed to parse value as time or duration: invalid seconds " 1136073600 \\t": '
        "invalid syntax"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Go holds these; a datetime (and the database) stops at years 1 and 9999.
        ("99999999999", datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),
        ("999999999999", LATEST),
        ("-999999999999", None),  # a `-`: taken for a date, which fails
        ("9223372036854775807", LATEST),
        ("9999-12-31T23:00:00-05:00", LATEST),
        ("0001-01-01T00:00:00+01:00", EARLIEST),
        ("0000-01-01", EARLIEST),
        ("0000-02-29T12:00:00Z", EARLIEST),
        ("-2562047h", NOW + timedelta(hours=2562047)),
    ],
)
def test_until_beyond_a_datetime_is_its_nearest_end(value: str, expected: datetime | None) -> None:
    """Out-of-range times were OverflowError and ValueError tracebacks (HTTP 500)."""
    if expected is None:
        with pytest.raises(GoTimeError, match="cannot parse"):
            parse_docker_timestamp(value, NOW)
        return
    assert parse_docker_timestamp(value, NOW) == expected


def test_zone_offsets_as_go_bounds_them() -> None:
    """Go takes offsets up to 24 hours and 60 minutes (Python's timezone stops short of
    24 hours: ValueError); beyond, its range error."""
    assert parse_docker_timestamp("2024-01-01T00:00:00+24:00", NOW) == datetime(
        2023, 12, 31, tzinfo=UTC
    )
    with pytest.raises(GoTimeError) as caught:
        parse_docker_timestamp("0000-01-00-30:00", NOW)
    assert (
        str(caught.value) == 'parsing time "0000-01-00-30:00": time zone offset hour out of range'
    )
    with pytest.raises(GoTimeError, match="time zone offset minute out of range"):
        parse_docker_timestamp("2024-01-01T00:00:00+01:61", NOW)


def test_until_seconds_beyond_int64_are_gos_range_error() -> None:
    with pytest.raises(GoTimeError) as caught:
        parse_docker_timestamp("99999999999999999999", NOW)
    assert str(caught.value) == (
        'failed to parse value as time or duration: invalid seconds "99999999999999999999": '
        "value out of range"
    )
    with pytest.raises(GoTimeError, match="day out of range"):
        parse_docker_timestamp("0000-02-30", NOW)
    # Python's int() refuses more than 4300 digits with a ValueError of its own.
    with pytest.raises(GoTimeError, match="value out of range"):
        parse_docker_timestamp("9" * 5000, NOW)
    with pytest.raises(GoTimeError, match="invalid syntax"):
        parse_docker_timestamp("9" * 5000 + "h", NOW)
    assert parse_duration("1." + "5" * 5000 + "s") == 1_555_555_555


def test_unix_seconds_are_exact_and_round_down() -> None:
    """A float timestamp rounded the last microsecond of 9999 into year 10000."""
    assert unix_seconds(LATEST) == 253402300799
    assert unix_seconds(datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)) == -1
    assert from_unix(253402300799) == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert from_unix(10**15) == LATEST
    assert from_unix(-(10**15)) == EARLIEST


def test_extreme_times_show_as_go_shows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Go's Sub saturates at about 292 years, and a future time is `Less than a second`;
    local times past year 9999 are written with five digits, as Go writes them."""
    assert created_since(LATEST, NOW) == "Less than a second ago"
    assert created_since(EARLIEST, NOW) == "292 years ago"
    assert created_since(unix_seconds(LATEST), NOW) == "Less than a second ago"
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert go_rfc3339(unix_seconds(LATEST)) == "10000-01-01T08:59:59+09:00"
        assert go_time_string(LATEST) == "10000-01-01 08:59:59 +0900 JST"
        assert go_rfc3339(0) == "1970-01-01T09:00:00+09:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_durations() -> None:
    assert parse_duration("1h2m3.5s") == (3723 * 10**9) + 5 * 10**8
    assert parse_duration("-1.5ms") == -1_500_000
    for bad in ("", "1", "1x", ".s", "-"):
        with pytest.raises(GoTimeError):
            parse_duration(bad)


PATTERN_CHARS = st.text(st.sampled_from(list("ab/:*?[]^-\\.c")), max_size=8)
NAME_CHARS = st.text(st.sampled_from(list("ab/:.c-^]")), max_size=8)


@settings(max_examples=3000)
@given(PATTERN_CHARS, NAME_CHARS)
def test_regex_agrees_with_go_path_match(pattern: str, name: str) -> None:
    try:
        expected = path_match(pattern, name)
    except BadPattern:
        with pytest.raises(BadPattern):
            path_pattern_regex(pattern)
        return
    assert bool(re.search(path_pattern_regex(pattern), name)) is expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*[^a]*", "*/", False),  # Go never backtracks into an earlier star
        ("utest*/*", "utest:5000/docker:tag3", True),
        ("busy*:*libc", "busybox:uclibc", True),
        ("a[", "a", None),
    ],
)
def test_regex_examples(pattern: str, name: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(BadPattern):
            path_pattern_regex(pattern)
        return
    assert bool(re.search(path_pattern_regex(pattern), name)) is expected

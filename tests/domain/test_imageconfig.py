"""Config parsing: the facts catalog keeps in columns, and the configs it refuses."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.docker.gotime import EARLIEST, LATEST
from catalog.domain.imageconfig import (
    TimestampOutOfRange,
    format_timestamp,
    parse_config,
    parse_timestamp,
)
from catalog.errors import InvalidArchive

DIFF = "sha256:" + "a" * 64


def config(**fields: object) -> bytes:
    document: dict[str, object] = {
        "architecture": "arm64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [DIFF]},
    }
    document.update(fields)
    return json.dumps(document).encode()


DEEP = b"[" * 5000 + b"]" * 5000


def test_id_is_the_digest_of_the_exact_bytes() -> None:
    raw = config(created="2024-03-01T10:00:00.123456789Z") + b"\n"
    parsed = parse_config(raw)
    assert parsed.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert parsed.raw == raw
    assert parsed.created == datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert parsed.created_text == "2024-03-01T10:00:00.123456789Z"


def test_columns() -> None:
    parsed = parse_config(
        config(
            variant="v8",
            author="me",
            comment="hi",
            config={"Labels": {"a": "1", "b": ""}},
            history=[{"created_by": "x", "empty_layer": True}, {"created_by": "y"}],
        )
    )
    assert (parsed.os, parsed.architecture, parsed.variant) == ("linux", "arm64", "v8")
    assert (parsed.author, parsed.comment) == ("me", "hi")
    assert parsed.labels == {"a": "1", "b": ""}
    assert [h.empty_layer for h in parsed.history] == [True, False]
    assert parsed.diff_ids == [DIFF]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "invalid image config"),
        (b"[]", "not a JSON object"),
        (config(rootfs={"type": "tar", "diff_ids": []}), "rootfs type"),
        (config(rootfs={"type": "layers", "diff_ids": ["sha256:ABC"]}), "diff_ids"),
        (config(config={"Labels": {"a": 1}}), "labels must map strings"),
        (config(history=[{}, {}]), "too many non-empty layers in History section"),
        (config(created="yesterday"), "created"),
        (config(history=[{"created": 5}]), "history[0].created"),
        # Was a RecursionError traceback (and HTTP 500 through the server).
        (config(x=0).replace(b'"x": 0', b'"x": ' + DEEP), "nested deeper than 100 levels"),
        (config(x=0).replace(b'"x": 0', b'"x": NaN'), "invalid value NaN"),
        # Falsy values of the wrong type were taken for "none" (Go refuses them).
        (config(history={}), "history must be a list"),
        (config(config=[]), "config must be an object"),
        (config(rootfs={"type": "layers", "diff_ids": ""}), "diff_ids must be sha256"),
    ],
)
def test_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidArchive, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw)


def test_no_created_and_go_zero_time_mean_unknown() -> None:
    assert parse_config(config()).created is None
    assert parse_config(config(created="0001-01-01T00:00:00Z")).created is None


def test_timestamp_offsets_become_utc() -> None:
    assert parse_timestamp("2024-01-01T02:00:00+02:00") == datetime(2024, 1, 1, tzinfo=UTC)


def test_extreme_created_loads_as_the_nearest_end_of_a_datetime() -> None:
    """The last nanosecond of 9999 is a datetime; an instant past it (an offset west of
    UTC on 9999-12-31) or before year 1 is kept as the nearest end, text untouched."""
    last = parse_config(config(created="9999-12-31T23:59:59.999999999Z"))
    assert last.created == LATEST
    assert last.created_text == "9999-12-31T23:59:59.999999999Z"
    assert parse_config(config(created="9999-12-31T23:00:00-05:00")).created == LATEST
    assert parse_config(config(created="0001-01-01T00:00:00.5+01:00")).created == EARLIEST
    assert parse_config(config(created="0000-06-01T00:00:00Z")).created == EARLIEST
    history = parse_config(config(history=[{"created": "9999-12-31T23:59:59-01:00"}]))
    assert history.history[0].created == LATEST
    with pytest.raises(TimestampOutOfRange):
        parse_timestamp("9999-12-31T23:59:59-01:00", clamp=False)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1)))
def test_timestamp_round_trip(value: datetime) -> None:
    assert parse_timestamp(format_timestamp(value)) == value

"""Docker's container rules as pure functions: State.String(), the command line, the
ps filters' values and Go's regexp matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catalog.docker.containers import (
    check_port_filter,
    command_text,
    filter_match,
    go_atoi,
    process,
    quoted_command,
    status_text,
)
from catalog.errors import CatalogError

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "started", "finished", "code", "text"),
    [
        ("created", None, None, 0, "Created"),
        ("running", timedelta(hours=2), None, 0, "Up 2 hours"),
        ("running", timedelta(seconds=0), None, 0, "Up Less than a second"),
        ("paused", timedelta(minutes=5), None, 0, "Up 5 minutes (Paused)"),
        ("restarting", timedelta(hours=1), timedelta(seconds=5), 1, "Restarting (1) 5 seconds ago"),
        ("exited", timedelta(days=4), timedelta(days=3), 0, "Exited (0) 3 days ago"),
        ("exited", timedelta(days=4), timedelta(hours=1), 137, "Exited (137) About an hour ago"),
        ("exited", timedelta(days=4), None, 0, ""),
        ("removing", None, None, 0, "Removal In Progress"),
        ("dead", timedelta(days=1), timedelta(days=1), 0, "Dead"),
    ],
)
def test_status_text(
    state: str,
    started: timedelta | None,
    finished: timedelta | None,
    code: int,
    text: str,
) -> None:
    assert (
        status_text(
            state,
            started_at=NOW - started if started is not None else None,
            finished_at=NOW - finished if finished is not None else None,
            exit_code=code,
            now=NOW,
        )
        == text
    )


def test_command_line() -> None:
    assert process(["/ep"], ["a", "b c"]) == ("/ep", ["a", "b c"])
    assert process(None, ["sh"]) == ("sh", [])
    assert process([], None) == ("", [])
    assert command_text("/ep", ["a", "b c"]) == "/ep a 'b c'"
    assert command_text("sh", []) == "sh"
    assert quoted_command("sh -c 'echo hello world'", trunc=True) == '"sh -c \'echo hello w…"'
    assert quoted_command('say "hi"', trunc=False) == '"say \\"hi\\""'
    assert quoted_command("", trunc=True) == '""'


def test_go_atoi() -> None:
    assert go_atoi("+7") == 7
    assert go_atoi("-1") == -1
    for bad, why in (("x", "invalid syntax"), ("", "invalid syntax"), ("1.5", "invalid syntax")):
        with pytest.raises(ValueError, match=why):
            go_atoi(bad)
    with pytest.raises(ValueError, match="value out of range") as huge:
        go_atoi("9" * 20)
    assert str(huge.value) == f'strconv.Atoi: parsing "{"9" * 20}": value out of range'


LOOKING_UP = "error while looking up for"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("publish", "80:80", "filter for 'publish' should not contain ':': 80:80"),
        ("expose", "", f"{LOOKING_UP} expose : invalid port range: value is empty"),
        ("expose", "x/tcp", f"{LOOKING_UP} expose x/tcp: invalid start port 'x': invalid syntax"),
        (
            "publish",
            "70000",
            f"{LOOKING_UP} publish 70000: invalid start port '70000': value out of range",
        ),
        ("publish", "80-x", f"{LOOKING_UP} publish 80-x: invalid end port 'x': invalid syntax"),
        ("publish", "90-80", f"{LOOKING_UP} publish 90-80: invalid port range: 90-80"),
    ],
)
def test_port_filter_errors(key: str, value: str, message: str) -> None:
    with pytest.raises(CatalogError) as refused:
        check_port_filter(key, value)
    assert str(refused.value) == message


@pytest.mark.parametrize("value", ["80", "80/udp", "8000-8080", "80-80/tcp"])
def test_port_filters_that_parse(value: str) -> None:
    check_port_filter("expose", value)


def test_filter_match_is_gos_regexp_search() -> None:
    assert filter_match([], "anything")
    assert filter_match(["web"], "/web")
    assert filter_match(["^/w.b$"], "/web")
    assert not filter_match(["^web$"], "/web")
    assert filter_match(["a[", "web"], "web")  # a pattern that does not compile is skipped
    assert not filter_match(["(?=w)"], "web")  # lookahead: not RE2
    assert not filter_match([r"(w)\1"], "ww")  # backreference: not RE2
    assert filter_match([r"b\z"], "web")

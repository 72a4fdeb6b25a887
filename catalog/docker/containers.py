"""Docker's rules for containers as `docker ps` and `docker inspect` show them: the state
and its status text (moby `daemon/container/state.go`), the command line (`view.go`),
and the `docker ps` filters' values and error texts (`daemon/list.go`).

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from catalog.docker.gotime import go_quote
from catalog.docker.humanize import human_duration
from catalog.docker.tabwriter import ellipsis
from catalog.errors import CatalogError, InvalidFilter

# moby's ContainerState values, in validStates' order (their error text lists them so).
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
# State.Running is true in these: a paused or restarting container runs.
RUNNING_STATES = ("running", "paused", "restarting")
# ...and these have a start time: the container ran.
RAN_STATES = (*RUNNING_STATES, "exited")
HEALTH_STATUSES = ("none", "starting", "healthy", "unhealthy")
# No container here has a health check: docker's NoHealthcheck.
NO_HEALTHCHECK = "none"
# acceptedPsFilterTags
PS_FILTERS = (
    "ancestor",
    "before",
    "exited",
    "id",
    "isolation",
    "label",
    "name",
    "status",
    "health",
    "since",
    "volume",
    "network",
    "is-task",
    "publish",
    "expose",
)


def status_text(
    state: str,
    *,
    started_at: datetime | None,
    finished_at: datetime | None,
    exit_code: int,
    now: datetime,
) -> str:
    """State.String(): `Up 2 hours`, `Up 5 minutes (Paused)`, `Exited (0) 3 days ago`,
    `Restarting (1) 5 seconds ago`, `Created`, `Removal In Progress`, `Dead`."""
    if state in RUNNING_STATES:
        if state == "restarting":
            since = human_duration(now - (finished_at or now))
            return f"Restarting ({exit_code}) {since} ago"
        up = "Up " + human_duration(now - (started_at or now))
        return up + " (Paused)" if state == "paused" else up
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    if started_at is None:
        return "Created"
    if finished_at is None:
        return ""
    return f"Exited ({exit_code}) {human_duration(now - finished_at)} ago"


def process(entrypoint: Sequence[str] | None, cmd: Sequence[str] | None) -> tuple[str, list[str]]:
    """The container's Path and Args: the entrypoint followed by the command
    (daemon getEntrypointAndArgs); ("", []) when neither is set."""
    argv = [*(entrypoint or []), *(cmd or [])]
    return (argv[0], argv[1:]) if argv else ("", [])


def command_text(path: str, args: Sequence[str]) -> str:
    """`docker ps`'s COMMAND as the daemon writes it: Path, then Args with those holding
    a space in single quotes."""
    if not args:
        return path
    shown = [f"'{arg}'" if " " in arg else arg for arg in args]
    return f"{path} {' '.join(shown)}"


def quoted_command(command: str, *, trunc: bool) -> str:
    """The docker CLI's COMMAND cell: cut to 20 characters (with `…`) unless --no-trunc,
    then Go-quoted."""
    return go_quote(ellipsis(command, 20) if trunc else command)


def check_state_filter(value: str) -> None:
    """`status=` must name a state (ValidateContainerState)."""
    if value not in STATES:
        raise InvalidFilter(
            f"invalid filter 'status={value}': invalid value for state ({value}):"
            f" must be one of {', '.join(STATES)}"
        )


def check_health_filter(value: str) -> None:
    if value not in HEALTH_STATUSES:
        raise InvalidFilter(
            f"invalid filter 'health={value}': invalid value for health ({value}):"
            f" must be one of {', '.join(HEALTH_STATUSES)}"
        )


_INT64 = 1 << 63


def go_atoi(value: str) -> int:
    """strconv.Atoi (64-bit): ValueError with Go's text."""
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"strconv.Atoi: parsing {go_quote(value)}: invalid syntax")
    number = int(value)
    if not -_INT64 <= number < _INT64:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(value)}: value out of range")
    return number


def exit_code_filter(value: str) -> int:
    try:
        return go_atoi(value)
    except ValueError as exc:
        raise InvalidFilter(f"invalid filter 'exited={value}': {exc}") from None


def check_port_filter(key: str, value: str) -> None:
    """`publish=` and `expose=` take `PORT[-PORT][/PROTO]` (moby portOp). Its errors are
    plain errors in moby, so the daemon answers them with a 500, and so does catalog."""
    if ":" in value:
        raise CatalogError(f"filter for '{key}' should not contain ':': {value}")
    problem = _port_range_problem(value)
    if problem:
        raise CatalogError(f"error while looking up for {key} {value}: {problem}")


def _port_number_problem(text: str) -> str | None:
    if text == "":
        return "value is empty"
    if not text.isascii() or not text.isdigit():
        return "invalid syntax"
    return "value out of range" if int(text) > 0xFFFF else None


def _port_range_problem(value: str) -> str | None:
    """network.ParsePortRange's error text, or None."""
    if value == "":
        return "invalid port range: value is empty"
    ports = value.partition("/")[0]
    start, dash, end = ports.partition("-")
    problem = _port_number_problem(start)
    if problem:
        return f"invalid start port '{start}': {problem}"
    if not dash or start == end:
        return None
    problem = _port_number_problem(end)
    if problem:
        return f"invalid end port '{end}': {problem}"
    if int(end) < int(start):
        return f"invalid port range: {value}"
    return None


# What Go's RE2 does not have (lookaround, backreferences): such a pattern does not
# compile in Go, so it matches nothing there.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\(\?P=|\\[1-9]")


def regexp_matches(pattern: str, source: str) -> bool:
    """Go's `regexp.MatchString(pattern, source)`: an unanchored search; False when the
    pattern does not compile."""
    if _NOT_RE2.search(pattern):
        return False
    try:
        return re.search(pattern.replace(r"\z", r"\Z"), source) is not None
    except re.error:
        return False


def filter_match(values: Sequence[str], source: str) -> bool:
    """filters.Args.Match: no values match everything; else an exact value, or a value
    that as a regular expression matches somewhere in `source`."""
    if not values or source in values:
        return True
    return any(regexp_matches(value, source) for value in values)


__all__ = [
    "HEALTH_STATUSES",
    "NO_HEALTHCHECK",
    "PS_FILTERS",
    "RAN_STATES",
    "RUNNING_STATES",
    "STATES",
    "check_health_filter",
    "check_port_filter",
    "check_state_filter",
    "command_text",
    "exit_code_filter",
    "filter_match",
    "go_atoi",
    "process",
    "quoted_command",
    "regexp_matches",
    "status_text",
]

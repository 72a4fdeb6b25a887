"""Which process a lease or a temporary file belongs to, and whether it still runs.

An owner is this machine's boot ID, the process's PID namespace, its PID and its start
time (clock ticks after boot, /proc/PID/stat field 22): a PID reused by another process
has another start time, a reboot another boot ID. Another process can tell whether the
owner is alive only from the same boot and PID namespace; elsewhere (another host sharing
the database, another container) the answer is "cannot tell", and the caller falls back
to an expiry or a grace period.

Temporary files carry a short form in their names (`.tmp-<host tag>-<pid>-<start>-...`),
so `gc` can keep a live writer's file however old, and remove a killed writer's at once.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

__all__ = ["owner_alive", "process_owner", "temporary_owner_alive", "temporary_tag"]

_OWNER_FORMAT = "v1"


@cache
def _host_and_namespace() -> tuple[str, str]:
    """This machine's boot ID and this process's PID namespace ("" where unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        namespace = ""
    return boot, namespace


@cache
def _host_tag() -> str:
    """8 hex digits standing for the boot ID and PID namespace ("" where unknown)."""
    boot, namespace = _host_and_namespace()
    if not boot or not namespace:
        return ""
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:8]


def _start_time(pid: int) -> str | None:
    """When process `pid` started, or None if there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: str, started: str) -> bool | None:
    if not pid.isdigit() or not started:
        return None
    return _start_time(int(pid)) == started


def process_owner() -> str:
    """The owner of what this process holds. Computed on each call: a forked child is
    another owner."""
    boot, namespace = _host_and_namespace()
    pid = os.getpid()
    return f"{_OWNER_FORMAT} {boot} {namespace} {pid} {_start_time(pid) or ''}"


def owner_alive(owner: str) -> bool | None:
    """Whether the owner still runs: True or False when this process can tell (same boot
    and PID namespace), None when it cannot."""
    parts = owner.split(" ")
    if len(parts) != 5 or parts[0] != _OWNER_FORMAT:
        return None
    _, boot, namespace, pid, started = parts
    if not boot or not namespace or (boot, namespace) != _host_and_namespace():
        return None
    return _alive(pid, started)


def temporary_tag() -> str:
    """What a temporary file's name says of its writer: `<host tag>-<pid>-<start>`, or
    "" where this process cannot be identified."""
    pid = os.getpid()
    started = _start_time(pid)
    host = _host_tag()
    if not host or not started:
        return ""
    return f"{host}-{pid}-{started}"


def temporary_owner_alive(name: str, prefix: str) -> bool | None:
    """Whether the writer of the temporary file `name` (`prefix` + tag + `-...`) still
    runs; None when its name carries no tag of this host."""
    parts = name[len(prefix) :].split("-")
    if len(parts) < 4 or parts[0] != _host_tag() or not parts[0]:
        return None
    return _alive(parts[1], parts[2])

"""Fault points: named places in an operation where a test may stop it, as a kill would,
to show that the catalog is left consistent (`squash:layer-stored`, ...).

Operations call `fault_point(name)` at each such place. Nothing happens unless a hook is
installed, which only tests do: `set_fault_hook(hook)` makes every fault point call
`hook(name)`, in this process. A hook may do another writer's work at that moment, or
end the process with `os._exit(137)` (SIGKILL's status) to play a kill; the tests run a
command killed that way in a subprocess (tests/support/killed_catalog.py).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FaultHook", "fault_point", "set_fault_hook"]

FaultHook = Callable[[str], None]

_hook: FaultHook | None = None


def set_fault_hook(hook: FaultHook | None) -> FaultHook | None:
    """Install `hook` (None removes it); return the hook it replaces."""
    global _hook
    previous, _hook = _hook, hook
    return previous


def fault_point(name: str, *, flush: Callable[[], None] | None = None) -> None:
    """Call the installed hook with `name`, if there is one. `flush` runs first, so that
    what the operation has written so far is in its file when the hook ends the process."""
    hook = _hook
    if hook is None:
        return
    if flush is not None:
        flush()
    hook(name)

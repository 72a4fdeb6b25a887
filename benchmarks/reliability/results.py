"""What a class of reliability trials reports, and RELIABILITY.md written from it."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class RunSettings:
    """How hard to try: `full` is the on-demand run (e.g. 100 kills per operation), else
    the bounded form CI runs. `database_url` is a server URL where databases may be
    created (PostgreSQL), or None for SQLite files under `workdir`."""

    full: bool
    seed: int
    workdir: Path
    database_url: str | None = None

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url else "sqlite"


@dataclass
class ClassResult:
    """One class of trials (e.g. `kill -9 of load`) on one backend."""

    name: str
    backend: str
    trials: int
    failures: int
    seconds: float
    # Markdown lines shown under the class's row: figures (ops/s, p50/p99), and what each
    # failure was (a failure must say enough to reproduce it: seed, operation, point).
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failures == 0


def render(results: Sequence[ClassResult], *, full: bool, seed: int, seconds: float) -> str:
    load = ", ".join(f"{x:.2f}" for x in _loadavg())
    lines = [
        "# Reliability figures",
        "",
        "Written by `python -m benchmarks.reliability"
        + (" --full" if full else "")
        + f"` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (seed {seed}): "
        + f"{platform.machine()}, {platform.python_version()}, load average after: {load}.",
        "A failure is any trial that left the catalog inconsistent (`catalog fsck` not clean),",
        "lost a write, ended in a traceback or more than one line of error, or changed the",
        "catalog on refused input. Each must be 0.",
        "",
        "| class | backend | trials | failures | time |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.name} | {result.backend} | {result.trials} | {result.failures} "
            f"| {result.seconds:.1f} s |"
        )
    total_trials = sum(r.trials for r in results)
    total_failures = sum(r.failures for r in results)
    lines += [
        f"| **all** | | **{total_trials}** | **{total_failures}** | **{seconds:.1f} s** |",
        "",
    ]
    for result in results:
        if result.details:
            lines += [f"## {result.name} ({result.backend})", "", *result.details, ""]
    return "\n".join(lines)


def _loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (0.0, 0.0, 0.0)

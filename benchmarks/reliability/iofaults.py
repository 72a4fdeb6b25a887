"""I/O faults from outside the process (issue 12, item 3), and a disk that is full for real.

Faults. `strace -f -e inject=SYSCALL:error=ERRNO:when=N` makes the N-th call of SYSCALL
fail, over load, save, squash, append, rmi and gc run as the real CLI. strace attaches to
the command's process before it starts (it is forked from a zygote that has imported
catalog, and held), so N counts the command's own calls, not Python's start-up; each
command is traced once without a fault first, to count the calls it makes of each
system call, and N is swept across them (the full run: every call, up to
`MAX_CALLS_PER_SYSCALL` spread evenly; the bounded run: a seeded sample). Each run must
end with exit 1 and one line `Error: ...` on stderr and no traceback (or, where the
fault was absorbed, exit 0 with the work done); then `fsck` is clean, the operation run
again without the fault succeeds, and `gc --grace 0` leaves nothing behind.

Disk full. A small tmpfs (mounted if this process may, else a loop-mounted file system;
else the trial says it was skipped and why) holds the catalog's root: loads until the
disk fills must fail with one line and leave the catalog consistent; then, with the disk
at 0 bytes free, `catalog images`, `rmi`, `image prune` and `gc` must still work and free
space. Last, the same file system made read-only: every command ends with exit 0 or
with one line.
"""

from __future__ import annotations

import collections
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from benchmarks.backends import new_database
from benchmarks.reliability.catalogs import (
    ArchiveImage,
    Stopwatch,
    TrialCatalog,
    docker_archive,
    fsck_errors,
    layer_tar,
    leftovers_after_gc,
    trial_catalog,
)
from benchmarks.reliability.results import ClassResult, RunSettings
from benchmarks.reliability.scenarios import Fixtures, Runner, Scenario, after_trial
from benchmarks.reliability.zygote import Zygote
from catalog.context import Catalog
from catalog.operations.save import save_images_to_path
from catalog.settings import normalize_database_url

SYSCALLS = ("write", "pwrite64", "fsync", "fdatasync", "rename", "openat", "ftruncate", "unlink")
ERRNOS = ("ENOSPC", "EIO", "EDQUOT")
# Where a permission is what the call checks, EACCES too.
PERMISSION_SYSCALLS = {"openat", "rename", "unlink"}
MAX_CALLS_PER_SYSCALL = 40
BOUNDED_RUNS_PER_OPERATION = 5
OPERATIONS = ("load", "save", "squash", "append", "rmi", "gc")

_CALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\(")
# What varies from run to run in an error line: digests, temporary names, paths.
_VARYING = [
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:..."),
    (re.compile(r"(?<![\w/])/+[^\s:]+"), "PATH"),
]


@dataclass
class FaultTally:
    runs: int = 0
    one_line: int = 0
    absorbed: int = 0
    failures: list[str] = field(default_factory=list)
    messages: collections.Counter[str] = field(default_factory=collections.Counter)
    # A run that gave each line, to reproduce it.
    examples: dict[str, str] = field(default_factory=dict)
    calls: dict[str, dict[str, int]] = field(default_factory=dict)


def _save_scenario(fixtures: Fixtures, scratch: Path) -> Scenario:
    out = scratch / "saved" / "base.tar"
    out.parent.mkdir(exist_ok=True)

    def prepare(catalog: Catalog) -> None:
        for path in out.parent.iterdir():
            path.unlink()

    def done(catalog: Catalog) -> bool:
        return out.is_file() and [p.name for p in out.parent.iterdir()] == [out.name]

    return Scenario(
        "save",
        ["save", "-o", str(out), "base:1"],
        prepare,
        done,
        lambda catalog: save_images_to_path(catalog, ["base:1"], out),
    )


def _calls(trace: Path) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for line in trace.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if match:
            counts[match.group(1)] += 1
    return dict(counts)


def _normalized(line: str) -> str:
    for pattern, replacement in _VARYING:
        line = pattern.sub(replacement, line)
    return line


def _plan(calls: dict[str, int], full: bool, chooser: random.Random) -> list[tuple[str, int, str]]:
    """The (syscall, N, errno) runs for one operation."""
    runs = []
    for syscall in SYSCALLS:
        count = calls.get(syscall, 0)
        if not count:
            continue
        if count <= MAX_CALLS_PER_SYSCALL:
            numbers = list(range(1, count + 1))
        else:
            step = count / MAX_CALLS_PER_SYSCALL
            numbers = sorted({1 + int(i * step) for i in range(MAX_CALLS_PER_SYSCALL)})
        errnos = ERRNOS + (("EACCES",) if syscall in PERMISSION_SYSCALLS else ())
        runs += [(syscall, n, errnos[i % len(errnos)]) for i, n in enumerate(numbers)]
    if full or len(runs) <= BOUNDED_RUNS_PER_OPERATION:
        return runs
    return sorted(chooser.sample(runs, BOUNDED_RUNS_PER_OPERATION))


def _fault_trials(
    made: TrialCatalog, runner: Runner, scenarios: list[Scenario], settings: RunSettings
) -> FaultTally:
    tally = FaultTally()
    chooser = random.Random(settings.seed)  # noqa: S311 - the sample reproducible by seed
    trace = runner.scratch / "calls.trace"
    with made.open() as catalog:
        for scenario in scenarios:
            scenario.prepare(catalog)
            status, messages = runner.run_traced(
                scenario.argv, ["-o", str(trace), "-e", f"trace={','.join(SYSCALLS)}"]
            )
            if status != 0:
                tally.failures.append(f"{scenario.name}: the traced run failed: {messages}")
                continue
            calls = _calls(trace)
            tally.calls[scenario.name] = calls
            for syscall, number, errno in _plan(calls, settings.full, chooser):
                scenario.prepare(catalog)
                what = f"{scenario.name} with {syscall} call {number} failing {errno}"
                status, messages = runner.run_traced(
                    scenario.argv,
                    [
                        "-o",
                        "/dev/null",
                        "-e",
                        f"trace={syscall}",
                        "-e",
                        f"inject={syscall}:error={errno}:when={number}",
                    ],
                )
                tally.runs += 1
                _, stderr = runner.output()
                lines = stderr.splitlines()
                problems = []
                if "Traceback" in stderr:
                    problems.append(f"{what}: a traceback: {stderr[-400:]}")
                elif status == 1 and len(lines) == 1 and lines[0].startswith("Error: "):
                    tally.one_line += 1
                    tally.messages[_normalized(lines[0])] += 1
                    tally.examples.setdefault(_normalized(lines[0]), what)
                elif status == 0 and scenario.done(catalog):
                    tally.absorbed += 1
                else:
                    problems.append(f"{what}: exited {status} with {len(lines)} lines: {stderr!r}")
                problems += after_trial(catalog, scenario.retry, scenario.done, what)
                if problems:
                    tally.failures.append("; ".join(problems))
    return tally


# --- The disk full for real ---


@contextmanager
def _small_file_system(directory: Path, megabytes: int) -> Iterator[str]:
    """Mount a `megabytes` file system at `directory`; yields how. Raises RuntimeError
    with the reason when neither a tmpfs nor a loop mount is permitted here."""
    directory.mkdir(parents=True, exist_ok=True)
    tmpfs = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    how = f"a {megabytes} MiB tmpfs"
    if tmpfs.returncode != 0:
        image = directory.with_suffix(".img")
        with image.open("wb") as file:
            file.truncate(megabytes << 20)
        made = subprocess.run(
            ["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True, check=False
        )
        loop = subprocess.run(
            ["mount", "-o", "loop", str(image), str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0 or loop.returncode != 0:
            image.unlink(missing_ok=True)
            raise RuntimeError(
                f"cannot mount a small file system: tmpfs: {tmpfs.stderr.strip()}; loop:"
                f" {(made.stderr or loop.stderr).strip()}"
            )
        how = f"a {megabytes} MiB ext4 file system on a loop device"
    try:
        yield how
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)
        directory.with_suffix(".img").unlink(missing_ok=True)


def _fill(path: Path) -> None:
    """Write `path` until the file system is full."""
    chunk = bytes(64 << 10)
    with path.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(chunk)
        except OSError:
            pass
    with path.open("ab", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 512)
        except OSError:
            pass


@contextmanager
def _database_on(mount: Path, settings: RunSettings, scratch: Path) -> Iterator[URL]:
    """SQLite: a file on the small disk, beside the root. PostgreSQL: a new database on
    the server (only the blobs are on the small disk then)."""
    if settings.database_url is None:
        yield URL.create("sqlite", database=str(mount / "root" / "catalog.db"))
        return
    server = normalize_database_url(settings.database_url)
    with new_database("postgresql", scratch, server, "diskfull") as url:
        yield url


def _filling_archive(path: Path, index: int) -> None:
    image = ArchiveImage([layer_tar(5000 + index, 2 << 20)], tags=[f"fill:{index}"])
    path.write_bytes(docker_archive([image]))


def _disk_full(
    settings: RunSettings, zygote: Zygote, scratch: Path
) -> tuple[int, list[str], list[str]]:
    """(steps, failures, notes) of the disk-full trial (module doc)."""
    mount = scratch / "small-disk"
    failures: list[str] = []
    notes: list[str] = []
    steps = 0
    try:
        with (
            _small_file_system(mount, 16) as how,
            _database_on(mount, settings, scratch) as url,
        ):
            where = "root and database" if settings.database_url is None else "root"
            notes.append(f"- The catalog's {where} on {how}.")
            made = TrialCatalog(mount / "root", url)
            with made.open():
                pass
            runner = Runner(made, zygote, scratch)
            loaded = 0
            for index in range(40):
                archive = scratch / f"fill-{index}.tar"
                _filling_archive(archive, index)
                status, _ = runner.run(["load", "-q", "-i", str(archive)])
                archive.unlink()
                steps += 1
                _, stderr = runner.output()
                if status == 0:
                    loaded += 1
                    continue
                lines = stderr.splitlines()
                if status != 1 or len(lines) != 1 or "Traceback" in stderr:
                    failures.append(f"load on a full disk: exit {status}: {stderr!r}")
                notes.append(
                    f"- {loaded} loads of a 2 MiB image each, then the disk was full:"
                    f" `{_normalized(lines[-1]) if lines else ''}`"
                )
                break
            with made.open() as catalog:
                failures += [f"after the disk filled: fsck: {x}" for x in fsck_errors(catalog)]
            filler = mount / "filler"
            _fill(filler)
            free = shutil.disk_usage(mount).free
            notes.append(f"- Then another file took the rest ({free} bytes left); then:")
            for argv in (
                ["images"],
                ["rmi", "fill:0"],
                ["image", "prune", "-a", "-f"],
                ["gc", "--grace", "0"],
            ):
                status, _ = runner.run(argv)
                steps += 1
                _, stderr = runner.output()
                said = stderr.strip().splitlines()[0] if stderr.strip() else ""
                notes.append(
                    f"  - `catalog {' '.join(argv)}`: exit {status}"
                    + (f", `{_normalized(said)}`" if said else "")
                )
                if status != 0 or "Traceback" in stderr:
                    failures.append(f"catalog {' '.join(argv)} at 0 bytes free: exit {status}")
            freed = shutil.disk_usage(mount).free
            notes.append(f"- Free after them: {freed} bytes.")
            if freed <= free:
                failures.append("nothing was freed at 0 bytes free")
            filler.unlink()
            with made.open() as catalog:
                failures += [f"at the end: fsck: {x}" for x in fsck_errors(catalog)]
                failures += [f"at the end: left: {x}" for x in leftovers_after_gc(catalog)]
            steps += _read_only(mount, runner, scratch, failures, notes)
    except RuntimeError as exc:
        notes.append(f"- Skipped: {exc}")
    return steps, failures, notes


def _read_only(
    mount: Path, runner: Runner, scratch: Path, failures: list[str], notes: list[str]
) -> int:
    """The same file system made read-only: every command exits 0 or with one line."""
    archive = scratch / "read-only.tar"
    _filling_archive(archive, 99)
    if runner.run(["load", "-q", "-i", str(archive)])[0] != 0:  # fill:99, to remove
        failures.append("the load before the store went read-only failed")
    _filling_archive(archive, 98)
    remount = subprocess.run(
        ["mount", "-o", "remount,ro", str(mount)], capture_output=True, text=True, check=False
    )
    if remount.returncode != 0:
        notes.append(f"- Read-only store skipped: {remount.stderr.strip()}")
        return 0
    notes.append("- Then the file system made read-only:")
    steps = 0
    try:
        for argv in (
            ["images"],
            ["load", "-q", "-i", str(archive)],
            ["rmi", "fill:99"],
            ["image", "prune", "-a", "-f"],
            ["gc"],
            ["fsck"],
            ["save", "-o", str(scratch / "saved.tar"), "fill:99"],
        ):
            status, _ = runner.run(argv)
            steps += 1
            _, stderr = runner.output()
            lines = stderr.strip().splitlines()
            errors = [line for line in lines if line.startswith("Error: ")]
            said = f", `{_normalized(errors[0])}`" if errors else ""
            notes.append(f"  - `catalog {' '.join(argv[:2])}`: exit {status}{said}")
            if "Traceback" in stderr or status not in (0, 1) or (status == 1 and len(errors) != 1):
                failures.append(f"catalog {' '.join(argv)} on a read-only store: {stderr!r}")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], capture_output=True, check=False)
        archive.unlink(missing_ok=True)
    return steps


def run(settings: RunSettings) -> list[ClassResult]:
    scratch = settings.workdir / "iofaults-files"
    scratch.mkdir(parents=True, exist_ok=True)
    if shutil.which("strace") is None:
        return [
            ClassResult(
                "I/O faults injected by strace",
                settings.backend,
                0,
                1,
                0.0,
                ["- FAILED: strace is not installed (Debian: apt-get install strace)"],
            )
        ]
    watch = Stopwatch()
    with trial_catalog(settings, "iofaults") as made, Zygote() as zygote:
        fixtures = Fixtures(made, scratch)
        runner = Runner(made, zygote, scratch)
        by_name = {scenario.name: scenario for scenario in fixtures.scenarios()}
        by_name["save"] = _save_scenario(fixtures, scratch)
        scenarios = [by_name[name] for name in OPERATIONS]
        tally = _fault_trials(made, runner, scenarios, settings)
        faults_seconds = watch.seconds
        watch = Stopwatch()
        steps, full_failures, notes = _disk_full(settings, zygote, scratch)
        full_seconds = watch.seconds
    counted = ", ".join(
        f"{name} " + " ".join(f"{call}:{count}" for call, count in sorted(calls.items()))
        for name, calls in tally.calls.items()
    )
    details = [
        f"- Calls each command makes (N is swept across them): {counted}.",
        f"- {tally.runs} runs with one call failing: {tally.one_line} ended with exit 1 and"
        f" one line, {tally.absorbed} absorbed the fault (exit 0, the work done); then fsck"
        " clean, the retry succeeded, gc left nothing.",
        "- The lines users saw (digests and paths elided), most frequent first:",
        *(
            f"  - {count} x `{line}` (e.g. {tally.examples[line]})"
            for line, count in tally.messages.most_common(20)
        ),
        *(f"- FAILED: {line}" for line in tally.failures[:15]),
    ]
    return [
        ClassResult(
            "I/O faults injected by strace",
            settings.backend,
            tally.runs,
            len(tally.failures),
            faults_seconds,
            details,
        ),
        ClassResult(
            "disk full for real (small file system)",
            settings.backend,
            steps,
            len(full_failures),
            full_seconds,
            [*notes, *(f"- FAILED: {line}" for line in full_failures[:10])],
        ),
    ]

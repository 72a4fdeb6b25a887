"""Kills at random points (issue 12, item 2): `kill -9` of load, squash, rmi, prune, tag,
append, gc and `catalog serve` mid-request, at seeded random delays.

Each operation is the real CLI in a process of its own (forked from a zygote that has
imported catalog, so the delay falls in the operation, not in Python's start-up). Its
duration is measured first; each trial kills it after a delay drawn uniformly from that
duration. After each kill:

1. `fsck` finds no error (rows without blobs, half-registered images, kept facts);
2. the operation run again succeeds (exit 0, no traceback) and its effect is there;
3. `gc --grace 0` leaves nothing but the database and the blobs rows name: no temporary
   file, unreferenced blob, lease or other file survives that gc does not remove.

`catalog serve` is killed while answering a request (load, tag, delete, prune, squash)
sent by the harness; the retry goes to a new server.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.reliability.catalogs import (
    Stopwatch,
    TrialCatalog,
    trial_catalog,
)
from benchmarks.reliability.results import ClassResult, RunSettings
from benchmarks.reliability.scenarios import Fixtures, Runner, Scenario, after_trial
from benchmarks.reliability.zygote import Zygote
from catalog.context import Catalog
from catalog.operations.load import TEMPORARY_DIRNAME
from catalog.operations.removal import remove_images

# Runs of each command, unkilled, to measure how long it takes.
CALIBRATION_RUNS = 1


@dataclass
class Tally:
    trials: int = 0
    killed: int = 0  # the kill landed while the process ran
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    span: float = 0.0
    startup: float = 0.0
    spools: int = 0  # upload spool files a killed server left (see _remove_spools)


def _kill_scenario(
    made: TrialCatalog,
    runner: Runner,
    scenario: Scenario,
    trials: int,
    chooser: random.Random,
    startup: float,
) -> Tally:
    tally = Tally()
    watch = Stopwatch()
    with made.open() as catalog:
        spans = []
        for _ in range(CALIBRATION_RUNS):
            scenario.prepare(catalog)
            status, seconds = runner.run(scenario.argv)
            if status != 0:
                _, stderr = runner.output()
                tally.failures.append(f"{scenario.name}: the calibration run failed: {stderr}")
                return tally
            spans.append(seconds)
        tally.span = statistics.median(spans)
        tally.startup = min(startup, tally.span / 2)
        for index in range(trials):
            scenario.prepare(catalog)
            delay = chooser.uniform(tally.startup, tally.span)
            status, _ = runner.run(scenario.argv, kill_after=delay)
            what = f"{scenario.name} killed after {delay * 1000:.0f} ms (trial {index})"
            tally.trials += 1
            if status == -signal.SIGKILL:
                tally.killed += 1
            elif status != 0:
                _, stderr = runner.output()
                tally.failures.append(f"{what}: exited {status} before the kill: {stderr[-300:]}")
                continue
            problems = after_trial(catalog, scenario.retry, scenario.done, what)
            if problems:
                tally.failures.append("; ".join(problems))
    tally.seconds = watch.seconds
    return tally


# --- catalog serve ---


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class _Request:
    name: str
    method: str
    path: str
    prepare: Callable[[Catalog], None]
    scenario: str  # the scenario whose retry and check it shares
    body: Path | None = None
    json: dict[str, object] | None = None


def _untag(name: str) -> Callable[[Catalog], None]:
    def prepare(catalog: Catalog) -> None:
        remove_images(catalog, [name], force=True)

    return prepare


def _serve_requests(fixtures: Fixtures) -> list[_Request]:
    """Requests for the server, each the Engine API form of one scenario."""
    scenarios = {scenario.name: scenario for scenario in fixtures.scenarios()}
    return [
        _Request(
            "POST /images/load",
            "POST",
            "/images/load?quiet=1",
            scenarios["load"].prepare,
            "load",
            body=fixtures.archives["loadme"],
        ),
        _Request(
            "POST /images/{name}/tag",
            "POST",
            "/images/base:1/tag?repo=moved&tag=1",
            scenarios["tag"].prepare,
            "tag",
        ),
        _Request(
            "DELETE /images/{name}", "DELETE", "/images/victim:1", scenarios["rmi"].prepare, "rmi"
        ),
        _Request(
            "POST /images/prune", "POST", "/images/prune", scenarios["prune"].prepare, "prune"
        ),
        _Request(
            "POST /catalog/images/{name}/squash",
            "POST",
            "/catalog/images/child:1/squash",
            scenarios["squash"].prepare,
            "squash",
            json={"tags": ["flat:1"]},
        ),
    ]


class _Server:
    """`catalog serve` through the zygote, on a free port."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.port = _free_port()
        self.pid = runner.zygote.start(
            ["serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=runner.made.env(),
            cwd=runner.scratch,
            stdout=runner.stdout,
            stderr=runner.stderr,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError("catalog serve did not start listening")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def send(self, request: _Request) -> httpx.Response:
        content = request.body.read_bytes() if request.body is not None else None
        with httpx.Client(base_url=self.url, timeout=60) as client:
            return client.request(request.method, request.path, content=content, json=request.json)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        return self.runner.zygote.wait()


def _remove_spools(made: TrialCatalog) -> int:
    """Remove the upload spool files a killed server left (`<root>/tmp/serve-load-*`); how
    many. Their clean-up at start-up and by gc is issue 12's item 7, the server-safety
    part, done apart from these trials: until it is in, they are counted, not failed."""
    spool = made.root / TEMPORARY_DIRNAME
    found = sorted(spool.glob("serve-load-*")) if spool.is_dir() else []
    for path in found:
        path.unlink()
    return len(found)


def _kill_serve(
    made: TrialCatalog, runner: Runner, fixtures: Fixtures, trials: int, chooser: random.Random
) -> Tally:
    tally = Tally()
    watch = Stopwatch()
    requests = _serve_requests(fixtures)
    scenarios = {scenario.name: scenario for scenario in fixtures.scenarios()}
    with made.open() as catalog:
        spans: dict[str, float] = {}
        server = _Server(runner)
        try:
            for request in requests:
                request.prepare(catalog)
                timer = Stopwatch()
                answer = server.send(request)
                spans[request.name] = timer.seconds
                if answer.status_code >= 300:
                    tally.failures.append(f"serve: calibration {request.name}: {answer.text}")
        finally:
            server.stop()
        if tally.failures:
            return tally
        tally.span = statistics.median(spans.values())
        for index in range(trials):
            request = requests[index % len(requests)]
            request.prepare(catalog)
            delay = chooser.uniform(0, spans[request.name])
            what = f"serve killed {delay * 1000:.0f} ms into {request.name} (trial {index})"
            server = _Server(runner)

            def send(request: _Request = request, server: _Server = server) -> None:
                # The connection dies with the server: that is the point.
                with contextlib.suppress(httpx.HTTPError):
                    server.send(request)

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(delay)
            status = server.stop(signal.SIGKILL)
            sender.join()
            tally.trials += 1
            if status == -signal.SIGKILL:
                tally.killed += 1
            _, stderr = runner.output()
            problems = []
            if "Traceback" in stderr:
                problems.append(f"{what}: the server logged a traceback: {stderr[-300:]}")
            scenario = scenarios[request.scenario]
            tally.spools += _remove_spools(made)
            problems += after_trial(catalog, scenario.retry, scenario.done, what)
            if problems:
                tally.failures.append("; ".join(problems))
    tally.seconds = watch.seconds
    return tally


def run(settings: RunSettings) -> list[ClassResult]:
    trials = 100 if settings.full else 10
    chooser = random.Random(settings.seed)  # noqa: S311 - kill delays reproducible by seed
    results: list[ClassResult] = []
    scratch = settings.workdir / "kills-files"
    scratch.mkdir(parents=True, exist_ok=True)
    with trial_catalog(settings, "kills") as made, Zygote() as zygote:
        fixtures = Fixtures(made, scratch)
        runner = Runner(made, zygote, scratch)
        # The CLI's own start-up (typer building the command tree): kills there prove
        # nothing, so the delays are drawn from what comes after.
        startup = statistics.median(runner.run(["--version"])[1] for _ in range(3))
        tallies = [
            (scenario.name, _kill_scenario(made, runner, scenario, trials, chooser, startup))
            for scenario in fixtures.scenarios()
        ]
        tallies.append(("serve", _kill_serve(made, runner, fixtures, trials, chooser)))
    for name, tally in tallies:
        details = [
            f"- {tally.trials} kills at a uniform random delay between"
            f" {tally.startup * 1000:.0f} ms (the CLI's start-up) and"
            f" {tally.span * 1000:.0f} ms (the whole command; seed {settings.seed}):"
            f" {tally.killed} landed while it ran, the others after it had finished."
            if name != "serve"
            else f"- {tally.trials} kills of the server at a uniform random delay within the"
            f" request (median {tally.span * 1000:.0f} ms; seed {settings.seed}), the requests"
            f" in turn: load, tag, delete, prune, squash; {tally.killed} landed while it ran."
            f" Upload spool files left by killed loads: {tally.spools} (removed here: their"
            " clean-up by the server and gc is item 7 of issue 12, not yet in this branch).",
            "- After each: fsck clean, the operation run again succeeds, and gc leaves"
            " nothing behind.",
            *(f"- FAILED: {line}" for line in tally.failures[:10]),
        ]
        label = "catalog serve mid-request" if name == "serve" else name
        results.append(
            ClassResult(
                f"kill -9: {label}",
                settings.backend,
                tally.trials,
                len(tally.failures),
                tally.seconds,
                details,
            )
        )
    return results

"""A fork server for the `catalog` CLI: catalog imported once, then one forked child per
command, so that a trial that kills a command (or attaches strace to it) pays
milliseconds, not the second that importing catalog costs.

    python zygote.py        # run by `Zygote()`, never by hand

The child is the real CLI (`catalog.cli.main.main`, as the console script runs it) in a
process of its own; only the imports happened before the fork, and no connection,
thread or file of catalog's is open then. Requests are JSON lines on stdin
(`{"argv": [...], "env": {...}, "cwd": ..., "stdout": path, "stderr": path, "hold":
bool}`); the answers are JSON lines: `{"pid": N}` once forked, `{"status": S}` when it
has ended (the exit code, or minus the signal that ended it). With `hold`, the child
waits for SIGUSR1 before it runs (so strace can attach first).

This file is run by path, not as `-m benchmarks...`: then `catalog` is the installed
package, as the console script would have it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()


LAZY_IMPORTS = (
    "typer._adapters",
    "sqlite3",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
)


def _child(request: dict[str, Any], ready: int) -> None:
    """In the forked child: become `catalog ARGV...` and never return. With `hold`, it
    says it is `ready` (one byte on that pipe) once set up, then waits for SIGUSR1: so
    strace, attached after that, counts only the command's calls."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        os.write(ready, b"r")
        os.close(ready)
        if request.get("hold"):
            signal.sigwait({signal.SIGUSR1})
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        from catalog.cli.main import main

        sys.argv = ["catalog", *request["argv"]]
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:
            # What the interpreter does with an uncaught exception: the traceback is
            # what the trial looks for.
            traceback.print_exc()
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """The zygote's loop: one request at a time, on stdin."""
    import catalog.cli.main  # the point: imported once, before any fork

    # What is imported lazily, on a command's first parse (typer's adapters, pydantic) or
    # as the engine is made (the database drivers): Python's start-up too, not the
    # command's own work, so a fault injected in a command lands in catalog's calls.
    for name in LAZY_IMPORTS:
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            if name == "psycopg":
                for info in pkgutil.walk_packages(module.__path__, "psycopg."):
                    with contextlib.suppress(Exception):
                        importlib.import_module(info.name)

    # catalog's own modules, which the CLI imports when a command is used (its start-up,
    # catalog.cli.lazy): a fault injected into those imports would test Python's import
    # system, not catalog's calls. Not the migrations (Alembic runs those) or __main__.
    import catalog

    for info in pkgutil.walk_packages(catalog.__path__, "catalog."):
        if info.name.startswith("catalog.migrations") or info.name.endswith("__main__"):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(info.name)

    for line in sys.stdin:
        request = json.loads(line)
        # SIGUSR1 blocked from before the fork: a child that holds never misses it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            _child(request, writer)
        os.close(writer)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        os.read(reader, 1)  # set up (or dead): only then is its PID handed out
        os.close(reader)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        print(json.dumps({"status": code}), flush=True)


class Zygote:
    """The harness's end: start the fork server, run commands through it."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(_HERE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd="/",
        )
        self._lock = threading.Lock()

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        stdout: Path,
        stderr: Path,
        hold: bool = False,
    ) -> int:
        """Fork `catalog ARGV...`; its PID. Call `wait()` before the next `start()`."""
        request = {
            "argv": argv,
            "env": env,
            "cwd": str(cwd),
            "stdout": str(stdout),
            "stderr": str(stderr),
            "hold": hold,
        }
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError("the zygote has died")
        pid: int = json.loads(answer)["pid"]
        return pid

    def wait(self) -> int:
        """The exit status of the last command: its code, or minus its signal."""
        assert self._process.stdout is not None
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError("the zygote has died")
        status: int = json.loads(answer)["status"]
        return status

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


if __name__ == "__main__":
    serve()

"""Run the reliability suite and write benchmarks/RELIABILITY.md.

    python -m benchmarks.reliability                 # the bounded form (as CI runs it)
    python -m benchmarks.reliability --full          # every class in full (slow)
    python -m benchmarks.reliability --only kills    # classes whose name starts so

PostgreSQL too when CATALOG_BENCH_DATABASE_URL names a server where databases may be
created. Run from a source checkout with the package and its test extras installed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.reliability.results import ClassResult, RunSettings, render

# The classes, in the order RELIABILITY.md lists them: modules of this package, each with
# run(settings) -> list[ClassResult].
CLASSES: tuple[str, ...] = (
    "leases",
    "kills",
    "iofaults",
    "concurrency",
    "hostile",  # hostile input: archives, layers, command lines, requests
    "fuzz",  # Hypothesis (and, in full, Atheris) over the parsers of untrusted input
    "serving",  # catalog serve under floods, slow bodies, busy, browsers, kills
)

OUTPUT = Path(__file__).resolve().parents[1] / "RELIABILITY.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    servers = [None, os.environ.get("CATALOG_BENCH_DATABASE_URL") or None]
    results: list[ClassResult] = []
    started = time.perf_counter()
    for url in dict.fromkeys(servers):
        for name in CLASSES:
            if args.only and not any(name.startswith(prefix) for prefix in args.only):
                continue
            module = importlib.import_module(f"benchmarks.reliability.{name}")
            with tempfile.TemporaryDirectory(prefix=f"catalog-reliability-{name}-") as work:
                settings = RunSettings(args.full, args.seed, Path(work), url)
                for result in module.run(settings):
                    results.append(result)
                    print(
                        f"{result.name} ({result.backend}): {result.trials} trials, "
                        f"{result.failures} failures, {result.seconds:.1f} s",
                        file=sys.stderr,
                    )
    seconds = time.perf_counter() - started
    args.output.write_text(render(results, full=args.full, seed=args.seed, seconds=seconds))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())

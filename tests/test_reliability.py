"""The reliability suite (benchmarks/reliability/) in its bounded form, on the backend under
test: one test per class of trials, each of which must end with 0 failures. The full form
(`python -m benchmarks.reliability --full`) writes benchmarks/RELIABILITY.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from support.environment import TEST_DATABASE_URL_ENV

REPOSITORY = Path(__file__).resolve().parents[1]
# The suite is not part of the installed package: reach it in the source tree, after
# every installed module (so `catalog` stays the installed one).
if str(REPOSITORY) not in sys.path:
    sys.path.append(str(REPOSITORY))

from benchmarks.reliability.results import ClassResult, RunSettings  # noqa: E402


def bounded(tmp_path: Path) -> RunSettings:
    return RunSettings(False, 7, tmp_path, os.environ.get(TEST_DATABASE_URL_ENV) or None)


def assert_no_failures(results: list[ClassResult]) -> None:
    assert results
    for result in results:
        assert result.trials > 0, result.name
        assert result.failures == 0, "\n".join([result.name, *result.details])


def test_leases(tmp_path: Path) -> None:
    from benchmarks.reliability import leases

    assert_no_failures(leases.run(bounded(tmp_path)))


def test_kills(tmp_path: Path) -> None:
    from benchmarks.reliability import kills

    assert_no_failures(kills.run(bounded(tmp_path)))


def test_iofaults(tmp_path: Path) -> None:
    from benchmarks.reliability import iofaults

    assert_no_failures(iofaults.run(bounded(tmp_path)))


def test_concurrency(tmp_path: Path) -> None:
    from benchmarks.reliability import concurrency

    assert_no_failures(concurrency.run(bounded(tmp_path)))

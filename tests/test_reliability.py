"""The reliability suite (benchmarks/reliability/) in its bounded form, on the backend
under test: every class must end with 0 failures. The full form and RELIABILITY.md come
from `python -m benchmarks.reliability --full`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support.environment import TEST_DATABASE_URL_ENV

REPOSITORY = Path(__file__).resolve().parents[1]
# The suite is not part of the installed package: reach it in the source tree, after
# every installed module (so `catalog` stays the installed one).
if str(REPOSITORY) not in sys.path:
    sys.path.append(str(REPOSITORY))

from benchmarks.reliability.results import ClassResult, RunSettings  # noqa: E402


def settings(tmp_path: Path) -> RunSettings:
    return RunSettings(
        full=False,
        seed=7,
        workdir=tmp_path,
        database_url=os.environ.get(TEST_DATABASE_URL_ENV) or None,
    )


def assert_no_failures(results: list[ClassResult]) -> None:
    assert results
    for result in results:
        assert result.trials > 0, result.name
        assert result.failures == 0, "\n".join([result.name, *result.details])


@pytest.mark.slow
def test_hostile_input(tmp_path: Path) -> None:
    from benchmarks.reliability import hostile

    assert_no_failures(hostile.run(settings(tmp_path)))


@pytest.mark.slow
def test_fuzzing(tmp_path: Path) -> None:
    from benchmarks.reliability import fuzz

    assert_no_failures(fuzz.run(settings(tmp_path)))


@pytest.mark.slow
def test_serving(tmp_path: Path) -> None:
    from benchmarks.reliability import serving

    assert_no_failures(serving.run(settings(tmp_path)))


@pytest.mark.slow
def test_leases(tmp_path: Path) -> None:
    from benchmarks.reliability import leases

    assert_no_failures(leases.run(settings(tmp_path)))


@pytest.mark.slow
def test_kills(tmp_path: Path) -> None:
    from benchmarks.reliability import kills

    assert_no_failures(kills.run(settings(tmp_path)))


@pytest.mark.slow
def test_iofaults(tmp_path: Path) -> None:
    from benchmarks.reliability import iofaults

    assert_no_failures(iofaults.run(settings(tmp_path)))


@pytest.mark.slow
def test_concurrency(tmp_path: Path) -> None:
    from benchmarks.reliability import concurrency

    assert_no_failures(concurrency.run(settings(tmp_path)))

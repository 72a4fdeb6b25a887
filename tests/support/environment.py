"""What a test run has: the backend under test, and whether a missing requirement skips a
test or fails it (CATALOG_TEST_REQUIRE_ALL=1, set by .ci/run, so that CI can't pass by
skipping what it was meant to check)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

TEST_DATABASE_URL_ENV = "CATALOG_TEST_DATABASE_URL"
REQUIRE_ALL_ENV = "CATALOG_TEST_REQUIRE_ALL"


def strict() -> bool:
    return os.environ.get(REQUIRE_ALL_ENV, "") not in ("", "0")


def need(condition: object, reason: str) -> None:
    """Skip (fail under CATALOG_TEST_REQUIRE_ALL) when a test's requirement is missing."""
    if not condition:
        if strict():
            pytest.fail(f"required for CI: {reason}")
        pytest.skip(reason)


def backend() -> str:
    return "postgresql" if os.environ.get(TEST_DATABASE_URL_ENV) else "sqlite"


def console_script() -> str:
    """The installed `catalog` console script: beside this Python (a virtual environment's
    bin/, on PATH or not), else on PATH. The suite runs against the installed package (the
    README's `pip install '.[test]'`), so a missing script is an error, not a skip."""
    beside = Path(sys.executable).parent / "catalog"
    found = str(beside) if beside.exists() else shutil.which("catalog")
    if found is None:
        raise FileNotFoundError("the catalog console script is not installed: pip install .")
    return found

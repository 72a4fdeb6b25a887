"""The reference files the tests read: Docker's behaviour specs and real image archives,
in the shared directory beside the checkout."""

from __future__ import annotations

from pathlib import Path

from support.environment import need

SHARED = Path(__file__).resolve().parents[3] / "shared"
SPEC = SHARED / "spec"
FIXTURES = SHARED / "fixtures" / "images"


def fixture(relative: str) -> Path:
    """The image fixture at `relative` (an archive or a layout, below FIXTURES); the test
    is skipped, or failed under CATALOG_TEST_REQUIRE_ALL, when it is missing."""
    path = FIXTURES / relative
    need(path.exists(), f"image fixture {relative} is missing")
    return path

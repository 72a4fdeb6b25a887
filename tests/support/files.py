"""The files the tests read, all inside the repository: real image archives from other
projects' test data (tests/fixtures/images, with origin, licence and SHA-256 of each in its
SOURCES.md) and reference-grammar cases (tests/fixtures/reference-cases.json)."""

from __future__ import annotations

from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURES = FIXTURES_DIR / "images"
REFERENCE_CASES = FIXTURES_DIR / "reference-cases.json"


def fixture(relative: str) -> Path:
    """The image fixture at `relative` (an archive or a layout, below FIXTURES). The
    fixtures are part of the repository, so a missing one is an error, never a skip."""
    path = FIXTURES / relative
    if not path.exists():
        raise FileNotFoundError(f"image fixture {relative} is missing from {FIXTURES}")
    return path

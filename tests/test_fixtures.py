"""The fixtures are other projects' files, kept byte for byte: each one matches the size and
SHA-256 recorded beside it, and none is unaccounted for."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from support.files import FIXTURES as IMAGE_FIXTURES
from support.files import FIXTURES_DIR as FIXTURES

# `| relative/path | bytes | sha256 |` rows of SOURCES.md's file table.
ROW = re.compile(r"^\| ([^|]+?) \| (\d+) \| ([0-9a-f]{64}) \|$", re.MULTILINE)
# `SHA-256 `<hex>`, <n> bytes` in the fixtures README.
README_ENTRY = re.compile(
    r"^\| `([^`]+)` \|.*SHA-256 `([0-9a-f]{64})`, (\d+) bytes \|$", re.MULTILINE
)


def recorded(text: str) -> dict[str, tuple[int, str]]:
    return {path: (int(size), digest) for path, size, digest in ROW.findall(text)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


IMAGE_FILES = recorded((IMAGE_FIXTURES / "SOURCES.md").read_text(encoding="utf-8"))


def test_sources_lists_the_files() -> None:
    assert len(IMAGE_FILES) >= 38


@pytest.mark.parametrize("relative", sorted(IMAGE_FILES))
def test_image_fixture_matches_its_recorded_checksum(relative: str) -> None:
    size, digest = IMAGE_FILES[relative]
    path = IMAGE_FIXTURES / relative
    assert path.stat().st_size == size
    assert sha256(path) == digest


def test_every_image_fixture_is_accounted_for() -> None:
    """A file is either listed in SOURCES.md or an OCI layout blob named by its digest."""
    unlisted = []
    blobs = 0
    for path in sorted(IMAGE_FIXTURES.rglob("*")):
        relative = path.relative_to(IMAGE_FIXTURES).as_posix()
        if not path.is_file() or relative == "SOURCES.md" or relative in IMAGE_FILES:
            continue
        if path.parent.name == "sha256" and path.parent.parent.name == "blobs":
            assert sha256(path) == path.name, relative
            blobs += 1
        else:
            unlisted.append(relative)
    assert unlisted == []
    assert blobs > 0


def test_reference_cases_match_their_recorded_checksum() -> None:
    entries = README_ENTRY.findall((FIXTURES / "README.md").read_text(encoding="utf-8"))
    assert [name for name, _, _ in entries] == ["reference-cases.json"]
    for name, digest, size in entries:
        path = FIXTURES / name
        assert path.stat().st_size == int(size)
        assert sha256(path) == digest

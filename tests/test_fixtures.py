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


README_FILES = {
    name: (int(size), digest)
    for name, digest, size in README_ENTRY.findall(
        (FIXTURES / "README.md").read_text(encoding="utf-8")
    )
}


def test_readme_lists_the_files() -> None:
    assert "reference-cases.json" in README_FILES
    assert {"moby-api/v1.41.yaml", "moby-api/v1.52.yaml"} <= set(README_FILES)


@pytest.mark.parametrize("name", sorted(README_FILES))
def test_fixture_matches_its_recorded_checksum(name: str) -> None:
    size, digest = README_FILES[name]
    path = FIXTURES / name
    assert path.stat().st_size == size
    assert sha256(path) == digest


def test_every_api_spec_is_accounted_for() -> None:
    """moby's specs are listed in the README; SOURCES.md is the note of their origin."""
    directory = FIXTURES / "moby-api"
    present = {f"moby-api/{path.name}" for path in directory.iterdir()}
    assert present == {name for name in README_FILES if name.startswith("moby-api/")} | {
        "moby-api/SOURCES.md"
    }

"""Every command has help and is in the README (as sqlite-utils' test_docs does)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from catalog.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


COMMANDS = [(path, command) for path, command in walk(typer.main.get_command(app)) if path]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_and_is_documented(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"catalog {' '.join(path)} has no help"
    assert f"`catalog {' '.join(path)}" in README.read_text(), f"catalog {' '.join(path)}"


# Typer's rich panels print these where docker prints nothing (flags) or a word.
TYPE_PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|list\[[^>]*\]|int range|float range)>")


def render_help(path: tuple[str, ...], columns: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=columns)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", [(), *(p for p, _ in COMMANDS)], ids=lambda p: " ".join(p))
def test_help_reads_as_docker_help(path: tuple[str, ...]) -> None:
    """Flags show no metavar, values a name (not a Python type), arguments as docker writes
    them; every line fits the terminal."""
    text = render_help(path, 80)
    assert TYPE_PLACEHOLDER.search(text) is None, text
    [usage] = [line for line in text.splitlines() if line.startswith("Usage: ")]
    assert "{" not in usage, usage
    assert "--help  " in text and "--help <" not in text
    # A line may overflow only where a single word is longer than the space left for it.
    assert all(len(line) <= 80 or " " not in line.strip() for line in text.splitlines()), text


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_paragraphs_flow_to_the_terminal_width(path: tuple[str, ...], command: Any) -> None:
    """Docstrings are hard-wrapped in the source; on a wide terminal each paragraph is one
    line, and on a narrow one it wraps at the terminal's width, not at the source's."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(command.help).split("\n\n")]
    wide = {line.strip() for line in render_help(path, 1000).splitlines()}
    for paragraph in paragraphs:
        assert paragraph in wide, f"not re-flowed: {paragraph!r}"
    narrow = render_help(path, 60).splitlines()
    assert all(len(line) <= 60 or " " not in line.strip() for line in narrow), narrow


REPOSITORY = README.parent
# `docs/listing.md §4.1`, `docs/listing.md §8, §9`, `docs/layers-and-squash.md §5 #35`.
CITATION = re.compile(r"docs/([a-z-]+\.md)((?:,? §\d+(?:\.\d+)*)*)")


def citations() -> list[tuple[str, str, str]]:
    found = []
    for folder in ("catalog", "tests", "benchmarks", "migrations"):
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for match in CITATION.finditer(text):
                for section in re.findall(r"§(\d+(?:\.\d+)*)", match.group(2)):
                    found.append((path.relative_to(REPOSITORY).as_posix(), match[1], section))
                found.append((path.relative_to(REPOSITORY).as_posix(), match[1], ""))
    return found


def test_code_cites_the_docs() -> None:
    assert len({(document, section) for _, document, section in citations() if section}) >= 30


@pytest.mark.parametrize(("source", "document", "section"), citations())
def test_every_docs_citation_resolves(source: str, document: str, section: str) -> None:
    """A comment that cites docs/FILE §N names a file of docs/ with a heading numbered N."""
    path = REPOSITORY / "docs" / document
    assert path.is_file(), f"{source} cites docs/{document}, which does not exist"
    if section:
        heading = re.compile(rf"^#{{2,4}} {re.escape(section)}\.? ", re.MULTILINE)
        assert heading.search(path.read_text(encoding="utf-8")), f"{source}: {document} §{section}"


def test_readme_links_the_docs() -> None:
    assert "(docs/README.md)" in README.read_text()

"""Every command has help and is in the README (as sqlite-utils' test_docs does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

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

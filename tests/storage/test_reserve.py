"""The space kept back beside a SQLite database (catalog.storage.reserve): made while there
is room, released (and said so) when the disk is full, so that a command can still run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.cli.main import app
from catalog.storage import reserve
from catalog.storage.reserve import RESERVE_BYTES, keep_reserve


def test_made_with_room_released_when_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "catalog.db"
    kept = tmp_path / "catalog.db.reserve"
    monkeypatch.setattr(reserve, "_free_bytes", lambda directory: RESERVE_BYTES * 3)
    assert keep_reserve(database) is None
    assert not kept.exists()  # not with less than four times its size free
    monkeypatch.setattr(reserve, "_free_bytes", lambda directory: RESERVE_BYTES * 4)
    assert keep_reserve(database) is None
    assert kept.stat().st_size == RESERVE_BYTES and kept.stat().st_blocks * 512 >= RESERVE_BYTES
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.db.reserve"]
    monkeypatch.setattr(reserve, "_free_bytes", lambda directory: RESERVE_BYTES)
    assert keep_reserve(database) is None  # enough room yet: kept
    monkeypatch.setattr(reserve, "_free_bytes", lambda directory: 0)
    notice = keep_reserve(database)
    assert notice is not None and notice.startswith(f"the disk holding {database} is full")
    assert not kept.exists()
    assert keep_reserve(database) is None  # nothing more to release


def test_the_cli_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    runner = CliRunner()
    assert runner.invoke(app, ["--root", str(root), "images"]).exit_code == 0
    assert (root / "catalog.db.reserve").exists()
    monkeypatch.setattr(reserve, "_free_bytes", lambda directory: 0)
    result = runner.invoke(app, ["--root", str(root), "images"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Warning: the disk holding ")
    assert result.stdout.startswith("REPOSITORY")

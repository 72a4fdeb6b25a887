"""Migration 0004: containers recorded before it get sensible details (the image's ID as
the name used, the image's entrypoint, command and labels, start and finish times from
their creation), on both backends; and the downgrade gives them back as they were."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from catalog.db import schema
from catalog.db.engine import create_catalog_engine

IMAGE = "sha256:" + "a" * 64
GONE = "sha256:" + "b" * 64
CREATED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Entrypoint": ["/init"], "Cmd": ["serve", "--port", "80"], "Labels": {"a": "b"}},
    "rootfs": {"type": "layers", "diff_ids": []},
}


def _insert_old_rows(engine: Engine) -> None:
    """Rows as revision 0003 kept them: an image with labels, containers in three states
    and one whose image was deleted."""
    created = CREATED if engine.dialect.name == "postgresql" else CREATED.replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO images (id, os, architecture, size, created)"
                " VALUES (:id, 'linux', 'amd64', 0, :created)"
            ),
            {"id": IMAGE, "created": created},
        )
        connection.execute(
            text("INSERT INTO image_configs (image_id, config) VALUES (:id, :config)"),
            {"id": IMAGE, "config": json.dumps(CONFIG).encode()},
        )
        connection.execute(
            text("INSERT INTO image_labels (image_id, key, value) VALUES (:id, 'a', 'b')"),
            {"id": IMAGE},
        )
        for index, (image, state) in enumerate(
            [(IMAGE, "created"), (IMAGE, "running"), (IMAGE, "exited"), (GONE, "exited")]
        ):
            connection.execute(
                text(
                    "INSERT INTO containers (id, name, image_id, state, created)"
                    " VALUES (:id, :name, :image, :state, :created)"
                ),
                {
                    "id": str(index) * 64,
                    "name": f"c{index}",
                    "image": image,
                    "state": state,
                    "created": created,
                },
            )


def test_existing_containers_get_sensible_details(empty_db_url: str) -> None:
    engine = create_catalog_engine(empty_db_url)
    try:
        schema.upgrade(engine, "0003")
        _insert_old_rows(engine)
        schema.upgrade(engine)
        assert schema.schema_drift(engine) == []
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT name, image, entrypoint, cmd, started_at, finished_at, exit_code"
                    " FROM containers ORDER BY name"
                )
            ).all()
            labels = connection.execute(
                text("SELECT container_id, key, value FROM container_labels ORDER BY 1")
            ).all()
        by_name = {row.name: row for row in rows}
        assert {row.image for row in rows} == {IMAGE, GONE}  # the ID: the name used is unknown
        for name in ("c0", "c1", "c2"):
            entrypoint, cmd = by_name[name].entrypoint, by_name[name].cmd
            if isinstance(entrypoint, str):  # SQLite hands JSON back as text here
                entrypoint, cmd = json.loads(entrypoint), json.loads(cmd)
            assert (entrypoint, cmd) == (["/init"], ["serve", "--port", "80"])
        assert by_name["c3"].entrypoint is None and by_name["c3"].cmd is None
        assert by_name["c0"].started_at is None and by_name["c0"].finished_at is None
        assert by_name["c1"].started_at is not None and by_name["c1"].finished_at is None
        assert by_name["c2"].started_at is not None and by_name["c2"].finished_at is not None
        assert {row.exit_code for row in rows} == {0}
        assert [(row.container_id, row.key, row.value) for row in labels] == [
            ("0" * 64, "a", "b"),
            ("1" * 64, "a", "b"),
            ("2" * 64, "a", "b"),
        ]
        schema.downgrade(engine, "0003")
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM containers ORDER BY name"))
            assert [name for (name,) in names] == ["c0", "c1", "c2", "c3"]
    finally:
        engine.dispose()

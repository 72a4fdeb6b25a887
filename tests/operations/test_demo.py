"""`catalog demo`: a sample catalog made from nothing, and what catalog says about it."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from support.environment import console_script
from typer.testing import Result

from catalog.context import Catalog, open_catalog
from catalog.db.models import Container, Image, ImageLayer, ImageReference
from catalog.domain.reference import familiar_string
from catalog.operations.demo import STEPS, build_demo, is_empty
from catalog.services.refstore import references_by_image
from catalog.services.reports import run_report
from catalog.settings import Location, normalize_database_url

HEADINGS = [
    "$ catalog images",
    "$ catalog images -a",
    "$ catalog system df -v",
    "$ catalog image squash --parent demo/base:latest -t demo/worker:squashed demo/worker:latest",
    "$ catalog images demo/worker",
    "$ catalog report usage-by-repository",
    "$ catalog report reclaimable",
]


def check_demo_catalog(catalog: Catalog, *, squashed: bool) -> None:
    """What the demo promises: a base, apps sharing its layers, tags, an untagged leaf, an
    intermediate image, containers in several states; and, from the CLI, a squash."""
    with catalog.database.read() as session:
        images = {row.id: row for row in session.scalars(select(Image))}
        names = references_by_image(session, list(images))
        children = {i.parent_id for i in images.values() if i.parent_id}
        untagged = [i for i in images if not names.get(i)]
        intermediate = [i for i in untagged if i in children]
        leaves = [i for i in untagged if i not in children]
        assert len(images) == len(STEPS) + squashed
        assert len(intermediate) == 1 and len(leaves) == 1
        tags = {familiar_string(r) for refs in names.values() for r in refs}
        assert {"demo/base:latest", "demo/web:latest", "demo/api:latest"} <= tags
        api = {familiar_string(r): i for i, refs in names.items() for r in refs}
        assert api["demo/api:latest"] == api["demo/api:1.1"]
        # The base's bottom layer is shared by every image but demo/tools.
        bottom = session.scalars(select(ImageLayer.chain_id).where(ImageLayer.position == 0))
        assert sorted(Counter(bottom).values()) == [1, len(images) - 1]
        if squashed:
            # The squashed worker: the base's two layers, then one layer for the rest.
            worker = api["demo/worker:squashed"]
            base = api["demo/base:latest"]
            assert images[worker].parent_id == base
            assert images[worker].size == images[api["demo/worker:latest"]].size
            layers = session.scalars(
                select(ImageLayer.chain_id)
                .where(ImageLayer.image_id.in_([worker, base]))
                .order_by(ImageLayer.image_id == worker, ImageLayer.position)
            ).all()
            assert layers[:2] == layers[2:4] and len(layers) == 5
        states = dict(
            session.execute(select(Container.state, func.count()).group_by(Container.state)).all()
        )
        assert states == {"running": 2, "exited": 1, "created": 1}
        # Spread over weeks: the oldest image is months older than the newest.
        times = [i.created for i in images.values() if i.created is not None]
        assert max(times) - min(times) > timedelta(weeks=10)
        usage = run_report(session=session, name="usage-by-repository").rows
        by_name = {row["repository"]: row for row in usage}
        assert by_name["demo/base"]["unique_bytes"] == 0  # all of it is in the apps
        assert by_name["demo/tools"]["shared_bytes"] == 0
        assert all(r["unique_bytes"] + r["shared_bytes"] == r["total_bytes"] for r in usage)
        assert session.scalar(select(func.count()).select_from(ImageReference)) == 9 + squashed


def test_build_demo(catalog: Catalog, tmp_path: Path) -> None:
    with catalog.database.read() as session:
        assert is_empty(session=session)
    made = build_demo(catalog, workdir=tmp_path / "layers", now=datetime.now(UTC))
    assert len(made.images) == len(STEPS) and len(made.containers) == 4
    with catalog.database.read() as session:
        assert not is_empty(session=session)
    check_demo_catalog(catalog, squashed=False)


def test_demo_through_the_cli(cli: Callable[..., Result], root: Path, db_url: str) -> None:
    output = cli("demo").stdout
    positions = [output.index(heading + "\n") for heading in HEADINGS]
    assert positions == sorted(positions)
    assert f"Building a demo catalog in {root}" in output
    assert "demo/worker" in output and "<none>" in output
    assert "Images space usage:" in output
    assert "all dangling" in output  # the reclaimable report's totals
    assert "demo/worker   squashed" in output
    assert f"catalog --root {root} --db ... report --list" in output
    location = Location(root=root, database_url=normalize_database_url(db_url))
    with open_catalog(location) as catalog:
        check_demo_catalog(catalog, squashed=True)

    # The catalog now holds images: refused, unless told.
    refused = cli("demo", exit_code=1)
    assert refused.stderr == (
        f"Error: the catalog at {root} already holds images: give the demo a new --root "
        "(or --force to add the demo's images to it)\n"
    )
    cli("demo", "--force")
    with open_catalog(location) as catalog, catalog.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Container)) == 8


def test_demo_root_option(cli: Callable[..., Result], tmp_path: Path) -> None:
    """`demo --root DIR` builds there (the global --db still applies)."""
    target = tmp_path / "elsewhere"
    output = cli("demo", "--root", str(target)).stdout
    assert f"Building a demo catalog in {target}" in output
    assert (target / "blobs").is_dir()


def test_demo_on_a_fresh_machine(tmp_path: Path) -> None:
    """The README's first command: the installed console script, no options, in a new
    temporary directory, ignoring the environment's catalog settings."""
    argv = [console_script()]
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(temporary),
        "CATALOG_ROOT": str(tmp_path / "not-used"),
        "CATALOG_DATABASE_URL": "mysql://not/used",
    }
    done = subprocess.run(
        [*argv, "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (made,) = temporary.glob("catalog-demo-*")
    assert f"Building a demo catalog in {made}" in done.stdout
    for heading in HEADINGS:
        assert heading + "\n" in done.stdout
    assert not (tmp_path / "not-used").exists()
    location = Location(
        root=made, database_url=normalize_database_url(f"sqlite:///{made / 'catalog.db'}")
    )
    with open_catalog(location) as catalog:
        check_demo_catalog(catalog, squashed=True)
    # No leftovers: the generated layer directories are gone.
    assert not list(made.glob(".demo-layers-*"))

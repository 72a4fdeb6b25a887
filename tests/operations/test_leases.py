"""Blob leases: a load racing an rmi, prune or gc of images that share its layers never
commits rows without their files; leases of killed writers are released by gc; a file an
rmi cannot remove is a warning, not a failure (catalog.operations.leases)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.archive_builders import Image as ArchiveImage
from support.archive_builders import docker_archive
from support.builders import ImageBuilder, diff_id, layer_tar
from support.surgery import age_store, blob_files, blob_rows, drop_image_rows, table_rows
from typer.testing import Result

from catalog.context import Catalog
from catalog.docker.filters import FilterArgs
from catalog.errors import Conflict
from catalog.faults import set_fault_hook
from catalog.operations.fsck.check import check_catalog
from catalog.operations.gc import collect_garbage
from catalog.operations.leases import Lease, live_leased, owner_alive, process_owner
from catalog.operations.load import load_archive
from catalog.operations.removal import prune_images, remove_images
from catalog.storage.content import ContentStore

Cli = Callable[..., Result]

L1 = layer_tar({"one": b"1" * 100})
L2 = layer_tar({"two": b"2" * 200})
L3 = layer_tar({"three": b"3" * 300})


def problems(catalog: Catalog) -> list[str]:
    return [p.line() for p in check_catalog(catalog).problems]


@pytest.fixture
def at_point() -> Iterator[Callable[[str, Callable[[], None]], None]]:
    """Run `work()` once, the first time an operation reaches fault point `point`."""
    previous = set_fault_hook(None)
    pending: dict[str, Callable[[], None]] = {}

    def hook(name: str) -> None:
        work = pending.pop(name, None)
        if work is not None:
            work()

    set_fault_hook(hook)

    def arm(point: str, work: Callable[[], None]) -> None:
        pending[point] = work

    yield arm
    set_fault_hook(previous)


def rival(catalog: Catalog, kind: str, shared: str) -> Callable[[], None]:
    """What runs while the load is between its look at the store and its commit."""

    def run() -> None:
        if kind == "rmi":
            deletion = remove_images(catalog, [shared])
            assert not deletion.failures
        elif kind == "prune":
            report = prune_images(catalog, FilterArgs({"dangling": {"false": True}}))
            assert report.images_deleted
        else:
            drop_image_rows(catalog, shared)
            age_store(catalog)
            collect_garbage(catalog, grace_seconds=0)
        # The rival has run: the shared image's rows are gone, and so would the files be.
        assert diff_id(L1) not in blob_rows(catalog)

    return run


@pytest.mark.parametrize("kind", ["rmi", "prune", "gc"])
@pytest.mark.parametrize("point", ["load:leased", "load:layer-stored", "load:layers-stored"])
def test_a_load_racing_a_removal_of_shared_layers_keeps_its_files(
    catalog: Catalog, images: ImageBuilder, at_point: Any, kind: str, point: str
) -> None:
    """The issue's data loss: the load finds L1 and L2 stored and skips writing them; an
    rmi (prune, gc) of the image that had them removes their rows. Their files must stay
    until the load's rows commit."""
    shared = images.add([L1, L2], tags=["shared:1"])
    at_point(point, rival(catalog, kind, shared))
    result = load_archive(
        catalog, io.BytesIO(docker_archive([ArchiveImage([L1, L2, L3], tags=["new:1"])]))
    )
    assert [image.created for image in result.images] == [True]
    assert blob_rows(catalog) == blob_files(catalog) == {diff_id(x) for x in (L1, L2, L3)}
    assert problems(catalog) == []
    assert table_rows(catalog)["blob_leases"] == []


def test_files_not_held_go_with_their_rows(catalog: Catalog, images: ImageBuilder) -> None:
    shared = images.add([L1, L2], tags=["shared:1"])
    images.add([L3], tags=["other:1"])
    remove_images(catalog, [shared])
    assert blob_files(catalog) == {diff_id(L3)}


def test_a_commit_refuses_a_file_gone_from_under_it(catalog: Catalog) -> None:
    """A lease judged dead cannot make a writer commit rows without files: the writer's
    commit looks at every held file under the writer lock."""
    digest = catalog.store.write(L1).digest
    with Lease(catalog, purpose="testing") as lease:
        lease.hold([digest])
        catalog.store.delete(digest)  # as a removal that ignored the lease would
        with (
            pytest.raises(
                Conflict, match=f"blob {digest} was removed from the store while testing"
            ),
            catalog.database.write() as session,
        ):
            lease.commit(session)
    assert table_rows(catalog)["blob_leases"] == []  # released on the way out


def test_a_reader_gets_nothing_held_for_an_image_already_gone(catalog: Catalog) -> None:
    with Lease(catalog, purpose="reading") as lease:
        assert lease.hold_for_reading([diff_id(L1)]) == {diff_id(L1)}
        assert lease.digests == set()
    assert table_rows(catalog)["blob_leases"] == []


KILLED_HOLDER = """
import os
import sys
from pathlib import Path
from catalog.context import open_catalog
from catalog.operations.leases import Lease
from catalog.settings import Location, normalize_database_url

root, url, digest = sys.argv[1:]
location = Location(root=Path(root), database_url=normalize_database_url(url))
lease = Lease(open_catalog(location), purpose="dying")
lease.hold([digest])
os._exit(137)
"""


def test_gc_releases_the_lease_of_a_killed_writer(
    catalog: Catalog, db_url: str, root: Path, tmp_path: Path
) -> None:
    digest = catalog.store.write(L1).digest
    script = tmp_path / "holder.py"
    script.write_text(KILLED_HOLDER)
    died = subprocess.run([sys.executable, str(script), str(root), db_url, digest], check=False)
    assert died.returncode == 137
    (row,) = table_rows(catalog)["blob_leases"]
    assert owner_alive(row[2]) is False  # its process is gone
    assert held(catalog) == set()
    assert [p.split(":")[0] for p in problems(catalog)] == ["lease-dead"]
    assert collect_garbage(catalog, dry_run=True).lines()[0] == (
        f"Would release lease: {row[0]} (1 blob, owner gone)"
    )
    report = collect_garbage(catalog, grace_seconds=0)
    assert [lease.reason for lease in report.leases] == ["owner gone"]
    assert report.lines()[-1].startswith(f"Released lease: {row[0]} (1 blob, owner gone)")
    assert [b.digest for b in report.blob_files] == [digest]
    assert table_rows(catalog)["blob_leases"] == [] and blob_files(catalog) == set()


def held(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return live_leased(session=session)


def test_a_live_writer_lease_is_kept_whatever_the_grace(catalog: Catalog) -> None:
    digest = catalog.store.write(L1).digest
    age_store(catalog)
    with Lease(catalog, purpose="testing") as lease:
        lease.hold([digest])
        report = collect_garbage(catalog, grace_seconds=0)
        assert report.kept_held == [digest] and report.leases == []
        assert blob_files(catalog) == {digest}
    report = collect_garbage(catalog, grace_seconds=0)  # released: now it goes
    assert [b.digest for b in report.blob_files] == [digest]


def test_owners() -> None:
    mine = process_owner()
    assert owner_alive(mine) is True
    version, boot, namespace, pid, started = mine.split(" ")
    assert owner_alive(f"{version} {boot} {namespace} {pid} {int(started) + 1}") is False
    assert owner_alive(f"{version} another-boot {namespace} {pid} {started}") is None
    assert owner_alive("from an older catalog") is None


def test_an_rmi_that_cannot_unlink_reports_the_images_removed(
    catalog: Catalog, images: ImageBuilder, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = images.add([L1], tags=["app:1"])

    def refuse(self: ContentStore, digest: str) -> int:
        raise PermissionError(13, os.strerror(13), str(self.path(digest)))

    monkeypatch.setattr(ContentStore, "delete", refuse)
    result = cli("rmi", "app:1")
    assert result.stdout == f"Untagged: app:1\nDeleted: {image}\nDeleted: {diff_id(L1)}\n"
    assert result.stderr == (
        f"Warning: blob file {diff_id(L1)} could not be removed (Permission denied);"
        " catalog gc removes it later\n"
    )
    monkeypatch.undo()
    assert blob_rows(catalog) == set() and blob_files(catalog) == {diff_id(L1)}
    age_store(catalog)
    assert [b.digest for b in collect_garbage(catalog).blob_files] == [diff_id(L1)]


def test_without_leases_the_same_interleaving_loses_files(
    catalog: Catalog,
    images: ImageBuilder,
    at_point: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: with leases switched off, the rmi at the same point
    removes the files the load then commits rows for (the issue's data loss)."""
    monkeypatch.setattr(Lease, "hold", lambda self, digests, require_rows=False: set())
    monkeypatch.setattr(Lease, "commit", lambda self, session: None)
    shared = images.add([L1, L2], tags=["shared:1"])
    at_point("load:layers-stored", rival(catalog, "rmi", shared))
    load_archive(catalog, io.BytesIO(docker_archive([ArchiveImage([L1, L2, L3], tags=["new:1"])])))
    assert problems(catalog) == [
        f"blob-missing: {digest}: no file in the store"
        for digest in sorted([diff_id(L1), diff_id(L2)])
    ]


def test_fsck_repair_releases_a_dead_lease(
    catalog: Catalog, db_url: str, root: Path, tmp_path: Path
) -> None:
    digest = catalog.store.write(L1).digest
    script = tmp_path / "holder.py"
    script.write_text(KILLED_HOLDER)
    subprocess.run([sys.executable, str(script), str(root), db_url, digest], check=False)
    (row,) = table_rows(catalog)["blob_leases"]
    repaired = check_catalog(catalog, repair=True)
    assert [o.line() for o in repaired.repairs or []] == [
        f"Repaired: lease-dead: {row[0]}: released"
    ]
    assert table_rows(catalog)["blob_leases"] == []

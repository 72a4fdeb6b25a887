"""`catalog gc`: unused layer and blob rows, row-less blob files and temporary files go;
everything in use stays, a dry run changes nothing, and a load in progress is safe."""

from __future__ import annotations

import io
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.archive_builders import Image as ArchiveImage
from support.archive_builders import docker_archive
from support.builders import ImageBuilder, diff_id, image_config, layer_tar
from support.files import fixture
from support.surgery import (
    age,
    age_store,
    blob_files,
    blob_rows,
    drop_image_rows,
    image_rows,
    layer_rows,
    sql,
    store_entries,
    table_rows,
    temporary_file,
)
from typer.testing import Result

import catalog.operations.load as load_service
from catalog.context import Catalog
from catalog.docker.humanize import human_size
from catalog.domain.digest import chain_ids
from catalog.domain.imageconfig import parse_config
from catalog.operations.fsck.check import check_catalog
from catalog.operations.gc import (
    DEFAULT_GRACE_SECONDS,
    GarbageReport,
    collect_garbage,
    remove_unused_rows,
    unused_layers,
)
from catalog.operations.load import load_archive
from catalog.services.images import StoredLayer, register_image
from catalog.storage.layers import ingest_layer

Cli = Callable[..., Result]

L1 = layer_tar({"one": b"1" * 100})
L2 = layer_tar({"two": b"2" * 200})
L3 = layer_tar({"three": b"3" * 300})
L4 = layer_tar({"four": b"4" * 400})
L5 = layer_tar({"five": b"5" * 500})


def chains(*layers: bytes) -> list[str]:
    return chain_ids([diff_id(layer) for layer in layers])


def problems(catalog: Catalog) -> list[str]:
    return [p.line() for p in check_catalog(catalog).problems]


@pytest.fixture
def shared_stacks(catalog: Catalog, images: ImageBuilder) -> dict[str, str]:
    """base = L1 L2 (kept); child = L1 L2 L3 and other = L1 L4, whose image rows are gone
    and whose layers are left behind; every file aged past the grace period."""
    ids = {
        "base": images.add([L1, L2], tags=["base:1"]),
        "child": images.add([L1, L2, L3], tags=["child:1"]),
        "other": images.add([L1, L4]),
    }
    drop_image_rows(catalog, ids["child"])
    drop_image_rows(catalog, ids["other"])
    age_store(catalog)
    return ids


def test_gc_removes_unused_layers_top_first_and_keeps_shared_ones(
    catalog: Catalog, shared_stacks: dict[str, str]
) -> None:
    child, other = chains(L1, L2, L3), chains(L1, L4)
    report = collect_garbage(catalog)
    # The deepest first; L1 and L1+L2 are the base image's, so they stay.
    assert report.layers == [child[2], other[1]]
    assert report.blobs == sorted([diff_id(L3), diff_id(L4)])
    assert sorted(b.digest for b in report.blob_rows) == sorted([diff_id(L3), diff_id(L4)])
    assert sorted(b.digest for b in report.blob_files) == sorted([diff_id(L3), diff_id(L4)])
    assert report.reclaimed == len(L3) + len(L4)
    assert report.temporary_files == [] and report.kept_recent == []
    assert layer_rows(catalog) == set(child[:2])
    assert blob_rows(catalog) == blob_files(catalog) == {diff_id(L1), diff_id(L2)}
    assert image_rows(catalog) == {shared_stacks["base"]}
    assert problems(catalog) == []
    # Nothing left to do.
    again = collect_garbage(catalog)
    assert (again.layers, again.blobs, again.reclaimed) == ([], [], 0)


def test_gc_removes_a_deep_stack_from_the_top_down(catalog: Catalog, images: ImageBuilder) -> None:
    """SQLite checks RESTRICT row by row: the bottom layer first would fail."""
    image = images.add([L1, L2, L3, L4, L5])
    drop_image_rows(catalog, image)
    age_store(catalog)
    stack = chains(L1, L2, L3, L4, L5)
    with catalog.database.read() as session:
        assert unused_layers(session=session) == stack[::-1]
    report = collect_garbage(catalog)
    assert report.layers == stack[::-1]
    assert layer_rows(catalog) == set() and blob_rows(catalog) == set()
    assert blob_files(catalog) == set()


def test_a_layer_under_a_used_layer_is_used(catalog: Catalog, images: ImageBuilder) -> None:
    """Only the top of the stack is listed (as could be after a hand edit): the layers under
    it are still used, through parent_chain_id, and the unused stack above goes."""
    kept = images.add([L1, L2, L3])
    above = images.add([L1, L2, L3, L4])
    assert sql(catalog, "DELETE FROM image_layers WHERE image_id = :id AND position < 2", id=kept)
    drop_image_rows(catalog, above)
    age_store(catalog)
    stack = chains(L1, L2, L3, L4)
    with catalog.database.read() as session:
        assert unused_layers(session=session) == [stack[3]]
    assert collect_garbage(catalog, dry_run=True).layers == [stack[3]]
    assert problems(catalog) == [
        f"image-layer-positions: {kept}: layer positions are 2, not 0 to 0",
        f"layer-unused: {stack[3]}: no image uses it (catalog gc removes it)",
    ]
    with catalog.database.write() as session:
        rows = remove_unused_rows(session=session)
    assert rows.layers == [stack[3]]
    assert [b.digest for b in rows.blobs] == [diff_id(L4)]
    assert layer_rows(catalog) == set(stack[:3])


def test_a_top_chain_id_alone_keeps_its_stack(catalog: Catalog, images: ImageBuilder) -> None:
    image = images.add([L1, L2])
    sql(catalog, "DELETE FROM image_layers WHERE image_id = :id", id=image)
    age_store(catalog)
    report = collect_garbage(catalog)
    assert report.layers == [] and report.blobs == []
    assert layer_rows(catalog) == set(chains(L1, L2))


def test_dry_run_changes_nothing_and_lists_what_gc_then_does(
    catalog: Catalog, shared_stacks: dict[str, str]
) -> None:
    leftover = age(catalog.store.path(catalog.store.write(L5).digest))
    crashed = age(temporary_file(catalog, "crashed", b"x" * 70))
    rows_before, entries_before = table_rows(catalog), store_entries(catalog)

    dry = collect_garbage(catalog, dry_run=True)

    assert table_rows(catalog) == rows_before
    assert store_entries(catalog) == entries_before
    assert leftover.exists() and crashed.exists()
    done = collect_garbage(catalog)
    assert [
        line.replace("Would delete", "Deleted").replace("Would remove", "Removed")
        for line in dry.lines()
    ] == done.lines()
    assert dry.reclaimed == done.reclaimed == len(L3) + len(L4) + len(L5) + 70
    child, other = chains(L1, L2, L3), chains(L1, L4)
    assert done.lines() == [
        f"Deleted layer: {child[2]}",
        f"Deleted layer: {other[1]}",
        *(f"Deleted blob: {d}" for d in sorted([diff_id(L3), diff_id(L4), diff_id(L5)])),
        f"Removed temporary file: {crashed}",
    ]
    assert not leftover.exists() and not crashed.exists()


def test_blob_files_without_a_row_go_after_the_grace_period(
    catalog: Catalog, images: ImageBuilder
) -> None:
    image = images.add([L1], tags=["keep:1"])
    age_store(catalog)
    old = catalog.store.write(L2).digest
    age(catalog.store.path(old))
    recent = catalog.store.write(L3).digest  # as a load that has not committed yet

    report = collect_garbage(catalog)

    assert [(b.digest, b.size) for b in report.blob_files] == [(old, len(L2))]
    assert report.kept_recent == [recent]
    assert report.lines()[-1] == (
        f"Kept 1 unreferenced blob file modified less than {DEFAULT_GRACE_SECONDS:g} seconds"
        " ago (see --grace)"
    )
    assert blob_files(catalog) == {diff_id(L1), recent}
    # With a shorter grace period the recent one goes too; the image's blob never does.
    report = collect_garbage(catalog, grace_seconds=0)
    assert [b.digest for b in report.blob_files] == [recent]
    assert blob_files(catalog) == {diff_id(L1)}
    assert image_rows(catalog) == {image}


def test_temporary_files_of_a_running_writer_survive(catalog: Catalog) -> None:
    catalog.store.write(b"make the directory")
    crashed = age(temporary_file(catalog, "crashed", b"x" * 10))
    fresh = temporary_file(catalog, "fresh", b"y" * 5)
    with catalog.store.writer() as writer:
        writer.write(b"still streaming")
        age(writer.temporary_path, 60)  # a minute without a write: still well in grace

        report = collect_garbage(catalog)

        assert [(f.path, f.size) for f in report.temporary_files] == [(crashed, 10)]
        assert writer.temporary_path.exists() and fresh.exists() and not crashed.exists()
        blob = writer.commit()
    assert catalog.store.read_bytes(blob.digest) == b"still streaming"
    # Anything older than the grace period given goes.
    report = collect_garbage(catalog, grace_seconds=0, dry_run=True)
    assert [f.path for f in report.temporary_files] == [fresh]
    assert fresh.exists()


@pytest.mark.parametrize("grace", [DEFAULT_GRACE_SECONDS, 0.0])
def test_gc_between_the_two_phases_of_a_load(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, grace: float
) -> None:
    """A load writes its blobs, then commits their rows. gc running in between sees blob
    files without rows: the load's lease keeps them, whatever the grace period (before
    leases, `--grace 0` removed them and the load committed rows without files)."""
    archive = tmp_path / "image.tar"
    archive.write_bytes(docker_archive([ArchiveImage([L1, L2], tags=["racy:1"])]))
    reports: list[GarbageReport] = []
    store_layers = load_service._store_layers

    def store_then_collect(*args: Any, **kwargs: Any) -> Any:
        stored = store_layers(*args, **kwargs)
        reports.append(collect_garbage(catalog, grace_seconds=grace))
        return stored

    monkeypatch.setattr(load_service, "_store_layers", store_then_collect)
    load_archive(catalog, archive)
    (report,) = reports
    digests = sorted([diff_id(L1), diff_id(L2)])
    assert report.kept_held == digests and report.blob_files == []
    assert report.lines() == ["Kept 2 unreferenced blob files that a writer in progress holds"]
    assert blob_files(catalog) == set(digests)
    assert problems(catalog) == []
    assert table_rows(catalog)["blob_leases"] == []  # released as the rows committed


def test_gc_waits_for_a_writer_and_keeps_what_it_committed(catalog: Catalog) -> None:
    """Rows are removed under the writer lock; files only if still row-less afterwards."""
    ingested = ingest_layer(catalog.store, io.BytesIO(L1))
    age(catalog.store.path(ingested.diff_id))
    config = parse_config(image_config([ingested.diff_id]))
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with catalog.database.write() as session:
                register_image(
                    session=session,
                    config=config,
                    layers=[StoredLayer(ingested.diff_id, ingested.diff_size, ingested.size)],
                )
                session.flush()
                locked.set()
                release.wait(10)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
            locked.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert locked.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    try:
        report = collect_garbage(catalog, grace_seconds=0)
    finally:
        release.set()
        thread.join(10)
        timer.cancel()
    assert not failures
    assert report.blob_files == [] and report.layers == []
    assert image_rows(catalog) == {config.id}
    assert blob_files(catalog) == {ingested.diff_id}
    assert problems(catalog) == []


def test_gc_through_the_cli_after_load_rmi_and_a_failed_load(
    catalog: Catalog, cli: Cli, tmp_path: Path
) -> None:
    cli("load", "-q", "-i", str(fixture("google-go-containerregistry/tarball/test_bundle.tar")))
    cli("load", "-q", "-i", str(fixture("wagoodman-dive/test-docker-image.tar")))
    cli("rmi", "test_image_1")
    # A load that fails on its second layer leaves the first one's blob in the store.
    broken = tmp_path / "broken.tar"
    bad_config = image_config([diff_id(L5), diff_id(L3)])
    broken.write_bytes(docker_archive([ArchiveImage([L5, L4], config=bad_config)]))
    failed = cli("load", "-i", str(broken), exit_code=1)
    assert "invalid diffID for layer 1" in failed.stderr
    assert diff_id(L5) in blob_files(catalog) and diff_id(L5) not in blob_rows(catalog)
    rows_before, files_before = table_rows(catalog), blob_files(catalog)

    young = cli("gc")
    assert young.stdout == (
        f"Kept 1 unreferenced blob file modified less than {DEFAULT_GRACE_SECONDS:g} seconds"
        " ago (see --grace)\nTotal reclaimed space: 0B\n"
    )
    age_store(catalog)
    dry = cli("gc", "--dry-run")
    assert dry.stdout == (
        f"Would delete blob: {diff_id(L5)}\nTotal reclaimable space: {human_size(len(L5), 4)}\n"
    )
    assert table_rows(catalog) == rows_before and blob_files(catalog) == files_before
    done = cli("gc")
    assert done.stdout == (
        f"Deleted blob: {diff_id(L5)}\nTotal reclaimed space: {human_size(len(L5), 4)}\n"
    )
    assert table_rows(catalog) == rows_before
    assert blob_files(catalog) == files_before - {diff_id(L5)}
    assert cli("gc").stdout == "Total reclaimed space: 0B\n"
    assert cli("fsck").stdout == ""
    assert cli("gc", "--grace", "-1", exit_code=2).exit_code == 2


def test_gc_as_a_subprocess(
    run_catalog: Callable[..., subprocess.CompletedProcess[str]], catalog: Catalog
) -> None:
    leftover = catalog.store.write(L3).digest
    crashed = temporary_file(catalog, "crashed", b"x" * 1000)
    age_store(catalog)

    run = run_catalog

    dry = run("gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    total = human_size(len(L3) + 1000, 4)
    assert dry.stdout == (
        f"Would delete blob: {leftover}\nWould remove temporary file: {crashed}\n"
        f"Total reclaimable space: {total}\n"
    )
    done = run("gc")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"Deleted blob: {leftover}\nRemoved temporary file: {crashed}\n"
        f"Total reclaimed space: {total}\n"
    )
    assert store_entries(catalog) == set()


def test_spools_a_killed_upload_left_go(catalog: Catalog) -> None:
    """`catalog serve` killed during `POST /images/load` left `<root>/tmp/serve-load-*`
    (1.5 GB seen), which neither gc nor fsck knew. Past the grace period, gc removes it."""
    spools = catalog.location.root / "tmp"
    spools.mkdir(parents=True, exist_ok=True)
    old = spools / "serve-load-k1ll3d.tar"
    old.write_bytes(b"\0" * 4096)
    age(old)
    young = spools / "load-abcd1234"
    young.write_bytes(b"\0" * 10)
    other = spools / "not-a-spool"
    other.write_bytes(b"")
    age(other)
    report = collect_garbage(catalog)
    assert [(f.path, f.size) for f in report.temporary_files] == [(old, 4096)]
    assert f"Removed temporary file: {old}" in report.lines()
    assert not old.exists() and young.exists() and other.exists()

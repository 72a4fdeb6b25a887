"""`catalog fsck`: every kind of damage is reported exactly, one line each, and `--repair`
fixes the safe ones and says which it could not."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from support.builders import ImageBuilder, diff_id, directory, hardlink, layer_tar, symlink
from support.files import fixture
from support.surgery import (
    age,
    age_store,
    blob_files,
    blob_rows,
    drop_image_rows,
    flip_byte,
    layer_rows,
    recompute_kept_facts,
    reference_rows,
    sql,
    sql_without_foreign_keys,
    temporary_file,
)
from typer.testing import Result

import catalog.operations.fsck.check as fsck_check
import catalog.operations.fsck.files as fsck_files
from catalog.context import Catalog
from catalog.db.models import Blob, Image, ImageConfigJSON, ImageReference, Layer
from catalog.domain.digest import chain_ids, sha256_digest
from catalog.operations.fsck.check import check_catalog
from catalog.operations.fsck.files import scan_blob
from catalog.operations.fsck.problems import FsckReport
from catalog.operations.gc import collect_garbage
from catalog.operations.removal import remove_images

Cli = Callable[..., Result]

L1 = layer_tar({"one": b"1" * 100})
L2 = layer_tar({"two": b"2" * 200})
L3 = layer_tar({"three": b"3" * 300})
L4 = layer_tar({"four": b"4" * 400})
L5 = layer_tar({"five": b"5" * 500})
C1, C12, C123 = chain_ids([diff_id(L1), diff_id(L2), diff_id(L3)])
C4 = diff_id(L4)


def by_subject(line: str) -> str:
    """Problems of one group come in the order of their subjects."""
    return line.split(": ")[1]


def check(catalog: Catalog) -> list[str]:
    return check_catalog(catalog).lines()


def repair(catalog: Catalog) -> FsckReport:
    return check_catalog(catalog, repair=True)


def repairs(report: FsckReport) -> list[str]:
    assert report.repairs is not None
    return [outcome.line() for outcome in report.repairs]


@pytest.fixture
def built(catalog: Catalog, images: ImageBuilder) -> dict[str, str]:
    """base = L1 L2, child = L1 L2 L3 (parent base), other = L4; each tagged."""
    base = images.add([L1, L2], tags=["base:1"])
    return {
        "base": base,
        "child": images.add([L1, L2, L3], tags=["child:1"], parent=base),
        "other": images.add([L4], tags=["other:1"]),
    }


def test_a_healthy_catalog_has_no_problems(catalog: Catalog, built: dict[str, str]) -> None:
    report = check_catalog(catalog)
    assert report.problems == [] and report.remaining_errors == []
    checked = report.checked
    assert (checked.images, checked.layers, checked.blobs, checked.blob_files) == (3, 4, 4, 4)
    assert (checked.references, checked.containers) == (3, 0)
    database = (
        "PRAGMA integrity_check"
        if catalog.database.dialect == "sqlite"
        else "no index check: the amcheck extension is not installed"
    )
    assert report.summary() == (
        "fsck: checked 3 images, 4 layers, 4 blob rows, 4 blob files, 3 references,"
        f" 0 containers, the database ({database}): 0 errors, 0 warnings"
    )
    fixed = repair(catalog)
    assert fixed.repairs == [] and fixed.problems == []


LOADED_FIXTURES = [
    "google-go-containerregistry/tarball/test_bundle.tar",
    "google-go-containerregistry/mutate/whiteout_image.tar",
    "wagoodman-dive/test-docker-image.tar",
    "wagoodman-dive/test-kaniko-image.tar",
    "wagoodman-dive/test-oci-zstd-image.tar",
    "wagoodman-dive/test-oci-estargz-image.tar",
    "containers-image/almostempty.tar",
]


def test_loaded_fixtures_check_out_and_damage_to_them_shows(catalog: Catalog, cli: Cli) -> None:
    """Real layers, once gzip or zstd: the re-scan agrees with what load computed."""
    for relative in LOADED_FIXTURES:
        cli("load", "-q", "-i", str(fixture(relative)))
    clean = cli("fsck")
    assert clean.stdout == ""
    assert clean.stderr.startswith("fsck: checked 8 images, ")
    assert clean.stderr.endswith(": 0 errors, 0 warnings\n")
    cli("rmi", "dive-test:kaniko-latest", "test_image_1")
    assert cli("fsck").stdout == ""
    with catalog.database.read() as session:
        chain, size = session.execute(
            select(Layer.chain_id, Layer.diff_size).where(Layer.diff_size > 1000).limit(1)
        ).one()
    sql(catalog, "UPDATE layers SET diff_size = 1 WHERE chain_id = :c", c=chain)
    broken = cli("fsck", exit_code=1)
    assert broken.stdout == (
        f"layer-diff-size: {chain}: the row records 1 bytes, its tar's regular files hold {size}\n"
    )
    fixed = cli("fsck", "--repair")
    assert fixed.stdout.splitlines()[-1] == f"Repaired: layer-diff-size: {chain}: set to {size}"
    assert cli("fsck").stdout == ""


def test_an_edited_blob_file(catalog: Catalog, built: dict[str, str], cli: Cli) -> None:
    path = catalog.store.path(diff_id(L3))
    flip_byte(path, 600)
    actual = sha256_digest(path.read_bytes())
    problem = f"blob-corrupt: {diff_id(L3)}: its content hashes to {actual}"
    assert check(catalog) == [problem]
    result = cli("fsck", "--repair", exit_code=1)
    assert result.stdout == (
        f"{problem}\nNot repaired: blob-corrupt: {diff_id(L3)}: a row uses it; load the image"
        " that has it again\n"
    )
    assert result.stderr.endswith(": 1 error, 0 warnings, 0 repaired, 1 error left\n")
    assert path.exists()


def test_a_deleted_blob_file(catalog: Catalog, built: dict[str, str]) -> None:
    catalog.store.path(diff_id(L4)).unlink()
    problem = f"blob-missing: {diff_id(L4)}: no file in the store"
    assert check(catalog) == [problem]
    report = repair(catalog)
    assert repairs(report) == [
        f"Not repaired: blob-missing: {diff_id(L4)}: a layer uses it; load the image that has"
        " it again"
    ]
    assert report.remaining_errors == report.problems
    assert diff_id(L4) in blob_rows(catalog)


def test_a_blob_row_whose_file_is_gone_and_no_layer_uses(
    catalog: Catalog, built: dict[str, str]
) -> None:
    ghost = sha256_digest(b"never stored")
    with catalog.database.write() as session:
        session.add(Blob(digest=ghost, size=12))
    assert check(catalog) == [f"blob-missing: {ghost}: no file in the store"]
    report = repair(catalog)
    assert repairs(report) == [
        f"Repaired: blob-missing: {ghost}: deleted the row (no layer uses it)"
    ]
    assert report.remaining_errors == []
    assert ghost not in blob_rows(catalog)
    assert check(catalog) == []


def test_a_changed_config_byte(catalog: Catalog, built: dict[str, str]) -> None:
    base = built["base"]
    with catalog.database.read() as session:
        config = session.scalars(
            select(ImageConfigJSON.config).where(ImageConfigJSON.image_id == base)
        )
        raw = config.one()
    changed = raw.replace(b'"amd64"', b'"arm64"')
    assert changed != raw
    sql(catalog, "UPDATE image_configs SET config = :c WHERE image_id = :id", c=changed, id=base)
    problem = f"image-config-digest: {base}: its config hashes to {sha256_digest(changed)}"
    assert check(catalog) == [problem]
    assert repairs(repair(catalog)) == [
        f"Not repaired: image-config-digest: {base}: the config is the image; load the image again"
    ]


def test_broken_sizes_are_re_derived(catalog: Catalog, built: dict[str, str]) -> None:
    child = built["child"]
    sql(catalog, "UPDATE images SET size = 601 WHERE id = :id", id=child)
    sql(catalog, "UPDATE layers SET diff_size = 7 WHERE chain_id = :c", c=C4)
    sql(catalog, "UPDATE blobs SET size = 1 WHERE digest = :d", d=diff_id(L2))
    problems = [
        f"blob-size: {diff_id(L2)}: the row records 1 bytes, the file has {len(L2)}",
        f"layer-diff-size: {C4}: the row records 7 bytes, its tar's regular files hold 400",
        f"image-size: {child}: the row records 601 bytes, its layers' diff sizes sum to 600",
    ]
    assert check(catalog) == problems
    report = repair(catalog)
    assert report.lines() == [
        *problems,
        f"Repaired: blob-size: {diff_id(L2)}: set to {len(L2)}",
        f"Repaired: layer-diff-size: {C4}: set to 400",
        f"Repaired: image-size: {child}: set to 600",
    ]
    assert report.remaining_errors == []
    assert check(catalog) == []
    with catalog.database.read() as session:
        sizes = dict(session.execute(select(Image.id, Image.size)).all())
    assert sizes == {built["base"]: 300, child: 600, built["other"]: 400}


def test_bogus_references(catalog: Catalog, built: dict[str, str]) -> None:
    """Rows whose foreign keys hold, but that no command could name."""
    base = built["base"]
    with catalog.database.write() as session:
        session.add(ImageReference(repository="Bad Name", tag="latest", image_id=base))
        session.add(ImageReference(repository="busybox", tag="latest", image_id=base))
    recompute_kept_facts(catalog)  # as if they had come through the writers
    problems = [
        "reference-invalid: Bad Name:latest: invalid reference format: repository name"
        " (library/Bad Name) must be lowercase",
        "reference-invalid: busybox:latest: repository name must be canonical",
    ]
    assert check(catalog) == problems
    report = repair(catalog)
    assert repairs(report) == [
        f"Repaired: reference-invalid: Bad Name:latest: deleted the reference (it named {base})",
        f"Repaired: reference-invalid: busybox:latest: deleted the reference (it named {base})",
    ]
    assert reference_rows(catalog) == {
        "docker.io/library/base:1",
        "docker.io/library/child:1",
        "docker.io/library/other:1",
    }
    assert check(catalog) == []


def test_a_container_of_an_image_removed_with_force_is_a_warning(
    catalog: Catalog, built: dict[str, str], cli: Cli
) -> None:
    container = cli(
        "container", "create", "--image", "other:1", "--name", "ghost", "--state", "exited"
    ).stdout.strip()
    cli("rmi", "-f", "other:1")
    problem = (
        f"container-image-missing: {container}: ghost: image {built['other']} does not exist"
        " (removed with rmi -f); the container keeps its image ID"
    )
    result = cli("fsck")  # exit 0: a warning
    assert result.stdout == problem + "\n"
    assert result.stderr.endswith(": 0 errors, 1 warning\n")
    assert cli("fsck", "--repair").stdout == problem + "\n"
    assert cli("container", "ls", "-a", "-q").stdout.split() == [container[:12]]


def test_a_wrong_top_chain_id_is_re_derived(catalog: Catalog, built: dict[str, str]) -> None:
    child = built["child"]
    sql(catalog, "UPDATE images SET top_chain_id = :c WHERE id = :id", c=C12, id=child)
    problem = f"image-top-chain-id: {child}: top_chain_id is {C12}, its top layer is {C123}"
    assert check(catalog) == [problem]
    assert repairs(repair(catalog)) == [f"Repaired: image-top-chain-id: {child}: set to {C123}"]
    assert check(catalog) == []


def test_a_gap_in_an_image_layer_list(catalog: Catalog, built: dict[str, str]) -> None:
    child = built["child"]
    sql(catalog, "DELETE FROM image_layers WHERE image_id = :id AND position = 1", id=child)
    problem = f"image-layer-positions: {child}: layer positions are 0, 2, not 0 to 1"
    assert check(catalog) == [problem]  # its size and top layer then mean nothing
    assert repairs(repair(catalog)) == [
        f"Not repaired: image-layer-positions: {child}: load the image again"
    ]


def test_a_layer_list_that_is_not_the_configs(catalog: Catalog, built: dict[str, str]) -> None:
    child = built["child"]
    sql(
        catalog,
        "UPDATE image_layers SET chain_id = :c WHERE image_id = :id AND position = 2",
        c=C12,
        id=child,
    )
    sql(catalog, "UPDATE images SET top_chain_id = :c WHERE id = :id", c=C12, id=child)
    assert check(catalog) == [
        f"image-chain-id: {child}: layer 2 is {C12}, the config's diff IDs give {C123}",
        f"layer-unused: {C123}: no image uses it (catalog gc removes it)",
    ]
    report = repair(catalog)
    assert repairs(report) == [f"Not repaired: image-chain-id: {child}: load the image again"]


def test_a_layer_row_whose_diff_id_changed(catalog: Catalog, built: dict[str, str]) -> None:
    sql(catalog, "UPDATE layers SET diff_id = :d WHERE chain_id = :c", d=diff_id(L4), c=C123)
    wanted = sha256_digest(f"{C12} {diff_id(L4)}".encode())
    assert check(catalog) == [
        f"layer-chain-id: {C123}: its parent and diff ID give {wanted}",
        f"layer-blob: {C123}: its blob is {diff_id(L3)}, not its diff ID {diff_id(L4)}",
    ]
    assert len(repair(catalog).remaining_errors) == 2


def test_rows_left_without_their_image(catalog: Catalog, built: dict[str, str]) -> None:
    other = built["other"]
    sql_without_foreign_keys(catalog, "DELETE FROM images WHERE id = :id", id=other)
    problems = [
        f"reference-image-missing: docker.io/library/other:1: image {other} does not exist",
        f"orphan-rows: {other}: 1 image_configs row, but the image does not exist",
        f"orphan-rows: {other}: 1 image_history row, but the image does not exist",
        f"orphan-rows: {other}: 1 image_layers row, but the image does not exist",
    ]
    assert check(catalog) == problems
    report = repair(catalog)
    assert repairs(report) == [
        "Repaired: reference-image-missing: docker.io/library/other:1: deleted the reference"
        f" (it named {other})",
        f"Repaired: orphan-rows: {other}: deleted 1 image_configs row",
        f"Repaired: orphan-rows: {other}: deleted 1 image_history row",
        f"Repaired: orphan-rows: {other}: deleted 1 image_layers row",
    ]
    # Its layer is now garbage: a warning, for gc.
    assert check(catalog) == [f"layer-unused: {C4}: no image uses it (catalog gc removes it)"]
    age_store(catalog)
    assert collect_garbage(catalog).layers == [C4]
    assert check(catalog) == []


def test_layer_and_blob_rows_gone_under_their_users(
    catalog: Catalog, built: dict[str, str]
) -> None:
    base, child = built["base"], built["child"]
    sql_without_foreign_keys(
        catalog,
        "DELETE FROM layers WHERE chain_id = :c",
        c=C12,
    )
    sql_without_foreign_keys(catalog, "DELETE FROM blobs WHERE digest = :d", d=diff_id(L4))
    images = [
        f"image-layer-missing: {base}: layer 1 ({C12}) does not exist",
        f"image-layer-missing: {child}: layer 1 ({C12}) does not exist",
    ]
    layers = [
        f"layer-parent-missing: {C123}: parent layer {C12} does not exist",
        f"layer-blob-missing: {C4}: blob row {diff_id(L4)} does not exist",
    ]
    assert check(catalog) == [
        *sorted(layers, key=by_subject),
        *sorted(images, key=by_subject),
        f"blob-unused: {diff_id(L2)}: no layer uses it (catalog gc removes it)",
    ]
    assert len(repair(catalog).remaining_errors) == 4


def test_left_over_files(catalog: Catalog, built: dict[str, str]) -> None:
    stray = catalog.store.write(L5).digest
    age(catalog.store.path(stray))
    catalog.store.write(b"a load in progress")  # young: not reported
    corrupt = sha256_digest(b"what it should have been")
    corrupt_path = catalog.store.path(corrupt)
    corrupt_path.write_bytes(b"what it is")
    age(corrupt_path)
    crashed = age(temporary_file(catalog, "crashed", b"x" * 10))
    running = temporary_file(catalog, "running", b"y" * 10)
    errors = [f"blob-corrupt: {corrupt}: its content hashes to {sha256_digest(b'what it is')}"]
    warnings = [
        f"blob-unreferenced: {stray}: a file of {len(L5)} bytes without a blob row"
        " (catalog gc removes it)",
        f"temporary-file: {crashed}: left by an interrupted write, last written 2 hours ago",
    ]
    report = check_catalog(catalog)
    assert report.lines() == sorted(errors + warnings[:1], key=by_subject) + warnings[1:]
    assert [p.line() for p in report.errors] == errors
    report = repair(catalog)
    assert repairs(report) == [
        f"Repaired: blob-corrupt: {corrupt}: removed the file (no row)",
        f"Repaired: temporary-file: {crashed}: removed",
    ]
    assert report.remaining_errors == []
    assert not corrupt_path.exists() and not crashed.exists() and running.exists()
    assert check(catalog) == [warnings[0]]


def test_unused_rows_are_warnings(catalog: Catalog, built: dict[str, str], cli: Cli) -> None:
    drop_image_rows(catalog, built["child"])
    leftover = catalog.store.write(L5)
    with catalog.database.write() as session:
        session.add(Blob(digest=leftover.digest, size=leftover.size))
    warnings = [
        f"layer-unused: {C123}: no image uses it (catalog gc removes it)",
        f"blob-unused: {diff_id(L5)}: no layer uses it (catalog gc removes it)",
    ]
    result = cli("fsck")
    assert result.stdout.splitlines() == warnings
    assert result.stderr.endswith(": 0 errors, 2 warnings\n")
    age_store(catalog)
    cli("gc")
    assert cli("fsck").stdout == ""
    assert layer_rows(catalog) == {C1, C12, C4}
    assert blob_rows(catalog) == blob_files(catalog) == {diff_id(x) for x in (L1, L2, L4)}


def test_a_concurrent_rmi_is_not_damage(
    catalog: Catalog, built: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are read first, files after: an rmi in between removes a file whose row fsck
    saw. That row is looked up again before a blob-missing is reported."""
    check_files = fsck_check.check_files

    def rmi_then_check(*args: Any, **kwargs: Any) -> Any:
        remove_images(catalog, ["other:1"])
        assert not catalog.store.exists(diff_id(L4))
        return check_files(*args, **kwargs)

    monkeypatch.setattr(fsck_check, "check_files", rmi_then_check)
    assert check(catalog) == []


def test_a_file_removed_between_listing_and_reading_is_not_damage(
    catalog: Catalog, built: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = fsck_files.scan_blob

    def rmi_then_scan(store: Any, digest: str, **kwargs: Any) -> Any:
        if digest == diff_id(L4):
            remove_images(catalog, ["other:1"])
        return scan(store, digest, **kwargs)

    monkeypatch.setattr(fsck_files, "scan_blob", rmi_then_scan)
    report = check_catalog(catalog)
    assert report.problems == []
    assert report.checked.images == 3  # it saw the image the rmi then removed
    assert not catalog.store.exists(diff_id(L4))


def test_scan_blob_sums_regular_files_only(catalog: Catalog) -> None:
    tar = layer_tar(
        [
            ("dir", directory()),
            ("dir/file", b"f" * 1234),
            ("dir/link", symlink("file")),
            ("dir/hard", hardlink("dir/file")),
            ("dir/.wh.gone", b""),
            ("big", b"b" * (3 << 20)),
        ]
    )
    digest = catalog.store.write(tar).digest
    scan = scan_blob(catalog.store, digest, as_layer=True)
    assert (scan.digest, scan.size, scan.diff_size, scan.tar_error) == (
        digest,
        len(tar),
        1234 + (3 << 20),
        None,
    )
    with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
        assert sum(m.size for m in opened if m.isreg()) == scan.diff_size
    empty = catalog.store.write(b"").digest
    assert scan_blob(catalog.store, empty, as_layer=True).diff_size == 0
    junk = catalog.store.write(b"not a tar at all" * 100).digest
    scanned = scan_blob(catalog.store, junk, as_layer=True)
    assert scanned.diff_size is None and scanned.tar_error
    assert scanned.digest == junk


def test_fsck_as_a_subprocess(
    run_catalog: Callable[..., subprocess.CompletedProcess[str]],
    catalog: Catalog,
    built: dict[str, str],
) -> None:
    run = run_catalog
    sql(catalog, "UPDATE images SET size = 1 WHERE id = :id", id=built["other"])
    problem = (
        f"image-size: {built['other']}: the row records 1 bytes, its layers' diff sizes sum to 400"
    )
    broken = run("fsck")
    assert (broken.returncode, broken.stdout) == (1, problem + "\n")
    fixed = run("fsck", "--repair")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout == f"{problem}\nRepaired: image-size: {built['other']}: set to 400\n"
    clean = run("fsck")
    assert (clean.returncode, clean.stdout) == (0, "")
    assert "Traceback" not in broken.stderr + fixed.stderr + clean.stderr


def test_spools_a_killed_upload_left_are_temporary_files(catalog: Catalog) -> None:
    spools = catalog.location.root / "tmp"
    spools.mkdir(parents=True, exist_ok=True)
    left = spools / "serve-load-k1ll3d.tar"
    left.write_bytes(b"\0" * 10)
    age(left)
    warning = f"temporary-file: {left}: left by an interrupted write, last written 2 hours ago"
    assert check_catalog(catalog).lines() == [warning]
    assert repairs(repair(catalog)) == [f"Repaired: temporary-file: {left}: removed"]
    assert not left.exists()


def test_fsck_runs_the_databases_own_integrity_check(
    catalog: Catalog, built: dict[str, str], cli: Cli
) -> None:
    """A damaged page no query of the rows happens to read is found (the issue's
    `PRAGMA integrity_check` that fsck called clean); on PostgreSQL, amcheck's index check
    runs when the extension is installed."""
    engine = catalog.database.engine
    if catalog.database.dialect == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
        report = check_catalog(catalog)
        assert report.checked.database.startswith("amcheck bt_index_check of ")
        assert report.problems == []
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        root_page = connection.exec_driver_sql(
            "SELECT rootpage FROM sqlite_master WHERE name = 'ix_blob_leases_digest'"
        ).scalar_one()
    engine.dispose()
    path = engine.url.database
    assert path is not None
    with open(path, "r+b") as file:  # noqa: PTH123 - a database file, written in place
        file.seek((root_page - 1) * page_size)
        file.write(b"\xff" * 64)
    broken = cli("fsck", exit_code=1)
    assert "Traceback" not in broken.output
    lines = broken.stdout.splitlines()
    assert lines and all(line.startswith("database-corrupt: sqlite:///") for line in lines)
    assert "PRAGMA integrity_check" in broken.stderr

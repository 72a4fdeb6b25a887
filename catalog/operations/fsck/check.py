"""`check_catalog`: every check of `catalog fsck`, in order, and the repairs if asked
(see the package's doc)."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.engine import Database
from catalog.db.models import Blob, Layer
from catalog.docker.humanize import human_duration
from catalog.operations.fsck.database import check_database
from catalog.operations.fsck.files import Files, check_files
from catalog.operations.fsck.problems import (
    Fix,
    FixAction,
    FsckReport,
    Problem,
    by_subject,
    plural,
)
from catalog.operations.fsck.repair import repair_problems
from catalog.operations.fsck.rows import Rows, read_rows, snapshot
from catalog.operations.gc import DEFAULT_GRACE_SECONDS
from catalog.operations.leases import drop_dead_leases, live_leased
from catalog.operations.load import TEMPORARY_DIRNAME
from catalog.storage.content import ContentStore
from catalog.storage.spool import leftover_spools


def _still_missing(
    database: Database, store: ContentStore, digests: list[str]
) -> tuple[list[str], set[str]]:
    """Of blob rows found without a file: those still so now, and the ones a layer uses."""
    if not digests:
        return [], set()
    with database.read() as session:
        present = set(session.scalars(select(Blob.digest).where(Blob.digest.in_(digests))))
        used = set(session.scalars(select(Layer.blob_digest).where(Layer.blob_digest.in_(digests))))
    return [d for d in digests if d in present and not store.exists(d)], used


def _size_problems(rows: Rows, files: Files) -> tuple[list[Problem], list[Problem]]:
    """Layer diff sizes against their verified tars; image sizes and top layers against
    the true sums and the layer lists. Layer problems, then image problems."""
    problems: list[Problem] = []
    true_size: dict[str, int] = {}
    for chain, layer in sorted(rows.layers.items()):
        scanned = files.diff_sizes.get(layer.blob)
        true_size[chain] = layer.diff_size if scanned is None else scanned
        if scanned is not None and scanned != layer.diff_size:
            problems.append(
                Problem(
                    "layer-diff-size",
                    chain,
                    f"the row records {layer.diff_size} bytes, its tar's regular files"
                    f" hold {scanned}",
                    Fix(FixAction.SET_LAYER_DIFF_SIZE, chain, f"set to {scanned}", scanned),
                )
            )
    layer_problems, problems = problems, []
    for image_id, facts in sorted(rows.images.items()):
        if facts.layers_broken:
            continue  # reported as such; a size or top layer from a wrong list means nothing
        unverified = "its config does not check out; load the image again"
        expected = sum(true_size[chain] for chain in facts.chains)
        if facts.size != expected:
            problems.append(
                Problem(
                    "image-size",
                    image_id,
                    f"the row records {facts.size} bytes, its layers' diff sizes sum to {expected}",
                    Fix(FixAction.SET_IMAGE_SIZE, image_id, f"set to {expected}", expected)
                    if facts.layers_verified
                    else None,
                    None if facts.layers_verified else unverified,
                )
            )
        top = facts.chains[-1] if facts.chains else None
        if facts.top_chain_id != top:
            problems.append(
                Problem(
                    "image-top-chain-id",
                    image_id,
                    f"top_chain_id is {facts.top_chain_id}, its top layer is {top}",
                    Fix(FixAction.SET_TOP_CHAIN_ID, image_id, f"set to {top}", top)
                    if facts.layers_verified
                    else None,
                    None if facts.layers_verified else unverified,
                )
            )
    return layer_problems, problems


def _garbage_warnings(rows: Rows, missing: set[str]) -> list[Problem]:
    problems = [
        Problem("layer-unused", chain, "no image uses it (catalog gc removes it)")
        for chain in sorted(rows.unused_layers)
    ]
    used_blobs = {layer.blob for layer in rows.layers.values()}
    problems += [
        Problem("blob-unused", digest, "no layer uses it (catalog gc removes it)")
        for digest in sorted(set(rows.blobs) - used_blobs - missing)
    ]
    return problems


def _ago(seconds: float) -> str:
    """`3 hours ago`, `about an hour ago` (go-units' words, in a sentence)."""
    words = human_duration(timedelta(seconds=seconds))
    return f"{words[0].lower()}{words[1:]} ago"


def _temporary_files(catalog: Catalog, grace_seconds: float) -> list[Problem]:
    """The store's temporary files and the spool files under `<root>/tmp` a kill left."""
    now = time.time()
    problems = []
    spools = leftover_spools(catalog.location.root / TEMPORARY_DIRNAME)
    for path in [*catalog.store.temporary_files(), *spools]:
        try:
            age = now - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        alive = catalog.store.writer_alive(path)
        if alive or (alive is None and age < grace_seconds):
            continue  # a write in progress
        who = "a writer that is gone" if alive is False else "an interrupted write"
        problems.append(
            Problem(
                "temporary-file",
                str(path),
                f"left by {who}, last written {_ago(age)}",
                Fix(FixAction.REMOVE_TEMPORARY_FILE, str(path), "removed"),
            )
        )
    return problems


def _lease_warnings(session: Session) -> list[Problem]:
    """Leases of writers that are gone (killed, or expired): what `catalog gc` releases."""
    return [
        Problem(
            "lease-dead",
            lease.lease_id,
            f"holds {lease.blobs} blob{plural(lease.blobs)} for a writer that is gone"
            f" ({lease.reason}; catalog gc releases it)",
            Fix(FixAction.RELEASE_LEASE, lease.lease_id, "released"),
        )
        for lease in drop_dead_leases(session=session, dry_run=True)
    ]


def check_catalog(
    catalog: Catalog, *, repair: bool = False, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> FsckReport:
    """`catalog fsck [--repair]`: check everything, then with `repair` fix what is safe.

    Like `load_archive`, this owns its transactions: rows are read in one snapshot, files
    after it, and repairs are one write transaction followed by file removals.
    """
    report = FsckReport()
    database = check_database(catalog.database, catalog.location.display_url)
    report.checked.database = database.how
    with snapshot(catalog.database) as session:
        rows = read_rows(session, report.checked)
        held = live_leased(session=session)
        lease_problems = _lease_warnings(session)
    files = check_files(catalog.store, rows, report.checked, grace_seconds=grace_seconds, held=held)
    missing, used = _still_missing(catalog.database, catalog.store, files.missing)
    blob_problems = files.problems
    for digest in missing:
        if digest in used:
            blob_problems.append(
                Problem(
                    "blob-missing",
                    digest,
                    "no file in the store",
                    unrepairable="a layer uses it; load the image that has it again",
                )
            )
        else:
            blob_problems.append(
                Problem(
                    "blob-missing",
                    digest,
                    "no file in the store",
                    Fix(FixAction.DELETE_BLOB_ROW, digest, "deleted the row (no layer uses it)"),
                )
            )
    blob_problems.sort(key=lambda p: (p.subject, p.kind))
    layer_sizes, image_sizes = _size_problems(rows, files)
    report.problems = [
        *database.problems,
        *blob_problems,
        *sorted([*rows.layer_problems, *layer_sizes, *files.layer_problems], key=by_subject),
        *sorted([*rows.image_problems, *image_sizes], key=by_subject),
        *rows.other_problems,
        *_garbage_warnings(rows, set(missing)),
        *_temporary_files(catalog, grace_seconds),
        *lease_problems,
    ]
    if repair:
        report.repairs = repair_problems(catalog, report.problems, grace_seconds)
    return report

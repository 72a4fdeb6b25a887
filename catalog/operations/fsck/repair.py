"""fsck --repair: the rows' fixes in one write transaction, then the files'."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from sqlalchemy import Delete, Table, Update, and_, delete, exists, func, select, update
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Blob, BlobLease, Image, ImageLayer, ImageReference, Layer
from catalog.operations.fsck.problems import Fix, FixAction, Problem, RepairOutcome
from catalog.operations.fsck.rows import IMAGE_TABLES
from catalog.operations.leases import live_leased
from catalog.services.kept_facts import rewrite_kept_facts

_ROW_FIX_ORDER = (
    FixAction.SET_BLOB_SIZE,
    FixAction.SET_LAYER_DIFF_SIZE,
    FixAction.SET_IMAGE_SIZE,
    FixAction.SET_TOP_CHAIN_ID,
    FixAction.DELETE_REFERENCE,
    FixAction.DELETE_ORPHAN_ROWS,
    FixAction.DELETE_BLOB_ROW,
    FixAction.RELEASE_LEASE,
)
_FILE_FIXES = (FixAction.REMOVE_BLOB_FILE, FixAction.REMOVE_TEMPORARY_FILE)
_ORPHAN_TABLES = {model.__tablename__: model for model in IMAGE_TABLES}


def _apply_row_fix(session: Session, fix: Fix) -> bool:
    """Apply one row repair; True if it changed a row. Deletions are guarded: a blob row
    goes only if still no layer uses it, image rows only if their image is still gone."""
    statement: Update | Delete
    if fix.action is FixAction.SET_BLOB_SIZE:
        statement = update(Blob).where(Blob.digest == fix.key).values(size=fix.value)
    elif fix.action is FixAction.SET_LAYER_DIFF_SIZE:
        statement = update(Layer).where(Layer.chain_id == fix.key).values(diff_size=fix.value)
    elif fix.action is FixAction.SET_IMAGE_SIZE:
        layers_sum = (
            select(func.coalesce(func.sum(Layer.diff_size), 0))
            .join(ImageLayer, ImageLayer.chain_id == Layer.chain_id)
            .where(ImageLayer.image_id == Image.id)
            .scalar_subquery()
        )
        statement = update(Image).where(Image.id == fix.key).values(size=layers_sum)
    elif fix.action is FixAction.SET_TOP_CHAIN_ID:
        statement = update(Image).where(Image.id == fix.key).values(top_chain_id=fix.value)
    elif fix.action is FixAction.DELETE_REFERENCE:
        statement = delete(ImageReference).where(ImageReference.id == int(fix.key))
    elif fix.action is FixAction.DELETE_ORPHAN_ROWS:
        model = _ORPHAN_TABLES[fix.key]
        table = cast(Table, model.__table__)
        statement = delete(table).where(
            and_(
                table.c.image_id == fix.image_id,
                ~exists().where(Image.id == table.c.image_id),
            )
        )
    elif fix.action is FixAction.DELETE_BLOB_ROW:
        statement = delete(Blob).where(
            Blob.digest == fix.key, ~exists().where(Layer.blob_digest == Blob.digest)
        )
    elif fix.action is FixAction.RELEASE_LEASE:
        # A lease found dead stays dead: its owner is gone, or it expired.
        statement = delete(BlobLease).where(BlobLease.lease_id == fix.key)
    else:  # pragma: no cover - file fixes are applied elsewhere
        raise ValueError(f"not a row repair: {fix.action}")
    result = session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _apply_file_fix(
    catalog: Catalog, session: Session, fix: Fix, grace_seconds: float
) -> tuple[bool, str]:
    if fix.action is FixAction.REMOVE_BLOB_FILE:
        if session.scalar(select(exists().where(Blob.digest == fix.key))):
            return False, "a blob row names it now"
        if session.scalar(select(exists().where(Layer.blob_digest == fix.key))):
            return False, "a layer names it now"
        if live_leased(session=session, digests=[fix.key]):
            return False, "a writer in progress holds it now"
        path = catalog.store.path(fix.key)
    else:
        path = Path(fix.key)
        try:
            if not catalog.store.abandoned(path, grace_seconds):
                return False, "written to again since: a write in progress"
        except FileNotFoundError:
            return False, "gone already"
    try:
        path.unlink()
    except FileNotFoundError:
        return False, "gone already"
    except OSError as exc:
        return False, exc.strerror or str(exc)
    return True, fix.description


def repair_problems(
    catalog: Catalog, problems: list[Problem], grace_seconds: float
) -> list[RepairOutcome]:
    outcomes: dict[int, RepairOutcome] = {}
    with catalog.database.write() as session:
        for action in _ROW_FIX_ORDER:
            for problem in problems:
                fix = problem.fix
                if fix is None or fix.action is not action:
                    continue
                done = _apply_row_fix(session, fix)
                note = fix.description if done else "the rows changed meanwhile; run fsck again"
                outcomes[id(problem)] = RepairOutcome(problem, done, note)
        # Last, from the rows as repaired: the facts kept for the listing (a diff size or a
        # reference repaired above moves them too).
        rewrite_kept_facts(session=session)
        for problem in problems:
            fix = problem.fix
            if fix is not None and fix.action is FixAction.REWRITE_KEPT_FACTS:
                outcomes[id(problem)] = RepairOutcome(problem, True, fix.description)
    # Files go under the writer lock, as every removal does (catalog.operations.leases).
    with catalog.database.write() as session:
        for problem in problems:
            fix = problem.fix
            if fix is not None and fix.action in _FILE_FIXES:
                done, note = _apply_file_fix(catalog, session, fix, grace_seconds)
                outcomes[id(problem)] = RepairOutcome(problem, done, note)
    result = []
    for problem in problems:
        outcome = outcomes.get(id(problem))
        if outcome is not None:
            result.append(outcome)
        elif not problem.warning:
            result.append(RepairOutcome(problem, False, problem.unrepairable or "not safe"))
    return result

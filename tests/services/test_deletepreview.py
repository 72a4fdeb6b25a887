"""What `rmi [-f] ID` would do, worked out by reading only: for every image of a
synthetic catalog (shared bases, intermediate parents, containers in every state, names
in several repositories), the preview is what the real deletion does, rolled back."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from support.builders import ImageBuilder, layer_tar
from support.generated import generate

from catalog.context import Catalog
from catalog.db.models import Image
from catalog.errors import Conflict
from catalog.services.delete import Deleter
from catalog.services.deletepreview import DeletePreview, preview_delete


def real_delete(session: Session, image_id: str, *, force: bool) -> DeletePreview:
    """`rmi [-f] ID` itself, in a savepoint rolled back, as a preview would say it."""
    savepoint = session.begin_nested()
    deleter = Deleter(session)
    outcome = DeletePreview(image_id=image_id, force=force)
    try:
        deleter.delete(image_id, force=force, prune=True)
    except Conflict as exc:
        outcome.conflict = exc.message
    else:
        outcome.records = deleter.records
        outcome.freed_bytes = deleter.reclaimed
    savepoint.rollback()
    return outcome


def essentials(preview: DeletePreview) -> tuple[object, ...]:
    return (preview.records, preview.freed_bytes, preview.conflict)


def test_the_preview_is_what_rmi_does_on_a_synthetic_catalog(catalog: Catalog) -> None:
    generate(catalog, images=250, seed=3)
    outcomes: dict[str, int] = {"freed": 0, "conflict": 0, "pruned parents": 0}
    with catalog.database.write() as session:
        ids = session.scalars(select(Image.id).order_by(Image.id)).all()
        for number, image_id in enumerate(ids):
            for force in (False, True) if number % 3 == 0 else (False,):
                preview = preview_delete(session=session, image_id=image_id, force=force)
                assert essentials(preview) == essentials(
                    real_delete(session, image_id, force=force)
                ), (image_id, force)
                if preview.conflict is None:
                    outcomes["freed"] += preview.freed_bytes > 0
                    outcomes["pruned parents"] += len(preview.deleted_images) > 1
                    assert preview.deleted_images[0] == image_id
                else:
                    outcomes["conflict"] += 1
                    assert not preview.records and not preview.deleted_images
        # Nothing was written: the preview reads, and the real deletions rolled back.
        assert session.scalars(select(Image.id).order_by(Image.id)).all() == ids
    # The catalog gave every kind of outcome.
    assert all(count > 0 for count in outcomes.values()), outcomes


def test_forcible_and_hard_conflicts(catalog: Catalog, images: ImageBuilder) -> None:
    base = images.add([layer_tar({"b": b"b" * 10})], tags=["base:1"])
    app = images.add(
        [layer_tar({"b": b"b" * 10}), layer_tar({"a": b"a" * 20})],
        parent=base,
        tags=["app:1", "other/app:1"],
    )
    with catalog.database.read() as session:
        child_blocks = preview_delete(session=session, image_id=base)
        names_block = preview_delete(session=session, image_id=app)
        forced = preview_delete(session=session, image_id=app, force=True)
    assert child_blocks.conflict is not None and not child_blocks.forcible
    assert "image has dependent child images" in child_blocks.conflict
    assert names_block.conflict is not None and names_block.forcible
    assert "referenced in multiple repositories" in names_block.conflict
    assert forced.conflict is None
    assert forced.records[:2] == [{"Untagged": "app:1"}, {"Untagged": "other/app:1"}]
    assert forced.records[2] == {"Deleted": app}
    assert forced.freed_bytes == 20  # the base's layer stays: base:1 uses it

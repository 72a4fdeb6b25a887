"""Saving images to a `docker save` archive (Docker 25+ format; see catalog.storage.archive.writer).

Which images and tags a list of names selects follows moby's graphdriver exporter
(daemon/internal/image/tarexport/save.go `parseNames`), with the containerd store's
"No such image" texts for names that select nothing:

* an ID (`sha256:<64 hex>`, 64 hex, or a `sha256:` prefix) saves that image untagged;
* `name:tag` saves that image under that tag; `name@digest` saves it untagged;
* a bare `name` saves every image of that repository under all its tags (images named
  only by digest there are saved untagged); a name that is no repository is tried as an
  ID prefix, as `docker save 4f2e` is.

The database is read in one short read transaction, in a fixed number of queries besides
one per ID-prefix term; the blobs are read from the store after it has ended.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Image, ImageConfigJSON, ImageReference
from catalog.domain.imageconfig import parse_config
from catalog.domain.reference import (
    DigestReference,
    Named,
    familiar_name,
    is_name_only,
    parse_any_reference,
)
from catalog.errors import InvalidArgument, NotFound
from catalog.operations.leases import Lease
from catalog.services.lookup import find_by_id_prefix, no_such_image
from catalog.storage.archive.writer import SavedImage, write_archive


class _Selection:
    """Images in the order first named, each with its tags in the order first named."""

    def __init__(self) -> None:
        self.tags: dict[str, list[Named]] = {}

    def add(self, image_id: str, tag: Named | None = None) -> None:
        tags = self.tags.setdefault(image_id, [])
        if tag is not None and tag not in tags:
            tags.append(tag)


def select_images(*, session: Session, terms: Sequence[str]) -> list[SavedImage]:
    """The images (with the tags to save them under) that `terms` name, as `docker save`
    selects them. InvalidReference or NotFound (`No such image: ...`) for a bad term."""
    parsed = [(term, parse_any_reference(term)) for term in terms]

    # Every reference of every repository named: one query.
    repositories = {ref.name for _, ref in parsed if isinstance(ref, Named)}
    by_repository: dict[str, list[tuple[str | None, str | None, str]]] = {}
    if repositories:
        for repository, tag, digest, image_id in session.execute(
            select(
                ImageReference.repository,
                ImageReference.tag,
                ImageReference.digest,
                ImageReference.image_id,
            ).where(ImageReference.repository.in_(repositories))
        ):
            by_repository.setdefault(repository, []).append((tag, digest, image_id))
    # Every full ID named: one query.
    requested_ids = {ref.digest for _, ref in parsed if isinstance(ref, DigestReference)}
    known_ids = (
        set(session.scalars(select(Image.id).where(Image.id.in_(requested_ids))))
        if requested_ids
        else set()
    )

    selection = _Selection()
    for term, ref in parsed:
        if isinstance(ref, DigestReference):
            if ref.digest not in known_ids:
                raise no_such_image(ref)
            selection.add(ref.digest)
            continue
        references = by_repository.get(ref.name, [])
        if familiar_name(ref) == "sha256" or (is_name_only(ref) and not references):
            # `sha256:<prefix>`, or a bare name that is no repository: an ID prefix.
            found = find_by_id_prefix(session, term)
            if found is None:
                raise no_such_image(ref)
            selection.add(found)
        elif is_name_only(ref):
            # The whole repository, in the lexical order of moby's refstore (tags, then
            # digests); an image named here only by digest is saved untagged.
            for tag, _, image_id in sorted(references, key=lambda r: (r[0] is None, r[:2])):
                selection.add(image_id, Named(ref.domain, ref.path, tag) if tag else None)
        else:
            # name:tag; name@digest and name:tag@digest (found by digest) save untagged.
            wanted = (None, ref.digest) if ref.digest is not None else (ref.tag, None)
            matches = [image_id for tag, digest, image_id in references if (tag, digest) == wanted]
            if not matches:
                raise no_such_image(ref)
            selection.add(matches[0], ref if ref.digest is None else None)

    rows = session.execute(
        select(Image.id, Image.parent_id, ImageConfigJSON.config)
        .join(ImageConfigJSON, ImageConfigJSON.image_id == Image.id)
        .where(Image.id.in_(selection.tags))
    ).all()
    found_rows = {image_id: (parent_id, bytes(config)) for image_id, parent_id, config in rows}
    images: list[SavedImage] = []
    for image_id, tags in selection.tags.items():
        parent_id, config = found_rows[image_id]
        images.append(
            SavedImage(
                config=config,
                diff_ids=tuple(parse_config(config).diff_ids),
                tags=tuple(tags),
                parent_id=parent_id,
            )
        )
    return images


def save_images(catalog: Catalog, terms: Sequence[str], out: BinaryIO) -> None:
    """Write the images `terms` name to `out` as a Docker 25+ `docker save` archive."""
    with catalog.database.read() as session:
        images = select_images(session=session, terms=terms)
    # The read transaction has ended: blobs stream without holding the database, and
    # are held while they are read.
    with Lease(catalog, purpose="saving") as lease:
        _hold(lease, images)
        write_archive(out, images, catalog.store)


def _hold(lease: Lease, images: Sequence[SavedImage]) -> None:
    """Hold the images' layers while they are read (catalog.operations.leases)."""
    if lease.hold_for_reading(d for image in images for d in image.diff_ids):
        raise NotFound("an image was deleted while saving; nothing was written")


def check_output_path(path: Path) -> None:
    """docker-cli's checks of `-o`: the directory must exist; the path may not be one."""
    directory = path.parent
    if not directory.is_dir():
        raise InvalidArgument(
            f'failed to save image: invalid output path: directory "{directory}" does not exist'
        )
    if path.is_dir():
        raise InvalidArgument(f'failed to save image: invalid output path: "{path}" is a directory')


def save_images_to_path(catalog: Catalog, terms: Sequence[str], path: Path) -> None:
    """Save to the file `path`, atomically: the archive is written to a temporary file
    beside it, flushed to disk and renamed over `path`, so a failure leaves `path` as it
    was and no partial archive anywhere."""
    check_output_path(path)
    with catalog.database.read() as session:
        images = select_images(session=session, terms=terms)
    with Lease(catalog, purpose="saving") as lease:
        _hold(lease, images)
        _write_atomically(catalog, images, path)


def _write_atomically(catalog: Catalog, images: Sequence[SavedImage], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never write through a file or link someone else put there. Mode 0o666
    # minus the umask, as for any file a command creates.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write_archive(file, images, catalog.store)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise

"""What a catalog holds, counted in one query."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.orm import Session

from catalog.db.models import Base, Blob, Container, Image, ImageReference, Layer


@dataclass(frozen=True)
class Counts:
    images: int
    layers: int
    references: int
    containers: int
    blobs: int
    blob_bytes: int


def count_rows(*, session: Session) -> Counts:
    """Row counts of the main tables, as one statement of scalar subqueries."""

    def count(model: type[Base]) -> ScalarSelect[int]:
        return select(func.count()).select_from(model).scalar_subquery()

    row = session.execute(
        select(
            count(Image),
            count(Layer),
            count(ImageReference),
            count(Container),
            count(Blob),
            select(func.coalesce(func.sum(Blob.size), 0)).scalar_subquery(),
        )
    ).one()
    images, layers, references, containers, blobs, blob_bytes = (int(v) for v in row)
    return Counts(images, layers, references, containers, blobs, blob_bytes)

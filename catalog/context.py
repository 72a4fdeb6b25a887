"""An open catalog: where it lives, its database and its content store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from catalog.db import revision
from catalog.db.engine import Database, create_catalog_engine
from catalog.errors import CatalogError
from catalog.settings import Location
from catalog.storage.content import ContentStore


@dataclass
class Catalog:
    location: Location
    database: Database
    store: ContentStore

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_catalog(location: Location, *, check_schema: bool = True) -> Catalog:
    """Open (and on first use create) the catalog at `location`.

    With `check_schema`, a new empty database is migrated to the current schema and one at
    another revision is refused (SchemaOutOfDate names `catalog db upgrade`).
    """
    try:
        location.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(
            f"cannot create the catalog root {location.root}: {exc.strerror}"
        ) from None
    engine = create_catalog_engine(location.database_url)
    database = Database(engine)
    try:
        if check_schema:
            revision.check_schema(engine)
    except OperationalError as exc:
        database.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise CatalogError(f"cannot open the database {location.display_url}: {reason}") from None
    except BaseException:
        database.dispose()
        raise
    return Catalog(location=location, database=database, store=ContentStore(location.blobs_dir))

"""What the reliability classes share: a catalog to try things on (a root directory and a
database on the backend under test), images and archives made on the spot, and the
checks every trial ends with."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import URL

from benchmarks.backends import new_database
from benchmarks.reliability.results import RunSettings
from catalog.context import Catalog, open_catalog
from catalog.db.models import Base, Blob
from catalog.operations.fsck.check import check_catalog
from catalog.operations.gc import collect_garbage
from catalog.settings import Location, normalize_database_url
from catalog.storage.content import BLOBS_DIRNAME

# Files a healthy catalog root holds, besides blob files with rows.
ROOT_FILES = {
    "catalog.db",
    "catalog.db-wal",
    "catalog.db-shm",
    "catalog.db.reserve",
    BLOBS_DIRNAME,
    "tmp",
}


@dataclass(frozen=True)
class TrialCatalog:
    """A catalog root and database URL; `open()` gives a new Catalog each time."""

    root: Path
    url: URL

    @property
    def url_text(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def env(self) -> dict[str, str]:
        """The environment a `catalog` process runs with, pointed at this catalog."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
        return {**keep, "CATALOG_ROOT": str(self.root), "CATALOG_DATABASE_URL": self.url_text}

    @contextmanager
    def open(self) -> Iterator[Catalog]:
        """The harness's own view: it never takes the space kept back for a full disk
        (catalog.storage.reserve), which is the commands' under test."""
        location = Location(root=self.root, database_url=normalize_database_url(self.url_text))
        catalog = open_catalog(location, use_reserve=False)
        try:
            yield catalog
        finally:
            catalog.close()


@contextmanager
def trial_catalog(settings: RunSettings, label: str) -> Iterator[TrialCatalog]:
    """A new, migrated catalog on the backend the settings name; removed afterwards."""
    server = normalize_database_url(settings.database_url) if settings.database_url else None
    scratch = settings.workdir / label
    scratch.mkdir(parents=True, exist_ok=True)
    with new_database(settings.backend, scratch, server, label) as url:
        made = TrialCatalog(scratch / "root", url)
        with made.open():
            pass  # creates the schema
        yield made


# --- Images and archives, made on the spot ---


def layer_tar(seed: int, size: int) -> bytes:
    """A layer tar of one file of `size` pseudo-random bytes (the same for the same seed)."""
    data = random.Random(seed).randbytes(size)  # noqa: S311 - test data, by seed
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"file-{seed}")
        info.size, info.mtime, info.mode = size, 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(
    layers: Sequence[bytes], *, labels: dict[str, str] | None = None, created: str | None = None
) -> bytes:
    document = {
        "architecture": "amd64",
        "os": "linux",
        "created": created or "2024-01-01T00:00:00Z",
        "config": {"Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    return json.dumps(document, sort_keys=True).encode()


@dataclass(frozen=True)
class ArchiveImage:
    layers: Sequence[bytes]
    tags: Sequence[str] = ()
    labels: dict[str, str] | None = None
    created: str | None = None

    @property
    def config(self) -> bytes:
        return image_config(self.layers, labels=self.labels, created=self.created)

    @property
    def id(self) -> str:
        return sha256(self.config)


def docker_archive(images: Sequence[ArchiveImage]) -> bytes:
    """A `docker save` (v1.2) archive of `images`."""
    members: dict[str, bytes] = {}
    manifest = []
    for image in images:
        config = image.config
        members[f"{sha256(config)[7:]}.json"] = config
        paths = []
        for layer in image.layers:
            path = f"{sha256(layer)[7:]}/layer.tar"
            members[path] = layer
            paths.append(path)
        manifest.append(
            {"Config": f"{sha256(config)[7:]}.json", "RepoTags": list(image.tags), "Layers": paths}
        )
    members["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- Checks ---


def fsck_errors(catalog: Catalog) -> list[str]:
    """`catalog fsck`'s errors (warnings are what gc removes): must be none."""
    return [problem.line() for problem in check_catalog(catalog).errors]


def leftovers_after_gc(catalog: Catalog) -> list[str]:
    """Run `gc --grace 0` (nothing else runs), then list what is left that a healthy
    catalog does not hold: files in the root besides the database and the store, blob
    files without a row, temporary files, leases, spool files. Must be none."""
    collect_garbage(catalog, grace_seconds=0)
    left: list[str] = []
    root = catalog.location.root
    left += [f"root: {path.name}" for path in sorted(root.iterdir()) if path.name not in ROOT_FILES]
    spool = root / "tmp"
    if spool.is_dir():
        left += [f"spool: {path.name}" for path in sorted(spool.iterdir())]
    with catalog.database.read() as session:
        rows = set(session.scalars(select(Blob.digest)))
        leases = session.execute(select(Base.metadata.tables["blob_leases"])).all()
    left += [f"lease: {row[0]}" for row in leases]
    store = catalog.store
    left += [f"temporary file: {path.name}" for path in store.temporary_files()]
    left += [f"unreferenced blob: {b.digest}" for b in store.iter_blobs() if b.digest not in rows]
    return left


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

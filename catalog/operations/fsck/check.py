"""`catalog fsck`: check that the rows and the content store tell the same, true story.

Checked, each problem one line `kind: subject: detail`:

- every blob file's content hashes to its name (re-hashed, streaming), every blob row has
  its file and the file's size is the row's (`blob-corrupt`, `blob-missing`, `blob-size`,
  `blob-unreadable`);
- every layer row: its chain ID is its parent's chain ID and diff ID combined (image spec),
  its parent and blob rows exist, its blob is its diff ID, and its diff size is the sum of
  the regular-file sizes in its tar, re-scanned in the same pass as the hash, as
  `catalog.storage.layers` computes it on the way in (`layer-chain-id`, `layer-parent-missing`,
  `layer-blob-missing`, `layer-blob`, `layer-diff-size`, `layer-tar-invalid`);
- every image: a config row whose sha256 is the image ID, which parses; its `image_layers`
  positions are 0..n-1 and their chain IDs are `chain_ids(rootfs.diff_ids)`; every listed
  layer exists; `top_chain_id` is the top one; `size` is the sum of its layers' diff sizes;
  its parent image exists (`image-config-missing`, `image-config-digest`,
  `image-config-invalid`, `image-layer-positions`, `image-layer-count`, `image-chain-id`,
  `image-layer-missing`, `image-top-chain-id`, `image-size`, `image-parent-missing`);
- every reference names an existing image and is a canonical reference Docker's grammar
  accepts (`reference-image-missing`, `reference-invalid`);
- no config, layer list, label or history row without its image (`orphan-rows`).

Errors make fsck exit 1. Warnings do not, because a healthy catalog can have them:

- `container-image-missing`: a container whose image is gone. `containers.image_id` is
  deliberately not a foreign key: as in Docker, `rmi -f` deletes an image a stopped
  container uses, and the container keeps the ID; that is not corrupt data;
- `layer-unused`, `blob-unused`, `blob-unreferenced` (a file without a row) and
  `temporary-file`: what a failed or killed load, append or squash leaves, and what
  `catalog gc` removes. Blob files without a row and temporary files are only reported
  once older than the grace period (an hour): younger ones may be a write in progress.

`--repair` fixes what can be re-derived from data that checked out, and never invents any:
a blob row's size from its verified file; a layer's diff size from its verified tar; an
image's size as the sum of its layers' (after those repairs); `top_chain_id` from layer rows
that match a verified config; a blob row whose file is missing, when no layer uses it
(deleted); references to missing images or that no command can name (deleted, and printed
so they can be tagged again); rows of images that do not exist (deleted); corrupt blob files
no row names and old temporary files (removed). Everything else is reported as not
repaired, with the reason. Row repairs are one write transaction; files go after it commits.

Rows are read in bulk, a fixed number of queries whatever the catalog's size (configs
streamed), in one snapshot (REPEATABLE READ on PostgreSQL; a read transaction is one on
SQLite); files are read after, one at a time, in chunks. A blob row found without its file
is checked again afterwards, so a concurrent `rmi` is not reported as damage.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import (
    Delete,
    Table,
    Update,
    and_,
    delete,
    exists,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, aliased

from catalog.context import Catalog
from catalog.db.engine import Database
from catalog.db.models import (
    Blob,
    Container,
    Image,
    ImageConfig,
    ImageHistory,
    ImageLabel,
    ImageLayer,
    ImageReference,
    Layer,
)
from catalog.docker.humanize import human_duration
from catalog.domain.digest import CHUNK_SIZE, Hasher, chain_ids, sha256_digest
from catalog.domain.imageconfig import parse_config
from catalog.domain.reference import parse_named
from catalog.errors import CatalogError, NotFound
from catalog.operations.gc import DEFAULT_GRACE_SECONDS, unused_layers
from catalog.storage.content import ContentStore

__all__ = [
    "WARNING_KINDS",
    "Fix",
    "FixAction",
    "FsckReport",
    "Problem",
    "check_catalog",
    "scan_blob",
]

WARNING_KINDS = frozenset(
    {
        "container-image-missing",
        "layer-unused",
        "blob-unused",
        "blob-unreferenced",
        "temporary-file",
    }
)

# Streamed config rows fetched at a time.
_CONFIG_BATCH = 64


class FixAction(StrEnum):
    SET_BLOB_SIZE = "set-blob-size"
    DELETE_BLOB_ROW = "delete-blob-row"
    SET_LAYER_DIFF_SIZE = "set-layer-diff-size"
    SET_IMAGE_SIZE = "set-image-size"
    SET_TOP_CHAIN_ID = "set-top-chain-id"
    DELETE_REFERENCE = "delete-reference"
    DELETE_ORPHAN_ROWS = "delete-orphan-rows"
    REMOVE_BLOB_FILE = "remove-blob-file"
    REMOVE_TEMPORARY_FILE = "remove-temporary-file"


@dataclass(frozen=True)
class Fix:
    """A safe repair: `action` on `key` (a digest, chain ID, image ID, reference row ID,
    table name or path), with `value` where it sets one; `description` says it."""

    action: FixAction
    key: str
    description: str
    value: int | str | None = None
    image_id: str | None = None  # DELETE_ORPHAN_ROWS: whose rows


@dataclass(frozen=True)
class Problem:
    kind: str
    subject: str
    detail: str
    fix: Fix | None = None
    # Why an error cannot be repaired (shown by --repair).
    unrepairable: str | None = None

    @property
    def warning(self) -> bool:
        return self.kind in WARNING_KINDS

    def line(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class RepairOutcome:
    problem: Problem
    repaired: bool
    note: str

    def line(self) -> str:
        word = "Repaired" if self.repaired else "Not repaired"
        return f"{word}: {self.problem.kind}: {self.problem.subject}: {self.note}"


@dataclass
class Checked:
    blobs: int = 0
    blob_files: int = 0
    layers: int = 0
    images: int = 0
    references: int = 0
    containers: int = 0


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    checked: Checked = field(default_factory=Checked)
    repairs: list[RepairOutcome] | None = None  # None: not asked to repair

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning]

    @property
    def remaining_errors(self) -> list[Problem]:
        """Errors still there: all of them, or after --repair those it could not fix."""
        if self.repairs is None:
            return self.errors
        fixed = {id(o.problem) for o in self.repairs if o.repaired}
        return [p for p in self.errors if id(p) not in fixed]

    def lines(self) -> list[str]:
        lines = [p.line() for p in self.problems]
        if self.repairs is not None:
            lines += [o.line() for o in self.repairs]
        return lines

    def summary(self) -> str:
        c = self.checked
        counted = (
            f"checked {c.images} images, {c.layers} layers, {c.blobs} blob rows,"
            f" {c.blob_files} blob files, {c.references} references, {c.containers} containers"
        )
        errors, warnings = len(self.errors), len(self.warnings)
        found = f"{errors} error{_s(errors)}, {warnings} warning{_s(warnings)}"
        if self.repairs is not None:
            repaired = sum(o.repaired for o in self.repairs)
            left = len(self.remaining_errors)
            found += f", {repaired} repaired, {left} error{_s(left)} left"
        return f"fsck: {counted}: {found}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


# --- Reading the rows ---


@dataclass(frozen=True)
class _LayerRow:
    diff_id: str
    parent: str | None
    diff_size: int
    blob: str


@dataclass
class _ImageFacts:
    """What the size and top-chain checks need after the files are read."""

    size: int
    chains: list[str]
    top_chain_id: str | None
    # The layer list matches the config, which hashes to the image ID: sizes and the top
    # layer may be re-derived from it.
    layers_verified: bool
    # The layer list is wrong (gaps, missing layers, not the config's): its sums mean nothing.
    layers_broken: bool


@dataclass
class _Rows:
    blobs: dict[str, int] = field(default_factory=dict)
    layers: dict[str, _LayerRow] = field(default_factory=dict)
    images: dict[str, _ImageFacts] = field(default_factory=dict)
    unused_layers: list[str] = field(default_factory=list)
    layer_problems: list[Problem] = field(default_factory=list)
    image_problems: list[Problem] = field(default_factory=list)
    other_problems: list[Problem] = field(default_factory=list)


@contextmanager
def _snapshot(database: Database) -> Iterator[Session]:
    """A read session whose queries all see one snapshot."""
    with database.read() as session:
        if database.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


def _read_rows(session: Session, checked: Checked) -> _Rows:
    rows = _Rows()
    rows.blobs = dict(session.execute(select(Blob.digest, Blob.size)).all())
    rows.layers = {
        chain: _LayerRow(diff_id, parent, diff_size, blob)
        for chain, diff_id, parent, diff_size, blob in session.execute(
            select(
                Layer.chain_id,
                Layer.diff_id,
                Layer.parent_chain_id,
                Layer.diff_size,
                Layer.blob_digest,
            )
        )
    }
    checked.blobs, checked.layers = len(rows.blobs), len(rows.layers)
    rows.layer_problems = _check_layer_rows(rows)
    rows.unused_layers = unused_layers(session=session)
    image_layers: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for image_id, position, chain in session.execute(
        select(ImageLayer.image_id, ImageLayer.position, ImageLayer.chain_id).order_by(
            ImageLayer.image_id, ImageLayer.position
        )
    ):
        image_layers[image_id].append((position, chain))
    rows.image_problems = _check_images(session, rows, image_layers, checked)
    rows.other_problems = [
        *_check_references(session, checked),
        *_check_orphan_rows(session),
        *_check_containers(session, checked),
    ]
    return rows


def _check_layer_rows(rows: _Rows) -> list[Problem]:
    problems: list[Problem] = []
    for chain, layer in sorted(rows.layers.items()):
        expected = (
            layer.diff_id
            if layer.parent is None
            else sha256_digest(f"{layer.parent} {layer.diff_id}".encode())
        )
        if chain != expected:
            what = "its diff ID" if layer.parent is None else "its parent and diff ID give"
            problems.append(
                Problem(
                    "layer-chain-id",
                    chain,
                    f"{what} {expected}",
                    unrepairable="a chain ID is a row's key; load the image again",
                )
            )
        if layer.parent is not None and layer.parent not in rows.layers:
            problems.append(
                Problem(
                    "layer-parent-missing",
                    chain,
                    f"parent layer {layer.parent} does not exist",
                    unrepairable="the parent layer's data is gone; load the image again",
                )
            )
        if layer.blob != layer.diff_id:
            problems.append(
                Problem(
                    "layer-blob",
                    chain,
                    f"its blob is {layer.blob}, not its diff ID {layer.diff_id}",
                    unrepairable="load the image again",
                )
            )
        if layer.blob not in rows.blobs:
            problems.append(
                Problem(
                    "layer-blob-missing",
                    chain,
                    f"blob row {layer.blob} does not exist",
                    unrepairable="load the image again",
                )
            )
    return problems


def _check_images(
    session: Session,
    rows: _Rows,
    image_layers: dict[str, list[tuple[int, str]]],
    checked: Checked,
) -> list[Problem]:
    """Configs are streamed: one query, fetched a few rows at a time."""
    parent = aliased(Image)
    result = session.execute(
        select(
            Image.id,
            Image.size,
            Image.top_chain_id,
            Image.parent_id,
            parent.id,
            ImageConfig.config,
        )
        .outerjoin(parent, parent.id == Image.parent_id)
        .outerjoin(ImageConfig, ImageConfig.image_id == Image.id)
        .order_by(Image.id)
        .execution_options(yield_per=_CONFIG_BATCH)
    )
    problems: list[Problem] = []
    for image_id, size, top_chain_id, parent_id, parent_found, config in result:
        checked.images += 1
        listed = image_layers.get(image_id, [])
        found = _check_layer_list(image_id, listed, rows.layers)
        broken = bool(found)
        verified = False
        if config is None:
            found.append(
                Problem("image-config-missing", image_id, "no config row", unrepairable=_CONFIG)
            )
        elif (actual := sha256_digest(config)) != image_id:
            found.append(
                Problem(
                    "image-config-digest",
                    image_id,
                    f"its config hashes to {actual}",
                    unrepairable=_CONFIG,
                )
            )
        elif not broken:
            config_problems = _check_against_config(image_id, config, listed)
            found += config_problems
            broken = any(p.kind != "image-config-invalid" for p in config_problems)
            verified = not config_problems
        if parent_id is not None and parent_found is None:
            found.append(
                Problem(
                    "image-parent-missing",
                    image_id,
                    f"parent image {parent_id} does not exist",
                    unrepairable="the parent is gone; clear images.parent_id by hand if wanted",
                )
            )
        problems += found
        rows.images[image_id] = _ImageFacts(
            size=size,
            chains=[chain for _, chain in listed],
            top_chain_id=top_chain_id,
            layers_verified=verified,
            layers_broken=broken,
        )
    return problems


_RELOAD = "load the image again"
_CONFIG = "the config is the image; load the image again"


def _check_layer_list(
    image_id: str, listed: list[tuple[int, str]], layers: dict[str, _LayerRow]
) -> list[Problem]:
    """The image's layer list on its own: positions 0..n-1, every layer there."""
    problems: list[Problem] = []
    positions = [position for position, _ in listed]
    if positions != list(range(len(positions))):
        shown = ", ".join(str(p) for p in positions)
        problems.append(
            Problem(
                "image-layer-positions",
                image_id,
                f"layer positions are {shown}, not 0 to {len(positions) - 1}",
                unrepairable=_RELOAD,
            )
        )
    problems += [
        Problem(
            "image-layer-missing",
            image_id,
            f"layer {position} ({chain}) does not exist",
            unrepairable=_RELOAD,
        )
        for position, chain in listed
        if chain not in layers
    ]
    return problems


def _check_against_config(
    image_id: str, config: bytes, listed: list[tuple[int, str]]
) -> list[Problem]:
    """The layer list against a config that hashes to the image ID."""
    try:
        parsed = parse_config(config)
    except CatalogError as exc:
        return [Problem("image-config-invalid", image_id, exc.message, unrepairable=_RELOAD)]
    expected = chain_ids(parsed.diff_ids)
    if len(listed) != len(expected):
        return [
            Problem(
                "image-layer-count",
                image_id,
                f"the config has {len(expected)} diff IDs, the image {len(listed)} layers",
                unrepairable=_RELOAD,
            )
        ]
    return [
        Problem(
            "image-chain-id",
            image_id,
            f"layer {position} is {chain}, the config's diff IDs give {want}",
            unrepairable=_RELOAD,
        )
        for (position, chain), want in zip(listed, expected, strict=True)
        if chain != want
    ]


def _check_references(session: Session, checked: Checked) -> list[Problem]:
    rows = session.execute(
        select(
            ImageReference.id,
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.digest,
            ImageReference.image_id,
            Image.id,
        )
        .outerjoin(Image, Image.id == ImageReference.image_id)
        .order_by(ImageReference.id)
    )
    problems: list[Problem] = []
    for row_id, repository, tag, digest, image_id, found in rows:
        checked.references += 1
        text = repository + (f":{tag}" if tag is not None else f"@{digest}")
        fix = Fix(
            FixAction.DELETE_REFERENCE,
            str(row_id),
            f"deleted the reference (it named {image_id})",
        )
        if found is None:
            problems.append(
                Problem("reference-image-missing", text, f"image {image_id} does not exist", fix)
            )
            continue
        try:
            parse_named(text)
        except CatalogError as exc:
            problems.append(Problem("reference-invalid", text, exc.message, fix))
    problems.sort(key=_subject)  # in code point order, whatever the database's collation
    return problems


def _check_containers(session: Session, checked: Checked) -> list[Problem]:
    checked.containers = session.scalar(select(func.count()).select_from(Container)) or 0
    rows = session.execute(
        select(Container.id, Container.name, Container.image_id)
        .where(~exists().where(Image.id == Container.image_id))
        .order_by(Container.id)
    )
    return [
        Problem(
            "container-image-missing",
            container_id,
            f"{name}: image {image_id} does not exist (removed with rmi -f);"
            " the container keeps its image ID",
        )
        for container_id, name, image_id in rows
    ]


_IMAGE_TABLES: tuple[type[ImageConfig | ImageLayer | ImageLabel | ImageHistory], ...] = (
    ImageConfig,
    ImageLayer,
    ImageLabel,
    ImageHistory,
)


def _check_orphan_rows(session: Session) -> list[Problem]:
    """Rows of images that do not exist: only possible with foreign keys switched off."""
    selects = [
        select(
            literal(model.__tablename__).label("table_name"),
            model.image_id.label("image_id"),
            func.count().label("count"),
        )
        .where(~exists().where(Image.id == model.image_id))
        .group_by(model.image_id)
        for model in _IMAGE_TABLES
    ]
    query = union_all(*selects)
    problems = []
    for table_name, image_id, count in session.execute(query):
        problems.append(
            Problem(
                "orphan-rows",
                image_id,
                f"{count} {table_name} row{_s(count)}, but the image does not exist",
                Fix(
                    FixAction.DELETE_ORPHAN_ROWS,
                    table_name,
                    f"deleted {count} {table_name} row{_s(count)}",
                    image_id=image_id,
                ),
            )
        )
    problems.sort(key=lambda p: (p.subject, p.detail))
    return problems


# --- Reading the files ---


class _HashingReader(io.RawIOBase):
    """Reads a file, hashing every byte that goes past."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self._file = file
        self.hasher = Hasher()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._file.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        if count:
            self.hasher.update(data)
        return count


@dataclass(frozen=True)
class BlobScan:
    """A blob file read once: its content's digest and size, and (for a layer) the sum of
    its tar's regular-file sizes, or why it is not a readable tar."""

    digest: str
    size: int
    diff_size: int | None = None
    tar_error: str | None = None


def scan_blob(store: ContentStore, digest: str, *, as_layer: bool) -> BlobScan:
    """Hash blob `digest` and, `as_layer`, sum its regular files, in one streaming pass.

    The diff size is what `catalog.storage.layers.ingest_layer` computes (an empty file is an empty
    layer). Raises NotFound if the file is missing, OSError if it cannot be read.
    """
    with store.open(digest) as raw:
        hashing = _HashingReader(raw)
        stream = io.BufferedReader(hashing, CHUNK_SIZE)
        diff_size: int | None = None
        tar_error: str | None = None
        if as_layer:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    diff_size = sum(member.size for member in tar if member.isreg())
            except tarfile.ReadError as exc:
                if hashing.hasher.size == 0 and str(exc) == "empty file":
                    diff_size = 0
                else:
                    tar_error = str(exc)
            except (tarfile.TarError, EOFError) as exc:
                tar_error = str(exc) or type(exc).__name__
        while stream.read(CHUNK_SIZE):
            pass
    return BlobScan(hashing.hasher.digest, hashing.hasher.size, diff_size, tar_error)


@dataclass
class _Files:
    problems: list[Problem] = field(default_factory=list)
    # Diff sizes of verified layer tars, by blob digest.
    diff_sizes: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    layer_problems: list[Problem] = field(default_factory=list)


def _check_files(
    store: ContentStore, rows: _Rows, checked: Checked, *, grace_seconds: float
) -> _Files:
    files = _Files()
    layer_blobs = {layer.blob for layer in rows.layers.values()}
    users: dict[str, list[str]] = defaultdict(list)
    for chain, layer in rows.layers.items():
        users[layer.blob].append(chain)
    cutoff = time.time() - grace_seconds
    seen: set[str] = set()
    for blob in store.iter_blobs():
        seen.add(blob.digest)
        checked.blob_files += 1
        recorded = blob.digest in rows.blobs or blob.digest in layer_blobs
        if not recorded:
            try:
                if store.path(blob.digest).lstat().st_mtime > cutoff:
                    continue  # perhaps a load that has not committed yet
            except FileNotFoundError:
                continue
        try:
            scan = scan_blob(store, blob.digest, as_layer=blob.digest in layer_blobs)
        except (NotFound, FileNotFoundError):
            # Removed meanwhile (rmi, gc): if it has a row, it is checked again below.
            seen.discard(blob.digest)
            continue
        except OSError as exc:
            files.problems.append(
                Problem(
                    "blob-unreadable",
                    blob.digest,
                    exc.strerror or str(exc),
                    unrepairable="fix the file's permissions",
                )
            )
            continue
        if scan.digest != blob.digest:
            if recorded:
                problem = Problem(
                    "blob-corrupt",
                    blob.digest,
                    f"its content hashes to {scan.digest}",
                    unrepairable="a row uses it; load the image that has it again",
                )
            else:
                problem = Problem(
                    "blob-corrupt",
                    blob.digest,
                    f"its content hashes to {scan.digest}",
                    Fix(FixAction.REMOVE_BLOB_FILE, blob.digest, "removed the file (no row)"),
                )
            files.problems.append(problem)
            continue
        if not recorded:
            files.problems.append(
                Problem(
                    "blob-unreferenced",
                    blob.digest,
                    f"a file of {scan.size} bytes without a blob row (catalog gc removes it)",
                )
            )
            continue
        expected = rows.blobs.get(blob.digest)
        if expected is not None and expected != scan.size:
            files.problems.append(
                Problem(
                    "blob-size",
                    blob.digest,
                    f"the row records {expected} bytes, the file has {scan.size}",
                    Fix(FixAction.SET_BLOB_SIZE, blob.digest, f"set to {scan.size}", scan.size),
                )
            )
        if scan.tar_error is not None:
            for chain in sorted(users[blob.digest]):
                files.layer_problems.append(
                    Problem(
                        "layer-tar-invalid",
                        chain,
                        f"its blob {blob.digest} is not a readable tar: {scan.tar_error}",
                        unrepairable="load the image again",
                    )
                )
        elif scan.diff_size is not None:
            files.diff_sizes[blob.digest] = scan.diff_size
    files.missing = sorted(set(rows.blobs) - seen)
    return files


# --- Putting it together ---


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


def _size_problems(rows: _Rows, files: _Files) -> tuple[list[Problem], list[Problem]]:
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


def _subject(problem: Problem) -> str:
    return problem.subject


def _garbage_warnings(rows: _Rows, missing: set[str]) -> list[Problem]:
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


def _temporary_files(store: ContentStore, grace_seconds: float) -> list[Problem]:
    now = time.time()
    problems = []
    for path in store.temporary_files():
        try:
            age = now - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        if age < grace_seconds:
            continue  # a write in progress
        problems.append(
            Problem(
                "temporary-file",
                str(path),
                f"left by an interrupted write, last written {_ago(age)}",
                Fix(FixAction.REMOVE_TEMPORARY_FILE, str(path), "removed"),
            )
        )
    return problems


def check_catalog(
    catalog: Catalog, *, repair: bool = False, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> FsckReport:
    """`catalog fsck [--repair]`: check everything, then with `repair` fix what is safe.

    Like `load_archive`, this owns its transactions: rows are read in one snapshot, files
    after it, and repairs are one write transaction followed by file removals.
    """
    report = FsckReport()
    with _snapshot(catalog.database) as session:
        rows = _read_rows(session, report.checked)
    files = _check_files(catalog.store, rows, report.checked, grace_seconds=grace_seconds)
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
        *blob_problems,
        *sorted([*rows.layer_problems, *layer_sizes, *files.layer_problems], key=_subject),
        *sorted([*rows.image_problems, *image_sizes], key=_subject),
        *rows.other_problems,
        *_garbage_warnings(rows, set(missing)),
        *_temporary_files(catalog.store, grace_seconds),
    ]
    if repair:
        report.repairs = _repair(catalog, report.problems, grace_seconds)
    return report


# --- Repairing ---

_ROW_FIX_ORDER = (
    FixAction.SET_BLOB_SIZE,
    FixAction.SET_LAYER_DIFF_SIZE,
    FixAction.SET_IMAGE_SIZE,
    FixAction.SET_TOP_CHAIN_ID,
    FixAction.DELETE_REFERENCE,
    FixAction.DELETE_ORPHAN_ROWS,
    FixAction.DELETE_BLOB_ROW,
)
_FILE_FIXES = (FixAction.REMOVE_BLOB_FILE, FixAction.REMOVE_TEMPORARY_FILE)
_ORPHAN_TABLES = {model.__tablename__: model for model in _IMAGE_TABLES}


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
        path = catalog.store.path(fix.key)
    else:
        path = Path(fix.key)
        try:
            if time.time() - path.lstat().st_mtime < grace_seconds:
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


def _repair(catalog: Catalog, problems: list[Problem], grace_seconds: float) -> list[RepairOutcome]:
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
    with catalog.database.read() as session:
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

"""`catalog image append`: a new image made of a base image plus one layer, without Docker.

The new image is what a one-step `docker build` (`FROM base` + `COPY`) records: the
base's config with one more diff ID in `rootfs.diff_ids`, one more `history` entry, new
`created`, the labels merged into `config.Labels`, and the base as its build parent, so
the base becomes an intermediate image as after a build.

Config. The base's document is copied as it is (keys catalog does not know are kept),
then the keys that describe how the *base* was made and that Docker's builders do not
carry over to a child are removed: `id`, `parent`, `container`, `container_config`,
`docker_version`, `Size` and the top-level `comment` (moby image.NewChildImage; Docker's
inspect then shows the new history entry's comment, which is `-m`). `author` is kept, as
BuildKit keeps it. Top-level keys are sorted, as moby's Image.MarshalJSON sorts them, and
the JSON is compact. `scratch` as the base means no base: an empty config for linux on
the host's architecture, as `FROM scratch` gives.

Layer. A tar (uncompressed, gzip or zstd; checked entry by entry as it is stored) or a
directory, packed deterministically so that the same tree always gives the same diff ID:

* entries depth first, each directory's names sorted by their bytes; no entry for the
  directory itself;
* every mtime 0, owner 0:0 with no user or group names: the tree's content, not when or
  by whom it was checked out (ownership as `COPY` gives it without `--chown`);
* permission bits as on disk; no extended attributes;
* regular files, directories, symlinks (their target text as it is: never followed),
  hardlinks (a second path to an inode already packed), FIFOs and device nodes;
  sockets are skipped, as moby's archive skips them.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Blob, ImageConfigJSON, ImageLayer, Layer
from catalog.domain.imageconfig import (
    ImageConfig,
    TimestampOutOfRange,
    format_timestamp,
    parse_config,
    parse_timestamp,
)
from catalog.domain.reference import Named
from catalog.errors import CatalogError, Conflict, InvalidArgument, NotFound
from catalog.operations.leases import Lease
from catalog.services.images import StoredLayer, register_image, set_reference
from catalog.services.lookup import resolve_image_id
from catalog.services.tag import parse_tag_target
from catalog.storage.layers import ingest_layer

SCRATCH = "scratch"
# Keys of a config that describe how the base itself was built (see module doc).
LEGACY_KEYS = ("id", "parent", "container", "container_config", "docker_version", "Size", "comment")
_WHITESPACE = " \t"

# platform.machine() to Go's GOARCH (and GOARM variant), as Docker names the host.
_HOST_ARCHITECTURES = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64": ("mips64", None),
    "loongarch64": ("loong64", None),
}


# --- Parsing what the user typed ---


def parse_label(text: str) -> tuple[str, str]:
    """`KEY=VALUE` (or `KEY`, an empty value), checked as docker-cli's ValidateLabel."""
    key, _, value = text.partition("=")
    if not key.lstrip(_WHITESPACE):
        raise InvalidArgument(f"invalid label '{text}': empty name")
    if any(c in _WHITESPACE for c in key.lstrip(_WHITESPACE)):
        raise InvalidArgument(f"label '{key.lstrip(_WHITESPACE)}' contains whitespaces")
    return key, value


def parse_created(text: str) -> datetime:
    """An RFC 3339 time with a zone (`2024-05-01T12:00:00Z`), to microseconds, in UTC."""
    try:
        parsed = parse_timestamp(text, clamp=False)
    except TimestampOutOfRange:
        raise InvalidArgument(
            f"invalid --created time {text!r}: outside years 1 to 9999 in UTC"
        ) from None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidArgument(
            f"invalid --created time {text!r}: expected RFC 3339, like 2024-05-01T12:00:00Z"
        )
    return parsed


def host_platform() -> tuple[str, str | None]:
    """The host's architecture and variant in Go's names (`amd64`, `arm64`, `arm` v7)."""
    machine = platform.machine().lower()
    return _HOST_ARCHITECTURES.get(machine, (machine, None))


# --- The new config ---


def child_config(
    base: Mapping[str, Any] | None,
    *,
    diff_id: str,
    created: datetime,
    created_by: str,
    comment: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> bytes:
    """The config bytes of `base` (a config document; None for scratch) plus one layer."""
    created_text = format_timestamp(created)
    if base is None:
        architecture, variant = host_platform()
        document: dict[str, Any] = {"architecture": architecture, "config": {}, "os": "linux"}
        if variant:
            document["variant"] = variant
    else:
        document = json.loads(json.dumps(base))  # a deep copy, key order kept
        for key in LEGACY_KEYS:
            document.pop(key, None)

    rootfs = document.get("rootfs")
    if not isinstance(rootfs, dict):
        rootfs = document["rootfs"] = {"type": "layers"}
    rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), diff_id]

    entry: dict[str, Any] = {"created": created_text, "created_by": created_by}
    if comment:
        entry["comment"] = comment
    document["history"] = [*(document.get("history") or []), entry]
    document["created"] = created_text

    if labels:
        container_config = document.get("config")
        if not isinstance(container_config, dict):
            container_config = document["config"] = {}
        merged = dict(container_config.get("Labels") or {})
        merged.update(labels)
        container_config["Labels"] = merged

    ordered = {key: document[key] for key in sorted(document)}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()


# --- Packing a directory ---


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _sorted_entries(directory: str) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as scan:
        return sorted(scan, key=lambda entry: os.fsencode(entry.name))


def pack_directory(root: Path, out: BinaryIO) -> None:
    """Write the tree under `root` to `out` as a deterministic layer tar (module doc)."""
    first_paths: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        # Depth first without recursion: a stack of (entries left, their name prefix).
        stack = [(iter(_sorted_entries(str(root))), "")]
        while stack:
            entries, prefix = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            name = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            info = _info(name, st)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                stack.append((iter(_sorted_entries(entry.path)), name + "/"))
            elif stat.S_ISLNK(mode):
                info.type = tarfile.SYMTYPE
                # os.readlink, not Path.readlink: a Path would normalize the target text.
                info.linkname = os.readlink(entry.path)  # noqa: PTH115
                tar.addfile(info)
            elif stat.S_ISREG(mode):
                inode = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and inode in first_paths:
                    info.type = tarfile.LNKTYPE
                    info.linkname = first_paths[inode]
                    tar.addfile(info)
                    continue
                first_paths[inode] = name
                info.size = st.st_size
                with open(entry.path, "rb") as file:  # noqa: PTH123 - a DirEntry's path
                    tar.addfile(info, file)
            elif stat.S_ISFIFO(mode):
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tar.addfile(info)
            # A socket has no tar form: skipped, as moby's archive skips it.


# --- The new image ---


@dataclass(frozen=True)
class _Base:
    id: str
    document: dict[str, Any]
    layers: list[StoredLayer]


def _read_base(*, session: Session, base: str) -> _Base:
    """The base image's config and stored layers: two queries after the lookup."""
    image_id = resolve_image_id(session, base)
    raw = session.scalar(select(ImageConfigJSON.config).where(ImageConfigJSON.image_id == image_id))
    if raw is None:
        raise NotFound(f"No such image: {base}")
    rows = session.execute(
        select(Layer.diff_id, Layer.diff_size, Blob.size)
        .join(ImageLayer, ImageLayer.chain_id == Layer.chain_id)
        .join(Blob, Blob.digest == Layer.blob_digest)
        .where(ImageLayer.image_id == image_id)
        .order_by(ImageLayer.position)
    ).all()
    layers = [StoredLayer(diff_id, diff_size, size) for diff_id, diff_size, size in rows]
    return _Base(id=image_id, document=parse_config(bytes(raw)).document, layers=layers)


def layer_name(layer: Path) -> str:
    """How history and errors name a layer: its file or directory name, not its path
    (which says where it was on one machine, and would change the config)."""
    return layer.name or layer.resolve().name or str(layer)


def _store_layer(catalog: Catalog, layer: Path, lease: Lease) -> StoredLayer:
    """Put the layer (a tar, possibly compressed, or a directory) into the content store,
    held by `lease` before it is put in place."""
    description = f"layer {layer_name(layer)}"
    try:
        if layer.is_dir():
            # Packed to a temporary file beside the catalog, then stored (and checked) as
            # any layer tar: never held in memory.
            with tempfile.TemporaryFile(dir=catalog.location.root) as packed:
                pack_directory(layer, packed)
                packed.seek(0)
                ingested = ingest_layer(
                    catalog.store, packed, description=description, before_install=lease.hold_one
                )
        else:
            with layer.open("rb") as file:
                ingested = ingest_layer(
                    catalog.store, file, description=description, before_install=lease.hold_one
                )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = exc.filename or layer
        raise CatalogError(f"{description}: {where}: {reason}") from None
    return StoredLayer(ingested.diff_id, ingested.diff_size, ingested.size)


def append_image(
    catalog: Catalog,
    base: str,
    layer: Path,
    *,
    tags: Sequence[str] = (),
    labels: Sequence[str] = (),
    message: str | None = None,
    created: str | None = None,
) -> str:
    """Make and register the image `base` (or `scratch`) plus `layer`; return its ID.

    Everything the user typed is checked before anything is written; the layer goes to
    the store, then the image and its tags are written in one transaction. A failure
    writes no rows (a layer blob already stored stays unreferenced until `gc`).
    """
    references: list[Named] = [parse_tag_target(tag) for tag in tags]
    parsed_labels = dict(parse_label(label) for label in labels)
    created_at = parse_created(created) if created is not None else datetime.now(UTC)
    if not layer.exists() and not layer.is_symlink():
        raise InvalidArgument(f"layer {layer}: no such file or directory")

    # The base's layers and the new one are held until the rows commit
    # (catalog.operations.leases): no rmi, prune or gc removes their files meanwhile.
    with Lease(catalog, purpose="appending") as lease:
        return _append(catalog, lease, base, layer, references, parsed_labels, created_at, message)


def _append(
    catalog: Catalog,
    lease: Lease,
    base: str,
    layer: Path,
    references: list[Named],
    parsed_labels: dict[str, str],
    created_at: datetime,
    message: str | None,
) -> str:
    """`append_image` once its arguments are checked, holding its blobs in `lease`."""
    base_image: _Base | None = None
    if base != SCRATCH:
        with catalog.database.read() as session:
            base_image = _read_base(session=session, base=base)
        if lease.hold([held.diff_id for held in base_image.layers], require_rows=True):
            raise Conflict(f"image {base_image.id} was deleted while appending")

    stored = _store_layer(catalog, layer, lease)
    raw = child_config(
        base_image.document if base_image is not None else None,
        diff_id=stored.diff_id,
        created=created_at,
        created_by=f"catalog image append {layer_name(layer)}",
        comment=message,
        labels=parsed_labels,
    )
    config: ImageConfig = parse_config(raw)
    layers = [*(base_image.layers if base_image is not None else []), stored]
    with catalog.database.write() as session:
        lease.commit(session)
        register_image(
            session=session,
            config=config,
            layers=layers,
            parent_id=base_image.id if base_image is not None else None,
        )
        for reference in references:
            set_reference(session=session, reference=reference, image_id=config.id)
    return config.id

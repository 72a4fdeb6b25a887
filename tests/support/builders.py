"""Building real layer tars, configs and images for tests, without Docker."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from catalog.context import Catalog
from catalog.domain.digest import sha256_digest
from catalog.domain.imageconfig import parse_config
from catalog.domain.reference import parse_normalized_named, tag_name_only
from catalog.services.images import StoredLayer, register_image, set_reference
from catalog.storage.layers import ingest_layer

# A file's content, or an entry built by hand (directories, links, whiteouts, ...).
Entry = bytes | tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]


def layer_tar(entries: Mapping[str, Entry] | Sequence[tuple[str, Entry]]) -> bytes:
    """An uncompressed tar holding `entries` in order; bytes become regular files 0644."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, entry in items:
            if isinstance(entry, bytes):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(entry), 0o644, 0
                tar.addfile(info, io.BytesIO(entry))
            elif isinstance(entry, tuple):
                info, data = entry
                info.name, info.size = name, len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                entry.name = name
                tar.addfile(entry)
    return buffer.getvalue()


def directory(mode: int = 0o755) -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info


def symlink(target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def hardlink(target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info


def diff_id(tar: bytes) -> str:
    return sha256_digest(tar)


def image_config(
    diff_ids: Sequence[str],
    *,
    created: datetime | None = None,
    labels: Mapping[str, str] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    architecture: str = "amd64",
    os: str = "linux",
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Config JSON bytes as Docker writes them (compact, keys in Go's struct order)."""
    created = created or datetime(2024, 1, 1, tzinfo=UTC)
    document: dict[str, Any] = {
        "architecture": architecture,
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": dict(labels) if labels else None},
        "created": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "history": list(history)
        if history is not None
        else [
            {"created": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "created_by": f"layer {i}"}
            for i in range(len(diff_ids))
        ],
        "os": os,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    document.update(extra or {})
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class ImageBuilder:
    """Adds images to a catalog as a load would: layers through the store, rows in one
    transaction. `add(...)` returns the new image ID."""

    catalog: Catalog
    clock: list[int] = field(default_factory=lambda: [0])

    def add(
        self,
        layers: Sequence[bytes],
        *,
        tags: Sequence[str] = (),
        parent: str | None = None,
        labels: Mapping[str, str] | None = None,
        created: datetime | None = None,
        config: bytes | None = None,
    ) -> str:
        stored = []
        for tar in layers:
            ingested = ingest_layer(self.catalog.store, io.BytesIO(tar))
            stored.append(StoredLayer(ingested.diff_id, ingested.diff_size, ingested.size))
        if created is None:
            # Distinct, increasing times so before/since and ordering are well defined.
            self.clock[0] += 1
            created = datetime(2024, 1, 1, tzinfo=UTC).replace(
                second=0, minute=self.clock[0] % 60, hour=self.clock[0] // 60 % 24
            )
        raw = config or image_config([s.diff_id for s in stored], created=created, labels=labels)
        parsed = parse_config(raw)
        with self.catalog.database.write() as session:
            register_image(session=session, config=parsed, layers=stored, parent_id=parent)
            for tag in tags:
                set_reference(
                    session=session,
                    reference=tag_name_only(parse_normalized_named(tag)),
                    image_id=parsed.id,
                )
        return parsed.id

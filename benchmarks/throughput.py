"""Load and squash throughput on a large image, against hashing its bytes once.

`make_image` writes an unpacked `docker save` directory (manifest.json, a config and
uncompressed layer tars under blobs/sha256/) of `total_bytes` over `layers` layers:
files of random bytes and of compressible text, each layer above the first overwriting
a file of the one below and deleting another (a whiteout), so a squash has real merging
to do. `run` loads it into a catalog with `load_archive` and squashes the loaded image
with `catalog.operations.squash.squash_image` (when that module exists), each repetition
in an emptied catalog; the floor (`sha256sum` of the same layer files) is a `sha256sum`
spec of the worker.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import statistics
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import text

from catalog.context import Catalog
from catalog.operations.load import load_archive

REFERENCE = "bench/squash:latest"
FILE_BYTES = 8 << 20
# Tables in an order that deletes children first (the throughput catalog is its own).
WIPE_ORDER = (
    "containers",
    "image_references",
    "image_history",
    "image_labels",
    "image_layers",
    "image_configs",
    "images",
    "layers",
    "blobs",
)


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hash.update(view)
        self.target.write(view)
        self.size += len(view)
        return len(view)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1_700_000_000
    archive.addfile(info, io.BytesIO(data))


def _content(rng: random.Random, size: int, compressible: bool) -> bytes:
    if not compressible:
        return rng.randbytes(size)
    line = b"".join(
        f"{rng.randrange(10**6):06d} catalog benchmark line of compressible text\n".encode()
        for _ in range(64)
    )
    return (line * (size // len(line) + 1))[:size]


def make_image(
    directory: Path, *, total_bytes: int = 1 << 30, layers: int = 10, seed: int = 7
) -> dict[str, Any]:
    """Write the image; returns its layer files, their total size and its reference."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by seed
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    per_layer = total_bytes // layers
    file_bytes = min(FILE_BYTES, max(4096, per_layer // 4))
    diff_ids: list[str] = []
    layer_paths: list[str] = []
    for index in range(layers):
        partial = blobs / "partial.tar"
        with partial.open("wb") as raw:
            writer = _HashingWriter(raw)
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                written = 0
                number = 0
                if index:
                    # Overwrite a file of the layer below, and delete another.
                    _add(archive, f"layer{index - 1}/file1", _content(rng, 65_536, True))
                    _add(archive, f"layer{index - 1}/.wh.file2", b"")
                while written < per_layer - file_bytes // 2:
                    size = min(file_bytes, per_layer - written)
                    _add(
                        archive, f"layer{index}/file{number}", _content(rng, size, number % 2 == 1)
                    )
                    written += size + 512
                    number += 1
        digest = writer.hash.hexdigest()
        partial.rename(blobs / digest)
        diff_ids.append(f"sha256:{digest}")
        layer_paths.append(f"blobs/sha256/{digest}")
    config = json.dumps(
        {
            "architecture": "amd64",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"]},
            "created": "2025-06-01T00:00:00Z",
            "history": [
                {"created": "2025-06-01T00:00:00Z", "created_by": f"ADD layer{i} /"}
                for i in range(layers)
            ],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    (blobs / config_digest).write_bytes(config)
    manifest = [
        {
            "Config": f"blobs/sha256/{config_digest}",
            "RepoTags": [REFERENCE],
            "Layers": layer_paths,
        }
    ]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    files = [directory / path for path in layer_paths]
    return {
        "directory": str(directory),
        "layer_files": [str(path) for path in files],
        "bytes": sum(path.stat().st_size for path in files),
        "image_id": f"sha256:{config_digest}",
        "reference": REFERENCE,
        "layers": layers,
    }


def squash_function() -> Callable[[Catalog, str], Any] | None:
    """`catalog.operations.squash.squash_image`, or None while it does not exist."""
    try:
        from catalog.operations.squash import squash_image
    except ImportError:
        return None
    return squash_image


def _wipe(catalog: Catalog) -> None:
    with catalog.database.write() as session:
        for table in WIPE_ORDER:
            if table == "layers":
                # ON DELETE RESTRICT acts per row: the top of every chain first.
                while session.execute(
                    text(
                        "DELETE FROM layers WHERE chain_id NOT IN (SELECT parent_chain_id"
                        " FROM layers WHERE parent_chain_id IS NOT NULL)"
                    )
                ).rowcount:  # type: ignore[attr-defined]
                    pass
                continue
            session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    shutil.rmtree(catalog.store.root, ignore_errors=True)


def run(kind: str, catalog: Catalog, spec: dict[str, Any]) -> dict[str, Any]:
    """`load`: load times; `squash`: squash times (each after a fresh load)."""
    repeat = int(spec.get("repeat", 3))
    squash = squash_function()
    if kind == "squash" and squash is None:
        return {"missing": "catalog.operations.squash.squash_image does not exist"}
    times: list[float] = []
    for _ in range(repeat):
        _wipe(catalog)
        started = time.perf_counter()
        loaded = load_archive(catalog, Path(spec["directory"]))
        load_time = time.perf_counter() - started
        if kind == "load":
            times.append(load_time)
            count = len(loaded.images)
            continue
        assert squash is not None
        started = time.perf_counter()
        squash(catalog, spec["reference"])
        times.append(time.perf_counter() - started)
        count = 1
    _wipe(catalog)
    megabytes = spec["bytes"] / (1 << 20)
    median = statistics.median(times)
    return {
        "times": times,
        "median": median,
        "min": min(times),
        "repeats": len(times),
        "count": count,
        "mib_per_s": megabytes / median if median else None,
    }

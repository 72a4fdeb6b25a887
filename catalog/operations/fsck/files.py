"""fsck's checks of the blob files: each one hashed (and, for a layer, its tar summed) in
one streaming pass."""

from __future__ import annotations

import io
import tarfile
import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import BinaryIO

from catalog.domain.digest import CHUNK_SIZE, Hasher
from catalog.errors import NotFound
from catalog.operations.fsck.problems import Checked, Fix, FixAction, Problem
from catalog.operations.fsck.rows import Rows
from catalog.storage.content import ContentStore


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
class Files:
    problems: list[Problem] = field(default_factory=list)
    # Diff sizes of verified layer tars, by blob digest.
    diff_sizes: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    layer_problems: list[Problem] = field(default_factory=list)


def check_files(
    store: ContentStore,
    rows: Rows,
    checked: Checked,
    *,
    grace_seconds: float,
    held: Collection[str] = (),
) -> Files:
    """Every blob file hashed; `held` are digests a live lease holds (a writer whose rows
    have not committed yet: their files are not unreferenced)."""
    files = Files()
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
            if blob.digest in held:
                continue  # a write in progress
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

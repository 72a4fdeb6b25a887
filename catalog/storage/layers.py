"""Layer tars: checked entry by entry (catalog.domain.layertar) as they stream into the
content store.

A layer is never extracted to the host. Its bytes are decompressed, teed into a blob
writer (so the blob is the uncompressed tar, keyed by its diff ID) and, on the way, parsed
as a tar stream to check every entry and sum the diff size
(docs/layers-and-squash.md §1.5, §2.1). Memory stays bounded whatever the layer's size.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from catalog.domain.digest import Hasher
from catalog.domain.layertar import MAX_PATH_LENGTH, check_entry
from catalog.errors import InvalidArchive, os_failure
from catalog.storage.compression import DecompressionLimits, open_decompressed
from catalog.storage.content import BlobWriter, ContentStore

_EXTENDED_HEADER_TYPES = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
    | {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)


@dataclass(frozen=True)
class LayerLimits:
    max_entries: int = 1_000_000
    # Go's archive/tar caps special headers at 1 MiB; CPython reads them whole, uncapped.
    max_header_bytes: int = 1 << 20
    max_path_length: int = MAX_PATH_LENGTH
    # The uncompressed tar, and what may follow its end-of-archive marker (padding to a
    # record, at most): no layer read from a pipe or a device (`/dev/zero`) fills the disk.
    max_tar_bytes: int = 1 << 40
    max_trailing_bytes: int = 1 << 20
    decompression: DecompressionLimits = field(default_factory=DecompressionLimits)


DEFAULT_LIMITS = LayerLimits()


def bounded_tarinfo(limit: int) -> type[tarfile.TarInfo]:
    class BoundedTarInfo(tarfile.TarInfo):
        """Refuses PAX and GNU long-name headers over `limit` before CPython reads them."""

        # _proc_member is where CPython dispatches the special headers; it has kept this
        # name and role from 3.2 to 3.14.
        def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
            if self.type in _EXTENDED_HEADER_TYPES and self.size > limit:
                raise InvalidArchive(f"tar extended header of {self.size} bytes exceeds {limit}")
            return super()._proc_member(tarfile_)  # type: ignore[misc]

    return BoundedTarInfo


class _Tee(io.RawIOBase):
    """Everything read from `source` is also written to `sink`, up to `limit` bytes."""

    def __init__(
        self, source: BinaryIO, sink: BlobWriter, limit: int, description: str, storing: str
    ) -> None:
        super().__init__()
        self._source = source
        self._sink = sink
        self._limit = limit
        self._description = description
        self._storing = storing
        self.hasher = Hasher()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            if self.hasher.size + n > self._limit:
                raise InvalidArchive(
                    f"invalid {self._description}: larger than {self._limit} bytes"
                )
            try:
                self._sink.write(data)
            except OSError as exc:  # the store's disk, not the source
                raise os_failure(exc, f"storing {self._storing}") from None
            self.hasher.update(data)
        return n

    def drain(self, end: int, allowed: int) -> None:
        """Read the rest (it counts toward the diff ID, as in Docker), refusing more than
        `allowed` bytes past offset `end`, where the tar's last entry ends."""
        while self.read(1 << 20):
            if self.hasher.size - end > allowed:
                raise InvalidArchive(
                    f"invalid {self._description}: more than {allowed} bytes after the "
                    "end of the tar"
                )


@dataclass(frozen=True)
class IngestedLayer:
    diff_id: str
    diff_size: int
    size: int  # bytes of the uncompressed tar
    compressed_digest: str
    compressed_size: int
    compression: str
    entries: int


def ingest_layer(
    store: ContentStore,
    source: BinaryIO,
    *,
    expected_diff_id: str | None = None,
    expected_digest: str | None = None,
    expected_size: int | None = None,
    limits: LayerLimits = DEFAULT_LIMITS,
    description: str = "layer",
    before_install: Callable[[str], None] | None = None,
    storing: str | None = None,
) -> IngestedLayer:
    """Stream a (possibly compressed) layer tar into the store as its uncompressed tar.

    `expected_digest`/`expected_size` are checked against the bytes as read (the blob as
    a manifest describes it); `expected_diff_id` against the uncompressed tar. Any mismatch
    or bad entry raises InvalidArchive and installs nothing. `before_install(diff_id)`
    runs before the blob is put in place (`BlobWriter.commit`). A failure of the store's
    disk (no space, an I/O error) raises SystemFailure naming `storing` (default: the
    description): `no space left on device while storing layer sha256:...`.
    """
    storing = storing or description
    raw_hasher = Hasher()

    class _HashingSource(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            data = source.read(len(buffer))
            raw_hasher.update(data)
            buffer[: len(data)] = data
            return len(data)

    hashing = io.BufferedReader(_HashingSource(), buffer_size=1 << 16)
    decompressed, compression, _ = open_decompressed(hashing, limits.decompression)
    try:
        writer = store.writer()
    except OSError as exc:
        raise os_failure(exc, f"storing {storing}") from None
    with writer:
        tee = _Tee(decompressed, writer, limits.max_tar_bytes, description, storing)
        diff_size = entries = data_end = 0
        try:
            with tarfile.open(
                fileobj=tee,
                mode="r|",
                tarinfo=bounded_tarinfo(limits.max_header_bytes),
            ) as tar:
                for member in tar:
                    data_end = member.offset_data + (
                        -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                        if member.isreg()
                        else 0
                    )
                    entries += 1
                    if entries > limits.max_entries:
                        raise InvalidArchive(
                            f"invalid {description}: more than {limits.max_entries} entries"
                        )
                    check_entry(member, max_path_length=limits.max_path_length)
                    if member.isreg():
                        diff_size += member.size
        except tarfile.ReadError as exc:
            if writer.size or str(exc) != "empty file":
                raise InvalidArchive(f"invalid {description}: not a valid tar: {exc}") from None
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidArchive(f"invalid {description}: truncated or corrupt: {exc}") from None
        tee.drain(data_end, limits.max_trailing_bytes)
        # tarfile takes a tar cut short at a block boundary for a complete one; Go's reader
        # (and so Docker) fails with "unexpected EOF". Every entry's data must be there.
        length = tee.hasher.size
        if length % tarfile.BLOCKSIZE or length < data_end:
            raise InvalidArchive(f"invalid {description}: truncated tar ({length} bytes)")
        while hashing.read(1 << 20):  # anything after the compressed stream still counts
            pass
        if expected_size is not None and raw_hasher.size != expected_size:
            raise InvalidArchive(
                f"invalid {description}: size {raw_hasher.size} does not match the "
                f"expected {expected_size}"
            )
        if expected_digest is not None and raw_hasher.digest != expected_digest:
            raise InvalidArchive(
                f"invalid {description}: digest {raw_hasher.digest} does not match the "
                f"expected {expected_digest}"
            )
        if expected_diff_id is not None and tee.hasher.digest != expected_diff_id:
            # moby's text: "invalid diffID for layer %d: expected %q, got %q"
            raise InvalidArchive(
                f'invalid diffID for {description}: expected "{expected_diff_id}", '
                f'got "{tee.hasher.digest}"'
            )
        try:
            blob = writer.commit(expected_digest=expected_diff_id, before_install=before_install)
        except OSError as exc:
            raise os_failure(exc, f"storing {storing}") from None
    return IngestedLayer(
        diff_id=blob.digest,
        diff_size=diff_size,
        size=blob.size,
        compressed_digest=raw_hasher.digest,
        compressed_size=raw_hasher.size,
        compression=compression,
        entries=entries,
    )

"""The content store: content-addressed blobs on disk, at `<root>/blobs/sha256/<64 hex>`.

A `ContentStore` is built on the blob directory (`<root>/blobs`, see `for_catalog_root`).
Every blob's file name is the sha256 of its content, always computed while the bytes stream
in, never taken from the caller; an expected digest or size is only checked against it.

Crash safety. A write streams into `.tmp-<random>` in the same directory as the final blob
(so the rename below never crosses a file system), then

1. fsyncs the temporary file: its content is on disk;
2. checks the computed digest and size against what the caller expected;
3. renames it into place with `os.replace`, which is atomic: the blob path names either
   nothing or the complete file, never a partial one;
4. fsyncs the directory: the new name itself survives a power loss.

So a blob path either does not exist or holds complete content that matched its digest when
it was written. A crash at any step leaves at most a `.tmp-*` file, which no reader ever
opens and garbage collection deletes once its writer has gone (the name says which
process writes it: catalog.storage.owners) or, for a file of unknown writer, once it is
old enough.
Two processes writing the same blob each use their own temporary file; whichever renames
last replaces identical bytes with identical bytes, and both succeed.

Every digest a caller passes is checked with `is_sha256_digest` before it is joined to a
path, so `sha256:../../etc` raises `InvalidDigest` and never reaches the file system.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from catalog.domain.digest import CHUNK_SIZE, SHA256, SHA256_PREFIX, Hasher, is_sha256_digest
from catalog.errors import CatalogError, CorruptBlob, InvalidDigest, NotFound
from catalog.storage.owners import temporary_owner_alive, temporary_tag

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "BLOBS_DIRNAME",
    "TEMPORARY_FILE_GRACE_SECONDS",
    "TEMPORARY_PREFIX",
    "BlobInfo",
    "BlobSource",
    "BlobWriter",
    "ContentStore",
]

BLOBS_DIRNAME = "blobs"
TEMPORARY_PREFIX = ".tmp-"
DIRECTORY_MODE = 0o755
FILE_MODE = 0o644
# A temporary file untouched for this long belongs to a crashed or abandoned writer: a live
# writer updates its file's mtime on every write.
TEMPORARY_FILE_GRACE_SECONDS = 3600.0

BlobSource = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A blob in the store. `created` is True only when this write put the file in place;
    it is False for a blob that was already there, and for blobs listed by `iter_blobs`."""

    digest: str
    size: int
    created: bool = False


def _require_digest(value: object) -> str:
    """`value` if it is `sha256:` and 64 lower-case hex digits, else InvalidDigest."""
    if isinstance(value, str) and is_sha256_digest(value):
        return value
    raise InvalidDigest(
        f"invalid blob digest {value!r}: expected {SHA256_PREFIX} and 64 lower-case hex digits"
    )


def _require_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected size must be a non-negative integer, not {value!r}")
    return value


def _not_found(digest: str) -> NotFound:
    return NotFound(f"blob {digest} not found in the content store")


def _fsync_directory(path: Path) -> None:
    """Make the entries of directory `path` (a rename, a new file) durable."""
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as error:  # pragma: no cover - depends on the file system
        if error.errno != errno.EINVAL:  # some file systems cannot fsync a directory
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class BlobWriter(io.BufferedIOBase):
    """A write-only, non-seekable binary stream into the store; get one from `writer()`.

    Bytes go to a temporary file beside the final blob, hashed and counted on the way.
    `commit()` installs the blob; closing the writer (or leaving its `with` block, or an
    exception) without a commit removes the temporary file. The writer has no `name`, so
    gzip writes no (random) file name into its header.
    """

    def __init__(self, store: ContentStore) -> None:
        super().__init__()
        self._store = store
        self._hasher = Hasher()
        self._committed = False
        self._file: io.BufferedWriter | None = None
        self._temporary: Path | None = None
        directory = store._ensure_directories()
        # The name says which process writes it (catalog.storage.owners): gc keeps the
        # file of a writer that runs, however long it takes.
        tag = temporary_tag()
        prefix = f"{TEMPORARY_PREFIX}{tag}-" if tag else TEMPORARY_PREFIX
        fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
        self._temporary = Path(name)
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp makes 0o600; blobs are world-readable
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self._discard()
            raise

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._hasher.size

    @property
    def temporary_path(self) -> Path:
        """The temporary file the bytes stream into until `commit()`."""
        assert self._temporary is not None  # set by __init__ or it raised
        return self._temporary

    def writable(self) -> bool:
        return not self.closed

    def write(self, buffer: ReadableBuffer, /) -> int:
        file = self._open_file()
        data = buffer if isinstance(buffer, bytes) else bytes(buffer)
        file.write(data)
        self._hasher.update(data)
        return len(data)

    def flush(self) -> None:
        if self.closed:
            raise ValueError("flush of a closed blob writer")
        if self._file is not None and not self._file.closed:
            self._file.flush()

    def tell(self) -> int:
        return self._hasher.size

    def commit(
        self,
        expected_digest: str | None = None,
        expected_size: int | None = None,
        *,
        before_install: Callable[[str], None] | None = None,
    ) -> BlobInfo:
        """Install what was written as a blob and close the writer.

        The digest is computed from the bytes written. If `expected_digest` or
        `expected_size` is given and does not match, raise InvalidDigest and keep nothing.
        A blob that already exists is left as it is (`created` is False).
        `before_install(digest)` runs once the content is verified, before the file is
        put in place or found there: a writer holds the blob there (a lease,
        catalog.operations.leases) so that no removal can take it from under its rows.
        """
        file = self._open_file()
        try:
            if expected_digest is not None:
                _require_digest(expected_digest)
            if expected_size is not None:
                _require_size(expected_size)
            file.flush()
            os.fsync(file.fileno())
            file.close()
            digest, size = self._hasher.digest, self._hasher.size
            if expected_size is not None and size != expected_size:
                raise InvalidDigest(
                    f"blob size mismatch: expected {expected_size} bytes, got {size} bytes"
                    f" (content digest {digest})"
                )
            if expected_digest is not None and digest != expected_digest:
                raise InvalidDigest(
                    f"blob digest mismatch: expected {expected_digest}, got {digest}"
                )
            if before_install is not None:
                before_install(digest)
            created = self._store._install(self.temporary_path, digest, size)
        except BaseException:
            self._discard()
            raise
        self._committed = True
        self._file = None
        super().close()
        return BlobInfo(digest=digest, size=size, created=created)

    def abort(self) -> None:
        """Throw away what was written (a no-op after `commit()`)."""
        self.close()

    def close(self) -> None:
        if not self._committed:
            self._discard()
        super().close()

    def __enter__(self) -> BlobWriter:
        self._open_file()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open_file(self) -> io.BufferedWriter:
        if self._file is None or self.closed:
            state = "committed" if self._committed else "closed"
            raise ValueError(f"blob writer is already {state}")
        return self._file

    def _discard(self) -> None:
        file, self._file = self._file, None
        try:
            if file is not None:
                file.close()
        finally:
            if self._temporary is not None:
                _unlink_quietly(self._temporary)


class _VerifyingReader(io.RawIOBase):
    """Reads a blob file, hashing as it goes; at end of file, raises CorruptBlob if the
    content does not match the digest. Not seekable, and no `fileno()`, so nothing can read
    around the hash."""

    def __init__(self, file: io.FileIO, digest: str) -> None:
        super().__init__()
        self._file = file
        self._digest = digest
        self._hasher = Hasher()
        self._actual: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        count = self._file.readinto(view)
        if count is None:  # pragma: no cover - a regular file never blocks
            return 0
        if count:
            self._hasher.update(bytes(view[:count]))
        elif len(view):
            self._check()
        return count

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            super().close()

    def _check(self) -> None:
        if self._actual is None:
            self._actual = self._hasher.digest
        if self._actual != self._digest:
            raise CorruptBlob(
                f"blob {self._digest} is corrupt: its content hashes to {self._actual}"
            )


class ContentStore:
    """Content-addressed blobs under `root` (a catalog's `<root>/blobs` directory)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._directory = self.root / SHA256

    @classmethod
    def for_catalog_root(cls, catalog_root: Path) -> ContentStore:
        """The store of the catalog whose root directory is `catalog_root`."""
        return cls(Path(catalog_root) / BLOBS_DIRNAME)

    @property
    def directory(self) -> Path:
        """Where the blobs and temporary files are: `<root>/sha256`."""
        return self._directory

    # Writing

    def writer(self) -> BlobWriter:
        """A stream to write one blob into; use it in `with` and call `commit()`."""
        return BlobWriter(self)

    def write(
        self,
        source: BlobSource,
        *,
        expected_digest: str | None = None,
        expected_size: int | None = None,
        before_install: Callable[[str], None] | None = None,
    ) -> BlobInfo:
        """Store bytes, a binary stream (read in 1 MiB chunks) or an iterable of chunks.

        A stream or iterable is never held in memory whole. With `expected_size`, writing
        stops as soon as the source runs past it. `before_install` as for `commit`.
        """
        if expected_digest is not None:
            _require_digest(expected_digest)
        if expected_size is not None:
            _require_size(expected_size)
        with self.writer() as writer:
            for chunk in _chunks(source):
                writer.write(chunk)
                if expected_size is not None and writer.size > expected_size:
                    raise InvalidDigest(
                        f"blob size mismatch: expected {expected_size} bytes,"
                        f" got at least {writer.size} bytes"
                    )
            return writer.commit(
                expected_digest=expected_digest,
                expected_size=expected_size,
                before_install=before_install,
            )

    # Reading

    def path(self, digest: str) -> Path:
        """Where blob `digest` is (or would be); does not check that it exists."""
        return self._directory / _require_digest(digest)[len(SHA256_PREFIX) :]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        path = self.path(digest)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise _not_found(digest) from None

    def open(self, digest: str, *, verify: bool = False) -> BinaryIO:
        """A binary stream of blob `digest`.

        With `verify`, the stream is sequential only and raises CorruptBlob when a read
        reaches the end of the content and the content does not match `digest`; a reader
        that stops early (tarfile stops at the end-of-archive marker) must read to the end,
        for instance `stream.read()`, to have it checked.
        """
        path = self.path(digest)
        if not verify:
            try:
                return path.open("rb")
            except FileNotFoundError:
                raise _not_found(digest) from None
        try:
            raw = path.open("rb", buffering=0)
        except FileNotFoundError:
            raise _not_found(digest) from None
        return io.BufferedReader(_VerifyingReader(raw, digest), CHUNK_SIZE)

    def read_bytes(self, digest: str, *, verify: bool = False) -> bytes:
        """The whole content of blob `digest` (for small blobs: configs, manifests)."""
        with self.open(digest, verify=verify) as stream:
            return stream.read()

    def verify(self, digest: str) -> bool:
        """Re-hash blob `digest`: True if its content still matches its name."""
        hasher = Hasher()
        with self.open(digest) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
        return hasher.digest == digest

    # Listing and removal

    def delete(self, digest: str) -> int:
        """Remove blob `digest`; the bytes freed, 0 if it was not there."""
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every blob, by digest; temporary files and stray entries are skipped."""
        try:
            with os.scandir(self._directory) as entries:
                names = sorted(entry.name for entry in entries)
        except FileNotFoundError:
            return
        for name in names:
            digest = SHA256_PREFIX + name
            if not is_sha256_digest(digest):
                continue
            try:
                st = (self._directory / name).lstat()
            except FileNotFoundError:  # deleted meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                yield BlobInfo(digest=digest, size=st.st_size)

    def total_size(self) -> int:
        """Bytes held by all blobs (temporary files not counted)."""
        return sum(blob.size for blob in self.iter_blobs())

    def temporary_files(self) -> list[Path]:
        """Temporary files: writes in progress, or left behind by a crash."""
        try:
            with os.scandir(self._directory) as entries:
                return sorted(
                    Path(entry.path) for entry in entries if entry.name.startswith(TEMPORARY_PREFIX)
                )
        except FileNotFoundError:
            return []

    @staticmethod
    def writer_alive(path: Path) -> bool | None:
        """Whether the process writing temporary file `path` still runs (its name says
        which, catalog.storage.owners); None when that cannot be told."""
        return temporary_owner_alive(path.name, TEMPORARY_PREFIX)

    def abandoned(self, path: Path, older_than_seconds: float) -> bool:
        """True for a temporary file no running writer will finish: its writer is gone,
        or (writer unknown) it has not been modified for `older_than_seconds`."""
        alive = self.writer_alive(path)
        if alive is not None:
            return not alive
        return path.lstat().st_mtime <= time.time() - older_than_seconds

    def remove_temporary_files(
        self, older_than_seconds: float = TEMPORARY_FILE_GRACE_SECONDS
    ) -> int:
        """Remove the temporary files no running writer will finish (`abandoned`); the
        number removed. A file of unknown writer goes when not modified for
        `older_than_seconds` (0: all of those, safe only when nothing is writing)."""
        if older_than_seconds < 0:
            raise ValueError(f"older_than_seconds must not be negative, not {older_than_seconds}")
        removed = 0
        for path in self.temporary_files():
            try:
                if not self.abandoned(path, older_than_seconds):
                    continue
                path.unlink()
            except FileNotFoundError:  # committed or removed meanwhile
                continue
            removed += 1
        return removed

    # Internals

    def _ensure_directories(self) -> Path:
        """Create `<root>/sha256` (and missing parents) with mode 0o755; return it."""
        if self._directory.is_dir():
            return self._directory
        missing: list[Path] = []
        current = self._directory
        while not current.exists() and current.parent != current:
            missing.append(current)
            current = current.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=DIRECTORY_MODE)
            except FileExistsError:  # another writer made it first
                pass
            else:
                directory.chmod(DIRECTORY_MODE)  # mkdir's mode is cut by the umask
            _fsync_directory(directory.parent)
        return self._directory

    def _install(self, temporary: Path, digest: str, size: int) -> bool:
        """Move the fsynced `temporary` into place as blob `digest`; False if it existed."""
        final = self.path(digest)
        try:
            existing = final.lstat()
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISREG(existing.st_mode) and existing.st_size == size:
            try:
                # Reused: freshen its time, so garbage collection's grace period (which
                # spares recent files without a row) covers the writer about to record it.
                os.utime(final)
            except FileNotFoundError:
                existing = None  # collected just now: install ours below
            else:
                _unlink_quietly(temporary)
                # The blob may be another writer's, renamed but not yet made durable.
                _fsync_directory(final.parent)
                return False
        # Absent, or damaged (wrong size): put the verified content in place.
        try:
            os.replace(temporary, final)  # noqa: PTH105 - the atomic rename all rests on
        except FileNotFoundError:
            raise CatalogError(
                f"temporary file {temporary} disappeared before blob {digest} was committed"
                " (removed by garbage collection?)"
            ) from None
        _fsync_directory(final.parent)
        return True


def _chunks(source: BlobSource) -> Iterator[bytes | bytearray | memoryview]:
    """The bytes of `source` in chunks of at most 1 MiB (an iterable's own chunks as they
    come)."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            yield view[start : start + CHUNK_SIZE]
        return
    if isinstance(source, str):
        raise TypeError("a blob source must be bytes, a binary stream or bytes chunks, not str")
    read = getattr(source, "read", None)
    if callable(read):
        while chunk := read(CHUNK_SIZE):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"a blob stream must yield bytes, not {type(chunk).__name__}")
            yield chunk
        return
    for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"blob chunks must be bytes, not {type(chunk).__name__}")
        yield chunk

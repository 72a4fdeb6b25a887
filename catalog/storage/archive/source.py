"""Read access to an image archive's members, never extracting anything to the host.

Three kinds of input (docs/archives.md §1.1, §4):

- a tar file, read in place: its headers are indexed once (bounded in count, name length
  and extended-header size), then members are read at their offsets; in-archive symlinks
  and hardlinks (Docker ≤ 24 links shared `layer.tar` files) are followed with a hop limit
  and loop detection;
- a directory holding an OCI image layout (or an unpacked `docker save`): every path is
  resolved strictly inside it, symlinks included;
- a stream (stdin), or a file that is itself compressed (`docker load` accepts a gzip,
  zstd, bzip2 or xz tar): it is decompressed, bounded by `catalog.storage.compression`, into an
  anonymous temporary file under the catalog's root, which disappears when closed.

Member names, the paths an archive's JSON names, and link targets (when a link is followed)
are normalized the same way and refused when absolute, containing NUL, or leaving the
archive. JSON members are read whole only up to a limit; layers are only ever streamed.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import contextlib
import enum
import io
import os
import posixpath
import re
import stat
import tarfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from catalog.domain.digest import CHUNK_SIZE
from catalog.errors import CatalogError, InvalidArchive
from catalog.storage.compression import (
    NONE,
    SNIFF_BYTES,
    DecompressionLimits,
    open_decompressed,
    sniff,
)
from catalog.storage.layers import bounded_tarinfo
from catalog.storage.spool import open_spool

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_JSON_BYTES_CEILING",
    "Archive",
    "ArchiveLimits",
    "DirectoryArchive",
    "MemberNotFound",
    "TarArchive",
    "normalize_archive_path",
    "open_archive",
    "open_archive_file",
]

# containerd's importer reads JSON members with a 20 MiB limit; nothing may allow more.
MAX_JSON_BYTES_CEILING = 20 << 20
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an archive may make us do."""

    max_entries: int = 100_000
    # Go's archive/tar caps PAX and GNU long-name headers at 1 MiB; CPython does not.
    max_header_bytes: int = 1 << 20
    max_name_length: int = 4096
    # manifest.json, index.json, OCI manifests and configs (containers/image: 4 MiB).
    max_json_bytes: int = 4 << 20
    max_link_hops: int = 8
    # An archive copied from a stream (stdin, a pipe, a device) or decompressed, as the
    # bytes of its tar: no input may fill the disk (`catalog serve` bounds uploads so too).
    max_archive_bytes: int = 64 << 30
    # For an outer archive that is itself compressed.
    decompression: DecompressionLimits = field(default_factory=DecompressionLimits)

    def __post_init__(self) -> None:
        if not 0 < self.max_json_bytes <= MAX_JSON_BYTES_CEILING:
            raise ValueError(
                f"max_json_bytes must be between 1 and {MAX_JSON_BYTES_CEILING}, "
                f"not {self.max_json_bytes}"
            )


DEFAULT_LIMITS = ArchiveLimits()


class MemberNotFound(InvalidArchive):
    """A path the archive does not hold (as a regular file)."""


def normalize_archive_path(name: str) -> str:
    """The canonical form of a path inside an archive (`./a//b` is `a/b`; the root is "").

    Raises InvalidArchive for a path with NUL, an absolute path, or one that leaves the
    archive once `..` is resolved (`../x`, `a/../../b`).
    """
    if "\x00" in name:
        raise InvalidArchive(f"invalid archive: path {name!r} contains NUL")
    if name.startswith("/") or _WINDOWS_ABSOLUTE.match(name):
        raise InvalidArchive(f'invalid archive: path "{name}" is absolute')
    cleaned = posixpath.normpath(name) if name else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise InvalidArchive(f'invalid archive: path "{name}" is outside the archive')
    return "" if cleaned == "." else cleaned


def _not_found(name: str) -> MemberNotFound:
    return MemberNotFound(f'invalid archive: "{name}" not found in the archive')


class Archive(ABC):
    """An archive's members, by path. Use it as a context manager; `close()` releases any
    file (and removes a spooled temporary file)."""

    def __init__(self, description: str, limits: ArchiveLimits) -> None:
        self.description = description
        self.limits = limits

    @abstractmethod
    def resolve(self, name: str) -> str:
        """The canonical path of the regular file `name` leads to, links followed.

        Raises MemberNotFound when there is no such file, InvalidArchive when the path or
        a link on the way is hostile.
        """

    @abstractmethod
    def size(self, name: str) -> int:
        """The size in bytes of the regular file `name` leads to."""

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A sequential binary stream of the regular file `name` leads to."""

    def exists(self, name: str) -> bool:
        """True if `name` leads to a regular file; hostile paths still raise."""
        try:
            self.resolve(name)
        except MemberNotFound:
            return False
        return True

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        """The whole content of a small member (JSON), refused beyond `limit` bytes
        (the archive's `max_json_bytes` by default)."""
        limit = self.limits.max_json_bytes if limit is None else limit
        size = self.size(name)
        if size > limit:
            raise InvalidArchive(
                f"invalid archive: {name} is {size} bytes, more than the {limit} allowed"
            )
        with self.open(name) as stream:
            data = stream.read(limit + 1)
        if len(data) != size:
            raise InvalidArchive(f"invalid archive: {name} changed or is truncated")
        return data

    def close(self) -> None:  # noqa: B027 - a no-op unless the archive holds a file
        """Release what the archive holds."""

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- Tar files ---


class _Kind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "special file"


@dataclass(frozen=True, slots=True)
class _Member:
    kind: _Kind
    offset: int = 0
    size: int = 0
    linkname: str = ""  # for links: the target as recorded, checked when followed


class _MemberReader(io.RawIOBase):
    """Reads `size` bytes at `offset` of a seekable file. Each read seeks first, so
    several readers of one archive may be open at once."""

    def __init__(self, file: BinaryIO, offset: int, size: int, name: str) -> None:
        super().__init__()
        self._file = file
        self._offset = offset
        self._remaining = size
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._remaining <= 0:
            return 0
        self._file.seek(self._offset)
        data = self._file.read(min(len(buffer), self._remaining))
        if not data:
            raise InvalidArchive(f"invalid archive: {self._name} is truncated")
        n = len(data)
        buffer[:n] = data
        self._offset += n
        self._remaining -= n
        return n


class TarArchive(Archive):
    """An uncompressed tar file, indexed once and read in place.

    Takes ownership of `file` (a seekable binary file) and closes it.
    """

    def __init__(
        self, file: BinaryIO, *, description: str, limits: ArchiveLimits = DEFAULT_LIMITS
    ) -> None:
        super().__init__(description, limits)
        self._file = file
        self._members: dict[str, _Member] = {}
        try:
            self._index()
        except BaseException:
            file.close()
            raise

    def close(self) -> None:
        self._file.close()

    def _index(self) -> None:
        limits = self.limits
        self._file.seek(0)
        count = 0
        try:
            # A TarFile given a file object leaves it open when it closes.
            with tarfile.open(
                fileobj=self._file,
                mode="r:",
                tarinfo=bounded_tarinfo(limits.max_header_bytes),
            ) as tar:
                while (info := tar.next()) is not None:
                    # Keep only our compact index in memory (TarFile.members is untyped).
                    tar.members.clear()  # type: ignore[attr-defined]
                    count += 1
                    if count > limits.max_entries:
                        raise InvalidArchive(
                            f"invalid archive: more than {limits.max_entries} entries"
                        )
                    self._add(info)
        except tarfile.TarError as exc:
            if count == 0:
                raise InvalidArchive(f"invalid archive: not a tar archive ({exc})") from None
            raise InvalidArchive(f"invalid archive: truncated or corrupt tar ({exc})") from None

    def _add(self, info: tarfile.TarInfo) -> None:
        if len(info.name) > self.limits.max_name_length:
            raise InvalidArchive(
                f"invalid archive: entry name longer than {self.limits.max_name_length}"
            )
        name = normalize_archive_path(info.name)
        if not name:
            return  # the archive's root directory ("./")
        if info.isreg() and not info.issparse():
            member = _Member(_Kind.FILE, info.offset_data, info.size)
        elif info.isdir():
            member = _Member(_Kind.DIRECTORY)
        elif info.issym():
            member = _Member(_Kind.SYMLINK, linkname=info.linkname)
        elif info.islnk():
            member = _Member(_Kind.HARDLINK, linkname=info.linkname)
        else:
            member = _Member(_Kind.OTHER)
        self._members[name] = member  # a later entry replaces an earlier one, as in tar

    def _locate(self, name: str) -> tuple[str, _Member]:
        path = normalize_archive_path(name)
        hops = 0
        followed: set[str] = set()
        while True:
            parts = path.split("/") if path else []
            if not parts:
                raise _not_found(name)
            for position, part in enumerate(parts):
                prefix = "/".join([*parts[:position], part])
                member = self._members.get(prefix)
                last = position == len(parts) - 1
                if member is None:
                    if last:
                        raise _not_found(name)
                    continue  # a directory the tar has no entry for
                if member.kind in (_Kind.SYMLINK, _Kind.HARDLINK):
                    if prefix in followed:
                        raise InvalidArchive(f'invalid archive: "{name}" leads to a link loop')
                    followed.add(prefix)
                    hops += 1
                    if hops > self.limits.max_link_hops:
                        raise InvalidArchive(
                            f'invalid archive: "{name}" follows more than '
                            f"{self.limits.max_link_hops} links"
                        )
                    if member.kind is _Kind.SYMLINK:
                        target = _symlink_target(prefix, member.linkname)
                    else:
                        target = _hardlink_target(prefix, member.linkname)
                    rest = parts[position + 1 :]
                    path = posixpath.join(target, *rest) if rest else target
                    path = normalize_archive_path(path) if path else ""
                    break
                if last:
                    if member.kind is not _Kind.FILE:
                        raise InvalidArchive(
                            f'invalid archive: "{name}" is a {member.kind.value}, '
                            "not a regular file"
                        )
                    return prefix, member
                if member.kind is not _Kind.DIRECTORY:
                    raise _not_found(name)

    def resolve(self, name: str) -> str:
        return self._locate(name)[0]

    def size(self, name: str) -> int:
        return self._locate(name)[1].size

    def open(self, name: str) -> BinaryIO:
        _, member = self._locate(name)
        reader = _MemberReader(self._file, member.offset, member.size, name)
        return io.BufferedReader(reader, CHUNK_SIZE)


def _symlink_target(name: str, linkname: str) -> str:
    """A symlink's target as a path inside the archive, relative to the link's directory."""
    if linkname.startswith("/") or "\x00" in linkname or _WINDOWS_ABSOLUTE.match(linkname):
        raise InvalidArchive(f'invalid archive: symlink "{name}" points outside the archive')
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), linkname))
    if joined == ".." or joined.startswith("../"):
        raise InvalidArchive(f'invalid archive: symlink "{name}" points outside the archive')
    return "" if joined == "." else joined


def _hardlink_target(name: str, linkname: str) -> str:
    """A hardlink's target: a path from the archive's root, as tar records it."""
    try:
        target = normalize_archive_path(linkname)
    except InvalidArchive:
        raise InvalidArchive(
            f'invalid archive: hardlink "{name}" points outside the archive'
        ) from None
    if not target:
        raise InvalidArchive(f'invalid archive: hardlink "{name}" has no target')
    return target


# --- Directories ---


class DirectoryArchive(Archive):
    """A directory (an OCI image layout, or an unpacked `docker save`), confined to itself:
    no path, and no symlink on the way, may lead outside it."""

    def __init__(self, path: Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
        super().__init__(str(path), limits)
        self._root = Path(os.path.realpath(path))

    def _locate(self, name: str) -> tuple[Path, os.stat_result]:
        relative = normalize_archive_path(name)
        if not relative:
            raise _not_found(name)
        try:
            real = Path(os.path.realpath(self._root / relative, strict=True))
        except FileNotFoundError:
            raise _not_found(name) from None
        except OSError as exc:  # a symlink loop, a component that is not a directory
            raise InvalidArchive(f'invalid archive: "{name}": {exc.strerror}') from None
        if not real.is_relative_to(self._root):
            raise InvalidArchive(f'invalid archive: "{name}" points outside the archive')
        try:
            st = real.stat()
        except FileNotFoundError:
            raise _not_found(name) from None
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArchive(f'invalid archive: "{name}" is not a regular file')
        return real, st

    def resolve(self, name: str) -> str:
        return str(self._locate(name)[0].relative_to(self._root))

    def size(self, name: str) -> int:
        return self._locate(name)[1].st_size

    def open(self, name: str) -> BinaryIO:
        real, _ = self._locate(name)
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise InvalidArchive(f'invalid archive: cannot open "{name}": {exc.strerror}') from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since it was resolved
            os.close(fd)
            raise InvalidArchive(f'invalid archive: "{name}" is not a regular file')
        return os.fdopen(fd, "rb", buffering=CHUNK_SIZE)


# --- Opening whatever the user gave ---


def _open_error(path: Path, exc: OSError) -> CatalogError:
    # Docker's CLI prints Go's error: "open x.tar: no such file or directory".
    reason = (exc.strerror or str(exc)).lower()
    return CatalogError(f"open {path}: {reason}")


class _SpoolCopy(io.RawIOBase):
    """Reads `source`, writing every byte read to `spool`; InvalidArchive past `limit`."""

    def __init__(self, source: BinaryIO, spool: BinaryIO, limit: int) -> None:
        super().__init__()
        self._source = source
        self._spool = spool
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        n = len(data)
        self.count += n
        if self.count > self._limit:
            raise InvalidArchive(f"invalid archive: larger than {self._limit} bytes")
        buffer[:n] = data
        self._spool.write(data)
        return n


def _spool(
    stream: BinaryIO, *, description: str, temporary_dir: Path, limits: ArchiveLimits
) -> TarArchive:
    """Copy `stream`, decompressed if it is compressed, into an anonymous temporary file
    under `temporary_dir` and open that as a tar.

    The copy is read as a tar stream on the way and stops at the tar's end: what follows
    (an endless `/dev/zero`, a pipe that never closes) is never read. It stops too at
    whatever makes the tar unreadable, and at `max_archive_bytes`; indexing the copy then
    says what is wrong with it.
    """
    spool = open_spool(temporary_dir)
    try:
        reader, _, _ = open_decompressed(stream, limits.decompression)
        copy = _SpoolCopy(reader, spool, limits.max_archive_bytes)
        entries = 0
        try:
            with tarfile.open(
                fileobj=copy,
                mode="r|",
                tarinfo=bounded_tarinfo(limits.max_header_bytes),
                bufsize=CHUNK_SIZE,
            ) as tar:
                for _ in tar:
                    tar.members.clear()  # type: ignore[attr-defined]
                    entries += 1
                    if entries > limits.max_entries:
                        break  # the index refuses it, with its count
        except tarfile.TarError:
            pass  # the index of what was copied says what is wrong
        spool.flush()
    except BaseException:
        spool.close()
        raise
    return TarArchive(spool, description=description, limits=limits)


def open_archive(
    source: Path | str | BinaryIO,
    *,
    temporary_dir: Path,
    limits: ArchiveLimits | None = None,
) -> Archive:
    """Open a path (a tar, a compressed tar, or a directory) or a binary stream.

    Streams and compressed files are spooled, decompressed, into `temporary_dir` (the
    catalog's `<root>/tmp`); the spool has no name and vanishes when the archive closes.
    """
    limits = limits or DEFAULT_LIMITS
    if not isinstance(source, str | Path):
        return _spool(source, description="stdin", temporary_dir=temporary_dir, limits=limits)
    path = Path(source)
    if path.is_dir():
        return DirectoryArchive(path, limits=limits)
    try:
        file = path.open("rb")
    except OSError as exc:
        raise _open_error(path, exc) from None
    return open_archive_file(
        file, description=str(path), temporary_dir=temporary_dir, limits=limits
    )


def open_archive_file(
    file: BinaryIO,
    *,
    description: str,
    temporary_dir: Path,
    limits: ArchiveLimits | None = None,
) -> Archive:
    """Open an open file, which the archive takes over: a regular file holding a tar is
    read in place; a compressed one, a FIFO or a device is spooled (as `open_archive`)."""
    limits = limits or DEFAULT_LIMITS
    try:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # a FIFO, a device
            with contextlib.closing(file):
                return _spool(
                    file, description=description, temporary_dir=temporary_dir, limits=limits
                )
        file.seek(0)
        head = file.read(SNIFF_BYTES)
        file.seek(0)
        if sniff(head) != NONE:
            with contextlib.closing(file):
                return _spool(
                    file, description=description, temporary_dir=temporary_dir, limits=limits
                )
    except BaseException:
        file.close()
        raise
    return TarArchive(file, description=description, limits=limits)

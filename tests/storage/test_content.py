"""The content store, on real files under tmp_path."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

import catalog
from catalog.domain.digest import CHUNK_SIZE, sha256_digest
from catalog.errors import CorruptBlob, InvalidDigest, NotFound
from catalog.storage.content import BlobInfo, ContentStore

MIB = 1 << 20
ABSENT = "sha256:" + "0" * 64
REPO_ROOT = Path(catalog.__file__).resolve().parent.parent

HOSTILE_DIGESTS = [
    "sha256:../../etc",
    "sha256:../../victim",
    "sha256:" + "../" * 21 + "x",  # exactly 71 characters, like a real digest
    "sha256:/etc/passwd",
    "sha256:" + "A" * 64,
    "sha256:" + "0" * 63,
    "sha256:" + "0" * 65,
    "sha256:" + "0" * 64 + "\n",
    "sha256:" + "0" * 63 + "\x00",
    "sha512:" + "0" * 128,
    "0" * 64,
    "",
]


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs")


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _pattern(offset: int, length: int) -> bytes:
    """`length` bytes of a 251-byte cycle starting at `offset`: never all in memory at once."""
    start = offset % 251
    return (bytes(range(251)) * ((start + length) // 251 + 1))[start : start + length]


class _PatternStream(io.RawIOBase):
    """A readable stream of `total` pattern bytes, made on demand; records read sizes."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.offset = 0
        self.requests: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(-1 if size is None else size)
        remaining = self.total - self.offset
        length = remaining if size is None or size < 0 else min(size, remaining)
        data = _pattern(self.offset, length)
        self.offset += length
        return data


def _pattern_digest(total: int, chunk: int = MIB) -> str:
    hasher = hashlib.sha256()
    for offset in range(0, total, chunk):
        hasher.update(_pattern(offset, min(chunk, total - offset)))
    return "sha256:" + hasher.hexdigest()


def _flip_byte(path: Path, index: int) -> None:
    content = bytearray(path.read_bytes())
    content[index] ^= 0xFF
    path.write_bytes(bytes(content))


def _tar_bytes_members() -> dict[str, bytes]:
    return {"etc/hostname": b"catalog\n", "usr/lib/big": _pattern(0, 300_000)}


def _write_tar(fileobj: io.BufferedIOBase, members: dict[str, bytes]) -> None:
    with tarfile.open(fileobj=fileobj, mode="w|") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))


def _read_in_chunks(stream: BinaryIO, size: int, into: bytearray) -> None:
    while chunk := stream.read(size):
        into += chunk


def _extract_then_drain(stream: BinaryIO) -> dict[str, bytes]:
    """Read a tar in stream mode as an image loader does, then the rest of the stream."""
    members = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            assert extracted is not None
            members[member.name] = extracted.read()
    assert stream.read() == b""
    return members


def _write_then_fail(store: ContentStore, seen: list[Path]) -> None:
    with store.writer() as writer:
        writer.write(b"half a layer")
        seen.append(writer.temporary_path)
        assert writer.temporary_path.exists()
        raise RuntimeError("the download broke")


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *sys.path]))
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


# Writing and reading back


def test_round_trip(store: ContentStore, tmp_path: Path) -> None:
    data = b"a layer, or a config\n" * 100

    info = store.write(data)

    assert info == BlobInfo(digest=sha256_digest(data), size=len(data), created=True)
    assert store.path(info.digest) == tmp_path / "blobs" / "sha256" / _hex(info.digest)
    assert store.path(info.digest).read_bytes() == data
    assert store.read_bytes(info.digest) == data
    assert store.read_bytes(info.digest, verify=True) == data
    with store.open(info.digest) as stream:
        assert stream.read() == data
    assert store.exists(info.digest)
    assert store.size(info.digest) == len(data)
    assert store.verify(info.digest)


def test_empty_blob(store: ContentStore) -> None:
    info = store.write(b"")

    assert info.digest == sha256_digest(b"")
    assert info.size == 0
    assert store.read_bytes(info.digest, verify=True) == b""


def test_directories_made_lazily_and_modes_ignore_umask(tmp_path: Path) -> None:
    store = ContentStore.for_catalog_root(tmp_path / "catalog")
    assert store.root == tmp_path / "catalog" / "blobs"
    assert not (tmp_path / "catalog").exists()  # nothing until the first write

    old_umask = os.umask(0o077)
    try:
        info = store.write(b"modes")
    finally:
        os.umask(old_umask)

    for directory in (tmp_path / "catalog", store.root, store.root / "sha256"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
    assert stat.S_IMODE(store.path(info.digest).stat().st_mode) == 0o644


def test_temporary_file_is_beside_the_blob(store: ContentStore) -> None:
    with store.writer() as writer:
        writer.write(b"beside")
        temporary = writer.temporary_path
        assert temporary.parent == store.root / "sha256"
        assert temporary.name.startswith(".tmp-")
        assert store.temporary_files() == [temporary]
        info = writer.commit()

    assert not temporary.exists()
    assert store.path(info.digest).parent == temporary.parent
    assert store.temporary_files() == []


def test_commit_fsyncs_file_then_renames_then_fsyncs_directory(
    store: ContentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(source: str | Path, target: str | Path) -> None:
        events.append("replace")
        real_replace(source, target)

    with store.writer() as writer:
        writer.write(b"durable")
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        writer.commit()

    assert events == ["fsync file", "replace", "fsync dir"]


# The digest is computed, never trusted


def test_expected_digest_mismatch_keeps_nothing(store: ContentStore) -> None:
    data = b"what was really sent"
    claimed = sha256_digest(b"what the manifest says")

    with pytest.raises(InvalidDigest) as raised:
        store.write(data, expected_digest=claimed)

    message = str(raised.value)
    assert claimed in message
    assert sha256_digest(data) in message
    assert "\n" not in message
    assert not store.exists(claimed)
    assert not store.exists(sha256_digest(data))
    assert list(store.iter_blobs()) == []
    assert store.temporary_files() == []


def test_writer_commit_mismatch_keeps_nothing(store: ContentStore) -> None:
    claimed = sha256_digest(b"other")
    with store.writer() as writer:
        writer.write(b"content")
        temporary = writer.temporary_path
        with pytest.raises(InvalidDigest, match="digest mismatch"):
            writer.commit(expected_digest=claimed)
        assert not temporary.exists()

    assert list(store.iter_blobs()) == []
    assert store.temporary_files() == []


def test_expected_size_mismatch_keeps_nothing(store: ContentStore) -> None:
    data = b"twelve bytes"
    with store.writer() as writer:
        writer.write(data)
        with pytest.raises(InvalidDigest) as raised:
            writer.commit(expected_digest=sha256_digest(data), expected_size=11)
    assert "11 bytes" in str(raised.value)
    assert "12 bytes" in str(raised.value)

    with pytest.raises(InvalidDigest, match="expected 4 bytes"):
        store.write(iter([b"ab", b"cd", b"ef"]), expected_size=4)

    assert list(store.iter_blobs()) == []
    assert store.temporary_files() == []


def test_oversized_source_stops_early(store: ContentStore) -> None:
    produced: list[int] = []

    def far_too_long() -> Iterator[bytes]:
        for _ in range(1000):
            produced.append(1)
            yield b"x" * 1024

    with pytest.raises(InvalidDigest, match="size mismatch"):
        store.write(far_too_long(), expected_size=4096)

    assert len(produced) == 5  # stopped at the first chunk past 4096 bytes
    assert store.temporary_files() == []


def test_matching_expectations_are_accepted(store: ContentStore) -> None:
    data = b"as promised"

    info = store.write(data, expected_digest=sha256_digest(data), expected_size=len(data))

    assert info.digest == sha256_digest(data)
    assert store.read_bytes(info.digest) == data


# An existing blob is not rewritten


def test_existing_blob_is_not_rewritten(store: ContentStore) -> None:
    data = b"written once"
    first = store.write(data)
    path = store.path(first.digest)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # long ago
    before = path.stat()

    again = store.write(data)
    with store.writer() as writer:
        writer.write(data)
        via_writer = writer.commit()

    after = path.stat()
    assert first.created
    assert again == BlobInfo(digest=first.digest, size=len(data), created=False)
    assert via_writer == again
    assert after.st_ino == before.st_ino  # the same file: not rewritten
    # ... but freshened, so gc's grace period covers the writer that reuses it.
    assert after.st_mtime_ns > before.st_mtime_ns
    assert store.temporary_files() == []


def test_damaged_blob_of_wrong_size_is_replaced(store: ContentStore) -> None:
    data = b"the real content"
    info = store.write(data)
    store.path(info.digest).write_bytes(data[:4])  # truncated behind the store's back

    again = store.write(data)

    assert again.created
    assert store.read_bytes(info.digest) == data


# Streaming


def test_streams_a_multi_chunk_source_in_bounded_reads(store: ContentStore) -> None:
    total = 5 * MIB + 12345
    source = _PatternStream(total)

    info = store.write(source)

    assert info.digest == _pattern_digest(total)
    assert info.size == total
    assert len(source.requests) >= 6
    assert all(0 < size <= CHUNK_SIZE for size in source.requests)
    assert store.verify(info.digest)


def test_memory_does_not_grow_with_blob_size(store: ContentStore) -> None:
    total = 32 * MIB
    expected = _pattern_digest(total)

    tracemalloc.start()
    try:
        from_stream = store.write(_PatternStream(total))
        chunks = (_pattern(offset, 256 * 1024) for offset in range(0, total, 256 * 1024))
        from_chunks = store.write(chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert from_stream.digest == from_chunks.digest == expected
    assert peak < 8 * MIB, f"peak {peak} bytes while storing {total} bytes"


def test_bytes_and_iterable_sources_agree(store: ContentStore) -> None:
    data = _pattern(7, 3 * MIB + 1)

    from_bytes = store.write(data)
    from_view = store.write(memoryview(data))
    from_chunks = store.write(data[i : i + 1000] for i in range(0, len(data), 1000))
    from_file = store.write(io.BytesIO(data))

    assert from_bytes.digest == sha256_digest(data)
    assert from_bytes.created
    assert from_view.digest == from_chunks.digest == from_file.digest == from_bytes.digest
    assert store.read_bytes(from_bytes.digest) == data


def test_str_source_is_refused(store: ContentStore) -> None:
    with pytest.raises(TypeError):
        store.write("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.write(["not bytes"])  # type: ignore[list-item]
    assert store.temporary_files() == []


def test_writer_as_tarfile_fileobj(store: ContentStore) -> None:
    members = _tar_bytes_members()
    reference = io.BytesIO()
    _write_tar(reference, members)

    with store.writer() as writer:
        _write_tar(writer, members)
        info = writer.commit()

    assert info.digest == sha256_digest(reference.getvalue())
    with store.open(info.digest, verify=True) as stream:
        # Reads to the end of the blob, so the content is verified: no CorruptBlob.
        assert _extract_then_drain(stream) == members


def test_writer_as_gzip_fileobj_is_deterministic(store: ContentStore) -> None:
    data = _pattern(0, 200_000)
    reference = io.BytesIO()
    with gzip.GzipFile(fileobj=reference, mode="wb", mtime=0) as compressed:
        compressed.write(data)
        compressed.flush()  # a sync flush point, as the writer's copy gets

    with store.writer() as writer:
        with gzip.GzipFile(fileobj=writer, mode="wb", mtime=0) as compressed:
            compressed.write(data)
            compressed.flush()
        info = writer.commit()

    # The writer has no `name`, so the random temporary name is not in the gzip header.
    assert info.digest == sha256_digest(reference.getvalue())
    assert gzip.decompress(store.read_bytes(info.digest)) == data


def test_writer_refuses_use_after_commit(store: ContentStore) -> None:
    with store.writer() as writer:
        writer.write(b"once")
        writer.commit()
        with pytest.raises(ValueError, match="committed"):
            writer.write(b"again")
        with pytest.raises(ValueError, match="committed"):
            writer.commit()


# Verification


def test_verify_detects_a_changed_byte_and_truncation(store: ContentStore) -> None:
    good = store.write(b"intact content")
    flipped = store.write(b"flip one byte, same size")
    cut = store.write(b"to be truncated")

    _flip_byte(store.path(flipped.digest), 3)
    store.path(cut.digest).write_bytes(b"to be")

    assert store.verify(good.digest)
    assert not store.verify(flipped.digest)
    assert not store.verify(cut.digest)


def test_verifying_reader_raises_corrupt_blob(store: ContentStore) -> None:
    data = _pattern(0, 3 * 8192)
    info = store.write(data)
    _flip_byte(store.path(info.digest), len(data) - 1)
    corrupted = store.path(info.digest).read_bytes()

    with pytest.raises(CorruptBlob) as raised:
        store.read_bytes(info.digest, verify=True)
    assert info.digest in str(raised.value)

    received = bytearray()
    with store.open(info.digest, verify=True) as stream, pytest.raises(CorruptBlob):
        _read_in_chunks(stream, 1000, received)
    assert corrupted.startswith(received)  # what came before EOF was the file's content

    # Without verify, the same corrupt content is returned as it is.
    assert store.read_bytes(info.digest) != data


def test_verifying_reader_under_tarfile_stream_mode(store: ContentStore) -> None:
    members = _tar_bytes_members()
    with store.writer() as writer:
        _write_tar(writer, members)
        info = writer.commit()
    _flip_byte(store.path(info.digest), 3 * 512 + 1000)  # inside usr/lib/big's data

    with store.open(info.digest, verify=True) as stream, pytest.raises(CorruptBlob):
        _extract_then_drain(stream)


# Hostile digests


@pytest.mark.parametrize("hostile", HOSTILE_DIGESTS)
def test_hostile_digests_never_reach_the_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostile: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"must survive")
    store = ContentStore(tmp_path / "blobs")

    def touched(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the file system was touched: {args!r}")

    operations: list[Callable[[], object]] = [
        lambda: store.path(hostile),
        lambda: store.exists(hostile),
        lambda: store.size(hostile),
        lambda: store.open(hostile),
        lambda: store.open(hostile, verify=True),
        lambda: store.read_bytes(hostile),
        lambda: store.verify(hostile),
        lambda: store.delete(hostile),
        lambda: store.write(b"data", expected_digest=hostile),
    ]
    with monkeypatch.context() as patch:
        for name in ("stat", "lstat", "open", "unlink", "scandir", "mkdir", "replace"):
            patch.setattr(os, name, touched)
        patch.setattr(io, "open", touched)
        patch.setattr(builtins, "open", touched)
        for operation in operations:
            with pytest.raises(InvalidDigest, match="invalid blob digest"):
                operation()

    assert victim.read_bytes() == b"must survive"
    assert not (tmp_path / "blobs").exists()


def test_hostile_expected_digest_on_commit(store: ContentStore) -> None:
    with store.writer() as writer:
        writer.write(b"data")
        with pytest.raises(InvalidDigest, match="invalid blob digest"):
            writer.commit(expected_digest="sha256:../../etc")
    assert list(store.iter_blobs()) == []
    assert store.temporary_files() == []


# Temporary files


def test_temporary_file_removed_on_exception(store: ContentStore) -> None:
    seen: list[Path] = []
    with pytest.raises(RuntimeError, match="download broke"):
        _write_then_fail(store, seen)

    assert len(seen) == 1
    assert not seen[0].exists()
    assert store.temporary_files() == []
    assert list(store.iter_blobs()) == []


def test_temporary_file_removed_without_commit(store: ContentStore) -> None:
    with store.writer() as writer:
        writer.write(b"never committed")
    explicit = store.writer()
    explicit.write(b"aborted")
    explicit.abort()

    assert store.temporary_files() == []
    assert list(store.iter_blobs()) == []


def test_temporary_file_removed_when_the_source_fails(store: ContentStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * MIB
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        store.write(broken())

    assert store.temporary_files() == []
    assert list(store.iter_blobs()) == []


CRASHING_WRITER = """
import os, sys
from pathlib import Path
from typing import BinaryIO
from catalog.storage.content import ContentStore
writer = ContentStore(Path(sys.argv[1])).writer()
writer.write(b"x" * 100_000)
writer.flush()
print(writer.temporary_path, flush=True)
os._exit(3)
"""


def test_crash_leaves_a_temporary_file_that_gc_removes(store: ContentStore) -> None:
    crashed = _python(CRASHING_WRITER, str(store.root))
    out, err = crashed.communicate(timeout=60)
    assert crashed.returncode == 3, err
    leftover = Path(out.strip())

    assert store.temporary_files() == [leftover]
    assert leftover.stat().st_size == 100_000
    assert list(store.iter_blobs()) == []
    assert store.total_size() == 0

    with store.writer() as live:
        live.write(b"in progress")
        assert set(store.temporary_files()) == {leftover, live.temporary_path}
        # A slow writer: its file is old, but its process runs.
        an_hour_ago = time.time() - 2 * 3600
        os.utime(live.temporary_path, (an_hour_ago, an_hour_ago))
        assert store.writer_alive(leftover) is False and store.writer_alive(live.temporary_path)

        # The file names its writer: the crashed one's goes at once, fresh as it is; the
        # live one's stays, however old (catalog.storage.owners).
        assert store.remove_temporary_files() == 1

        assert store.temporary_files() == [live.temporary_path]
        info = live.commit()

    assert store.read_bytes(info.digest) == b"in progress"
    assert store.temporary_files() == []


def test_remove_all_temporary_files(store: ContentStore) -> None:
    directory = store.root / "sha256"
    directory.mkdir(parents=True)
    for name in (".tmp-a", ".tmp-b"):
        (directory / name).write_bytes(b"partial")
    blob = store.write(b"kept")

    assert store.remove_temporary_files(older_than_seconds=0) == 2
    assert store.temporary_files() == []
    assert store.exists(blob.digest)
    with pytest.raises(ValueError, match="negative"):
        store.remove_temporary_files(older_than_seconds=-1)


# Two processes at once


CONCURRENT_WRITER = """
import sys
from pathlib import Path
from typing import BinaryIO
from catalog.storage.content import ContentStore
store = ContentStore(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
with open(sys.argv[2], "rb") as source, store.writer() as writer:
    writer.write(source.read(1 << 20))
    writer.flush()
    print("writing", flush=True)
    sys.stdin.readline()
    while chunk := source.read(65536):
        writer.write(chunk)
    info = writer.commit()
print(info.digest, info.size, info.created, flush=True)
"""


def _expect_line(processes: list[subprocess.Popen[str]], line: str) -> None:
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == line


def _send_line(processes: list[subprocess.Popen[str]], line: str) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(line)
        process.stdin.flush()


def test_processes_writing_the_same_blob_at_once(store: ContentStore, tmp_path: Path) -> None:
    data = _pattern(11, 8 * MIB)
    source = tmp_path / "layer.tar"
    source.write_bytes(data)
    digest = sha256_digest(data)

    writers = [_python(CONCURRENT_WRITER, str(store.root), str(source)) for _ in range(4)]
    try:
        _expect_line(writers, "ready\n")
        _send_line(writers, "go\n")  # released together...
        _expect_line(writers, "writing\n")
        # ...and all four are now half way through writing the same blob, each in its own file.
        assert len(store.temporary_files()) == 4
        results = [writer.communicate(input="go\n", timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()

    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
        written, size, _ = out.split()
        assert (written, int(size)) == (digest, len(data))
    assert any(out.split()[2] == "True" for out, _ in results)
    assert store.read_bytes(digest) == data
    assert store.verify(digest)
    assert [blob.digest for blob in store.iter_blobs()] == [digest]
    assert store.temporary_files() == []


# Listing, sizes and deletion


def test_delete_size_iter_and_total_size(store: ContentStore) -> None:
    assert list(store.iter_blobs()) == []  # no directory yet
    assert store.total_size() == 0

    blobs = {store.write(data).digest: len(data) for data in (b"a", b"bb" * 10, b"ccc" * 100)}
    (store.root / "sha256" / ".tmp-leftover").write_bytes(b"not a blob")
    (store.root / "sha256" / "README").write_bytes(b"not a blob either")

    listed = list(store.iter_blobs())
    assert [blob.digest for blob in listed] == sorted(blobs)
    assert {blob.digest: blob.size for blob in listed} == blobs
    assert store.total_size() == 1 + 20 + 300
    for digest, size in blobs.items():
        assert store.size(digest) == size

    victim = sha256_digest(b"bb" * 10)
    assert store.delete(victim) == 20
    assert store.delete(victim) == 0
    assert not store.exists(victim)
    assert store.total_size() == 301
    assert victim not in {blob.digest for blob in store.iter_blobs()}


def test_missing_blob_raises_not_found(store: ContentStore) -> None:
    expected = f"blob {ABSENT} not found in the content store"
    operations: list[Callable[[], object]] = [
        lambda: store.size(ABSENT),
        lambda: store.open(ABSENT),
        lambda: store.open(ABSENT, verify=True),
        lambda: store.read_bytes(ABSENT),
        lambda: store.verify(ABSENT),
    ]
    for operation in operations:
        with pytest.raises(NotFound) as raised:
            operation()
        assert str(raised.value) == expected

    assert not store.exists(ABSENT)
    assert store.delete(ABSENT) == 0
    assert store.path(ABSENT) == store.root / "sha256" / ("0" * 64)

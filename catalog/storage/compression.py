"""Decompressing untrusted streams: sniffed by magic bytes, bounded in output and ratio.

moby's `compression.Detect` decides by magic bytes, never by media type or file name; so
do we. Bounds stop decompression bombs (a 1 KiB gzip of 1 GiB of zeros) before they fill
the disk: output may not exceed `max_ratio` times the input read so far plus a fixed
allowance, nor `max_bytes` in all.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from catalog.errors import InvalidArchive

GZIP, ZSTD, BZIP2, XZ, NONE = "gzip", "zstd", "bzip2", "xz", "none"

_MAGIC = (
    (b"\x1f\x8b\x08", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"\x42\x5a\x68", BZIP2),
    (b"\xfd\x37\x7a\x58\x5a\x00", XZ),
)
SNIFF_BYTES = 6


def sniff(head: bytes) -> str:
    """The compression the first bytes of a stream show (moby compression.Detect)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    # zstd skippable frames: magic 0x184D2A50..0x184D2A5F, little endian.
    if len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50:
        return ZSTD
    return NONE


@dataclass(frozen=True)
class DecompressionLimits:
    max_ratio: int = 256
    allowance: int = 64 << 20
    max_bytes: int = 1 << 40
    # zstd frames may ask for windows up to 2 GiB of memory; 128 MiB covers `--long`.
    zstd_max_window: int = 128 << 20


class CountingReader(io.RawIOBase):
    """Passes reads through, counting the bytes and feeding them to an optional hasher."""

    def __init__(self, source: BinaryIO, prefix: bytes = b"") -> None:
        super().__init__()
        self._source = source
        self._prefix = prefix
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            data = self._source.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n


class _BoundedReader(io.RawIOBase):
    """Reads a decompressor, refusing output beyond the limits (see module doc)."""

    def __init__(
        self, decompressed: BinaryIO, compressed: CountingReader, limits: DecompressionLimits
    ) -> None:
        super().__init__()
        self._decompressed = decompressed
        self._compressed = compressed
        self._limits = limits
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._decompressed.read(len(buffer))
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as exc:
            raise InvalidArchive(f"corrupt or truncated compressed data: {exc}") from None
        n = len(data)
        buffer[:n] = data
        self.count += n
        limits = self._limits
        if self.count > limits.max_bytes:
            raise InvalidArchive(f"decompressed data exceeds {limits.max_bytes} bytes")
        if self.count > limits.allowance + limits.max_ratio * self._compressed.count:
            raise InvalidArchive(
                f"decompression ratio exceeds {limits.max_ratio}:1 (a decompression bomb?)"
            )
        return n


def open_decompressed(
    source: BinaryIO, limits: DecompressionLimits | None = None
) -> tuple[BinaryIO, str, CountingReader]:
    """Wrap `source` so reads return its decompressed bytes.

    Returns (reader, compression, counter of compressed bytes consumed). An uncompressed
    stream passes through unchanged.
    """
    limits = limits or DecompressionLimits()
    head = source.read(SNIFF_BYTES)
    counter = CountingReader(source, prefix=head)
    kind = sniff(head)
    raw: BinaryIO = io.BufferedReader(counter, buffer_size=1 << 16)
    if kind == NONE:
        return raw, kind, counter
    decompressor: BinaryIO
    # The decompressors live as long as the returned reader; closing it closes them.
    if kind == GZIP:
        decompressor = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif kind == ZSTD:
        zstd = zstandard.ZstdDecompressor(max_window_size=limits.zstd_max_window)
        decompressor = zstd.stream_reader(raw, read_across_frames=True)
    elif kind == BZIP2:
        decompressor = bz2.BZ2File(raw, mode="rb")  # type: ignore[assignment]
    else:
        decompressor = lzma.LZMAFile(raw, mode="rb")  # type: ignore[assignment]  # noqa: SIM115
    bounded = _BoundedReader(decompressor, counter, limits)
    return io.BufferedReader(bounded, buffer_size=1 << 16), kind, counter

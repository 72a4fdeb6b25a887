"""Digests as go-digest defines them, streaming sha256, and Docker's chain and image IDs.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from catalog.errors import InvalidDigest

SHA256 = "sha256"
SHA256_PREFIX = "sha256:"
# Hex lengths of the algorithms go-digest knows; a Docker daemon links all three.
ALGORITHM_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
DAEMON_ALGORITHMS = frozenset(ALGORITHM_HEX_LENGTHS)

# go-digest v1.0.0 DigestRegexp, anchored.
_DIGEST_SHAPE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")
_LOWER_HEX = re.compile(r"[a-f0-9]+\Z")

# Errors of go-digest, as Docker prints them.
ERR_FORMAT = "invalid checksum digest format"
ERR_LENGTH = "invalid checksum digest length"
ERR_UNSUPPORTED = "unsupported digest algorithm"

CHUNK_SIZE = 1 << 20


def validate_digest(value: str, *, algorithms: Iterable[str] = DAEMON_ALGORITHMS) -> str:
    """Return `value` if it is a valid `algorithm:hex` digest, else raise InvalidDigest.

    Mirrors go-digest's `Digest.Validate`, including which error wins when several apply.
    `algorithms` are those "available" (linked into the binary, in Go's terms).
    """
    i = value.find(":")
    if i <= 0 or i + 1 == len(value):
        raise InvalidDigest(ERR_FORMAT)
    algorithm, encoded = value[:i], value[i + 1 :]
    if algorithm not in algorithms or algorithm not in ALGORITHM_HEX_LENGTHS:
        if not _DIGEST_SHAPE.match(value):
            raise InvalidDigest(ERR_FORMAT)
        raise InvalidDigest(ERR_UNSUPPORTED)
    # Go compares the length in bytes, so non-ASCII input can pass this check and then fail
    # the hex check with the format error.
    if len(encoded.encode("utf-8", "surrogatepass")) != ALGORITHM_HEX_LENGTHS[algorithm]:
        raise InvalidDigest(ERR_LENGTH)
    if not _LOWER_HEX.match(encoded):
        raise InvalidDigest(ERR_FORMAT)
    return value


def is_sha256_digest(value: str) -> bool:
    """True for exactly `sha256:` followed by 64 lower-case hex digits."""
    return (
        len(value) == 71
        and value.startswith(SHA256_PREFIX)
        and _LOWER_HEX.match(value[7:]) is not None
    )


def sha256_digest(data: bytes) -> str:
    """The `sha256:<hex>` digest of `data`."""
    return SHA256_PREFIX + hashlib.sha256(data).hexdigest()


class Hasher:
    """Counts and hashes bytes as they stream past."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return SHA256_PREFIX + self._hash.hexdigest()


def iter_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Read `stream` to its end in chunks of at most `chunk_size` bytes."""
    while chunk := stream.read(chunk_size):
        yield chunk


def digest_stream(stream: BinaryIO) -> tuple[str, int]:
    """The sha256 digest and length of everything left in `stream`, read in chunks."""
    hasher = Hasher()
    for chunk in iter_chunks(stream):
        hasher.update(chunk)
    return hasher.digest, hasher.size


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """Chain IDs of a layer stack, bottom first (image spec: ChainID(L0) = DiffID(L0),
    ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)))."""
    result: list[str] = []
    for diff_id in diff_ids:
        if not is_sha256_digest(diff_id):
            raise InvalidDigest(f"invalid diff ID {diff_id!r}")
        if result:
            result.append(sha256_digest(f"{result[-1]} {diff_id}".encode()))
        else:
            result.append(diff_id)
    return result


def image_id(config: bytes) -> str:
    """An image's ID: the digest of its config JSON, byte for byte."""
    return sha256_digest(config)


def short_id(value: str) -> str:
    """Docker's 12-character short form of an ID, without the algorithm."""
    return value.split(":", 1)[-1][:12]

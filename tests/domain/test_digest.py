"""Tests for catalog.domain.digest: go-digest validation, chain and image IDs, streaming hashes."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.domain import digest as dg
from catalog.errors import InvalidDigest

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HEX = "0123456789abcdef"


@pytest.mark.parametrize(
    "value",
    ["sha256:" + "a" * 64, "sha384:" + "0" * 96, "sha512:" + "f" * 128, EMPTY_SHA256],
)
def test_valid_digests_are_returned_unchanged(value: str) -> None:
    assert dg.validate_digest(value) == value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        # No algorithm or no encoded part: format, before anything else.
        ("", dg.ERR_FORMAT),
        ("sha256", dg.ERR_FORMAT),
        (":" + "a" * 64, dg.ERR_FORMAT),
        ("sha256:", dg.ERR_FORMAT),
        # Unknown algorithm: unsupported if the digest is well-formed, else format.
        ("md5:abc", dg.ERR_UNSUPPORTED),
        ("sha256+b64:abc=", dg.ERR_UNSUPPORTED),
        ("MD5:abc", dg.ERR_FORMAT),
        ("md5:ab!c", dg.ERR_FORMAT),
        ("md5:abc\n", dg.ERR_FORMAT),
        ("Sha256:" + "a" * 64, dg.ERR_FORMAT),
        # Known algorithm: the length is checked before the characters.
        ("sha256:" + "a" * 63, dg.ERR_LENGTH),
        ("sha256:" + "a" * 65, dg.ERR_LENGTH),
        ("sha256:" + "A" * 64, dg.ERR_FORMAT),
        ("sha256:" + "g" * 64, dg.ERR_FORMAT),
        ("sha256:" + "a" * 63 + "\n", dg.ERR_FORMAT),
        ("sha256:" + "!" * 3, dg.ERR_LENGTH),
        ("sha512:" + "a" * 64, dg.ERR_LENGTH),
        # Go measures the length in bytes: 32 two-byte characters pass it, then fail as hex.
        ("sha256:" + "\u00e9" * 32, dg.ERR_FORMAT),
        ("sha256:" + "\u00e9" * 64, dg.ERR_LENGTH),
    ],
)
def test_validate_digest_error_precedence(value: str, error: str) -> None:
    with pytest.raises(InvalidDigest) as info:
        dg.validate_digest(value)
    assert info.value.message == error


def test_an_algorithm_that_is_not_linked_is_unsupported() -> None:
    only_sha256 = {"sha256"}
    assert dg.validate_digest("sha256:" + "a" * 64, algorithms=only_sha256)
    # Availability is decided before the length of the encoded part is looked at.
    for value in ("sha512:" + "f" * 128, "sha512:abc"):
        with pytest.raises(InvalidDigest, match=f"^{dg.ERR_UNSUPPORTED}$"):
            dg.validate_digest(value, algorithms=only_sha256)
    with pytest.raises(InvalidDigest, match=f"^{dg.ERR_FORMAT}$"):
        dg.validate_digest("sha512:ab!", algorithms=only_sha256)


def test_an_available_algorithm_needs_a_known_length() -> None:
    with pytest.raises(InvalidDigest, match=f"^{dg.ERR_UNSUPPORTED}$"):
        dg.validate_digest("md5:" + "a" * 32, algorithms={"md5", "sha256"})


def test_algorithms_may_be_a_one_shot_iterable() -> None:
    value = "sha512:" + "f" * 128
    assert dg.validate_digest(value, algorithms=iter(["sha256", "sha512"])) == value
    assert dg.validate_digest(value, algorithms=(a for a in ("sha512",))) == value


@given(st.text(HEX, min_size=64, max_size=64))
def test_every_lower_hex_sha256_is_valid(encoded: str) -> None:
    value = "sha256:" + encoded
    assert dg.validate_digest(value) == value
    assert dg.is_sha256_digest(value)


@given(st.text(max_size=80))
def test_validate_digest_raises_only_invalid_digest(value: str) -> None:
    message = None
    try:
        result = dg.validate_digest(value)
    except InvalidDigest as exc:
        message = exc.message
    else:
        assert result == value
    assert message in {None, dg.ERR_FORMAT, dg.ERR_LENGTH, dg.ERR_UNSUPPORTED}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EMPTY_SHA256, True),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "a" * 65, False),
        ("sha512:" + "a" * 64, False),
        ("a" * 71, False),
        ("sha256:" + "a" * 63 + "\n", False),
    ],
)
def test_is_sha256_digest(value: str, expected: bool) -> None:
    assert dg.is_sha256_digest(value) is expected


def test_sha256_digest_and_image_id() -> None:
    assert dg.sha256_digest(b"") == EMPTY_SHA256
    config = b'{"architecture":"amd64","os":"linux"}'
    assert dg.image_id(config) == "sha256:" + hashlib.sha256(config).hexdigest()
    # Byte for byte: the same JSON spelled differently is another image.
    assert dg.image_id(b'{"os":"linux","architecture":"amd64"}') != dg.image_id(config)


# Diff IDs of three layers, sha256 of b"layer0", b"layer1" and b"layer2", and their chain IDs
# worked out by hand with `printf '%s %s' <chain> <diff> | sha256sum`.
DIFF_IDS = [
    "sha256:4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e",
    "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2",
    "sha256:95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06",
]
CHAIN_IDS = [
    DIFF_IDS[0],
    "sha256:ef232af0eb422cdfd7917631657cd8ed2bfd5b9461b37c427aa0d3e0a19adf79",
    "sha256:7ad3896338947cc04ee0b35b50d400ff32538d63f42f85ec87feac78bf71a54d",
]


def test_chain_ids_hand_computed() -> None:
    assert [dg.sha256_digest(b"layer%d" % i) for i in range(3)] == DIFF_IDS
    assert dg.chain_ids(DIFF_IDS) == CHAIN_IDS
    assert dg.chain_ids(iter(DIFF_IDS)) == CHAIN_IDS
    assert dg.chain_ids(DIFF_IDS[:1]) == DIFF_IDS[:1]
    assert dg.chain_ids([]) == []


def test_chain_ids_follow_the_image_spec_formula() -> None:
    chain = dg.chain_ids(DIFF_IDS)
    for previous, diff_id, current in zip(chain, DIFF_IDS[1:], chain[1:], strict=False):
        text = f"{previous} {diff_id}".encode()
        assert current == "sha256:" + hashlib.sha256(text).hexdigest()


@pytest.mark.parametrize(
    "bad", ["sha256:" + "A" * 64, "sha512:" + "a" * 128, "a" * 64, "sha256:" + "a" * 63]
)
def test_chain_ids_refuse_a_bad_diff_id(bad: str) -> None:
    with pytest.raises(InvalidDigest, match="invalid diff ID"):
        dg.chain_ids([DIFF_IDS[0], bad])


class CountingReader(io.BytesIO):
    """A BytesIO that records the size asked of each read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requests: list[int | None] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.requests.append(size)
        return super().read(size)


def test_digest_stream_reads_in_chunks() -> None:
    data = bytes(range(256)) * ((2 * dg.CHUNK_SIZE) // 256) + b"tail"
    reader = CountingReader(data)
    assert dg.digest_stream(reader) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    # Three chunks (two full, one of 4 bytes) and the empty read that ends the loop.
    assert reader.requests == [dg.CHUNK_SIZE] * 4


def test_digest_stream_reads_only_what_is_left() -> None:
    stream = io.BytesIO(b"skipped|kept")
    stream.seek(8)
    assert dg.digest_stream(stream) == (dg.sha256_digest(b"kept"), 4)
    assert dg.digest_stream(io.BytesIO()) == (EMPTY_SHA256, 0)


def test_iter_chunks() -> None:
    assert list(dg.iter_chunks(io.BytesIO(b"abcdefg"), chunk_size=3)) == [b"abc", b"def", b"g"]
    assert list(dg.iter_chunks(io.BytesIO(b""), chunk_size=3)) == []


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_hasher_matches_one_shot_hash(pieces: list[bytes]) -> None:
    hasher = dg.Hasher()
    for piece in pieces:
        hasher.update(piece)
    whole = b"".join(pieces)
    assert hasher.digest == dg.sha256_digest(whole)
    assert hasher.size == len(whole)


def test_hasher_digest_can_be_read_midway() -> None:
    hasher = dg.Hasher()
    hasher.update(b"abc")
    assert hasher.digest == dg.sha256_digest(b"abc")
    hasher.update(b"def")
    assert (hasher.digest, hasher.size) == (dg.sha256_digest(b"abcdef"), 6)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sha256:" + HEX * 4, "0123456789ab"),
        (HEX * 4, "0123456789ab"),
        ("sha256:abc", "abc"),
        ("", ""),
        ("a:b:" + HEX, "b:0123456789"),
    ],
)
def test_short_id(value: str, expected: str) -> None:
    assert dg.short_id(value) == expected

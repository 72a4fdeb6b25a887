"""What the kept columns of a catalog hold (docs/listing.md §12), as values: how a creation
time becomes `images.sort_key` and back, and how labels and names become the Engine API's
JSON texts. Plain Python, without SQLAlchemy: the listing that `catalog images` runs
without it reads them too (catalog.services.listing), and the writers that keep them
(catalog.services.kept_facts) write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from catalog.docker.gojson import go_json_text

# images.sort_key of an image without a creation time: the largest BIGINT, so it sorts last.
UNDATED = 2**63 - 1
# Docker's dangling image, on the kept counts: a leaf without a tag (docs/listing.md §3.2).
# The words of ix_images_dangling's WHERE: SQLite uses a partial index only for a query
# that spells its condition so.
DANGLING = "child_count = 0 AND tag_count = 0"

# What a listing reads of each image, in this order (catalog.services.listing's ImageRow):
# the kept facts, and what a summary shows besides.
ROW_COLUMNS = (
    "sort_key",
    "id",
    "parent_id",
    "size",
    "unique_size",
    "container_count",
    "labels_json",
    "repo_tags",
    "repo_digests",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def sort_key(created: datetime | None) -> int:
    """`images.sort_key`: minus the creation time in microseconds since the epoch, so that
    ascending order is newest first; UNDATED (last) without one."""
    if created is None:
        return UNDATED
    return -((created - _EPOCH) // _MICROSECOND)


def created_unix(key: int) -> int:
    """Docker's `Created` from a sort key: Go's time.Unix(), whole seconds rounded down
    (also before 1970); 0 when undated."""
    return 0 if key == UNDATED else (-key) // 1_000_000


def labels_json(labels: Mapping[str, str] | None) -> str | None:
    """`Labels` as the Engine API sends it: keys sorted (a Go map), None without any."""
    return go_json_text(dict(sorted(labels.items()))) if labels else None


def familiar_text(repository: str) -> str:
    """Docker's familiar name of a stored (normalized) repository: `docker.io/` dropped,
    and `library/` when no other path component follows (as `familiar_name` in SQL);
    plain text, so that a row no command could have written still gets an answer."""
    if repository.startswith("docker.io/library/") and "/" not in repository[18:]:
        return repository[18:]
    return repository.removeprefix("docker.io/")


StoredName = tuple[str, str | None, str | None]  # repository, tag, digest


def names_json(references: Iterable[StoredName]) -> tuple[int, int, str, str]:
    """tag_count, digest_count, RepoTags and RepoDigests of an image's stored references
    (repository, tag, digest), in the reference store's order: by the full normalized
    string."""
    full = sorted(
        (repository + (f":{tag}" if digest is None else f"@{digest}"), repository, digest)
        for repository, tag, digest in references
    )
    tags = [familiar_text(r) + text[len(r) :] for text, r, digest in full if digest is None]
    digests = [familiar_text(r) + text[len(r) :] for text, r, digest in full if digest is not None]
    return len(tags), len(digests), go_json_text(tags), go_json_text(digests)

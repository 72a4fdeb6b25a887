"""Engine API versions as Docker's daemon treats them (docs/engine-api.md §2; moby
`daemon/server/middleware/version.go` and `daemon/internal/versions`).

Pure: no SQLAlchemy, no Starlette.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.errors import InvalidArgument

# The newest version served, and the oldest: every prefix in between is accepted.
API_VERSION = "1.52"
MIN_API_VERSION = "1.24"

# gorilla/mux's `/v{version:[0-9.]+}` prefix of every versioned route.
_PREFIX = re.compile(r"/v(?P<version>[0-9.]+)(?P<path>/.*)\Z", re.DOTALL)


class UnsupportedVersion(InvalidArgument):
    """A `/vX.Y` prefix outside the versions served (Docker answers 400)."""


def _parts(version: str) -> list[int]:
    # Go's strconv.Atoi on each part, a failure counting as 0 (versions.compare).
    parts = []
    for part in version.split("."):
        parts.append(int(part) if part.isdigit() else 0)
    return parts


def compare(a: str, b: str) -> int:
    """moby versions.compare: -1, 0 or 1, part by part, missing parts as 0."""
    if a == b:
        return 0
    left, right = _parts(a), _parts(b)
    for index in range(max(len(left), len(right))):
        x = left[index] if index < len(left) else 0
        y = right[index] if index < len(right) else 0
        if x != y:
            return 1 if x > y else -1
    return 0


@dataclass(frozen=True)
class ApiVersion:
    """The API version a request asked for (or the server's own when unversioned)."""

    text: str

    def before(self, version: str) -> bool:
        """True when this version is older than `version`."""
        return compare(self.text, version) < 0

    def at_least(self, version: str) -> bool:
        return compare(self.text, version) >= 0

    def __str__(self) -> str:
        return self.text


def split_version(path: str) -> tuple[str | None, str]:
    """`/v1.50/images/json` -> ("1.50", "/images/json"); an unversioned path -> (None, path)."""
    match = _PREFIX.match(path)
    if match is None:
        return None, path
    return match["version"], match["path"]


def check_version(requested: str | None) -> ApiVersion:
    """The version to answer in; UnsupportedVersion with Docker's texts outside the range."""
    if requested is None:
        return ApiVersion(API_VERSION)
    if compare(requested, MIN_API_VERSION) < 0:
        raise UnsupportedVersion(
            f"client version {requested} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if compare(requested, API_VERSION) > 0:
        raise UnsupportedVersion(
            f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )
    return ApiVersion(requested)

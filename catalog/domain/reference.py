"""Docker image references, ported from github.com/distribution/reference v0.6.0.

Grammar, normalization (`docker.io/library/...`), familiar forms and matching behave like the
Go package, down to the error texts; matching is Go's `path.Match` (catalog.docker.pathmatch).
Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final, TypeAlias

from catalog.docker.pathmatch import path_match
from catalog.domain.digest import DAEMON_ALGORITHMS, validate_digest
from catalog.errors import InvalidDigest, InvalidReference

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "ERR_DIGEST_INVALID_FORMAT",
    "ERR_NAME_CONTAINS_UPPERCASE",
    "ERR_NAME_EMPTY",
    "ERR_NAME_NOT_CANONICAL",
    "ERR_NAME_TOO_LONG",
    "ERR_REFERENCE_INVALID_FORMAT",
    "ERR_TAG_INVALID_FORMAT",
    "LEGACY_DEFAULT_DOMAIN",
    "OFFICIAL_REPO_PREFIX",
    "REPOSITORY_NAME_TOTAL_LENGTH_MAX",
    "AnchoredDigestRegexp",
    "AnchoredDomainRegexp",
    "AnchoredIdentifierRegexp",
    "AnchoredNameRegexp",
    "AnchoredTagRegexp",
    "DigestReference",
    "DigestRegexp",
    "DomainRegexp",
    "IdentifierRegexp",
    "NameRegexp",
    "Named",
    "Reference",
    "ReferenceRegexp",
    "TagRegexp",
    "familiar_match",
    "familiar_name",
    "familiar_string",
    "is_name_only",
    "parse",
    "parse_any_reference",
    "parse_docker_ref",
    "parse_named",
    "parse_normalized_named",
    "reference_filter_match",
    "tag_name_only",
    "trim_named",
    "with_digest",
    "with_name",
    "with_tag",
]

REPOSITORY_NAME_TOTAL_LENGTH_MAX: Final = 255
DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DEFAULT_DOMAIN: Final = "index.docker.io"
OFFICIAL_REPO_PREFIX: Final = "library/"
DEFAULT_TAG: Final = "latest"
_LOCALHOST: Final = "localhost"

ERR_REFERENCE_INVALID_FORMAT: Final = "invalid reference format"
ERR_TAG_INVALID_FORMAT: Final = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT: Final = "invalid digest format"
ERR_NAME_CONTAINS_UPPERCASE: Final = "repository name must be lowercase"
ERR_NAME_EMPTY: Final = "repository name must have at least one component"
ERR_NAME_TOO_LONG: Final = (
    f"repository name must not be more than {REPOSITORY_NAME_TOTAL_LENGTH_MAX} characters"
)
ERR_NAME_NOT_CANONICAL: Final = "repository name must be canonical"

# --- Regular expressions, built exactly as regexp.go builds them. ---
# Python's `$` also matches before a trailing newline and its `\w` is Unicode-aware; Go's are
# neither, so patterns end in `\Z` and compile with re.ASCII.


def _optional(*res: str) -> str:
    return "(?:" + "".join(res) + ")?"


def _any_times(*res: str) -> str:
    return "(?:" + "".join(res) + ")*"


def _capture(*res: str) -> str:
    return "(" + "".join(res) + ")"


def _anchored(*res: str) -> str:
    return "^" + "".join(res) + r"\Z"


_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST_PAT = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_IDENTIFIER = r"([a-f0-9]{64})"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + _any_times(r"\.", _DOMAIN_NAME_COMPONENT)
_HOST = "(?:" + _DOMAIN_NAME + "|" + _IPV6_ADDRESS + ")"
_DOMAIN_AND_PORT = _HOST + _OPTIONAL_PORT
_PATH_COMPONENT = _ALPHANUMERIC + _any_times(_SEPARATOR, _ALPHANUMERIC)
_REMOTE_NAME = _PATH_COMPONENT + _any_times("/", _PATH_COMPONENT)
_NAME_PAT = _optional(_DOMAIN_AND_PORT, "/") + _REMOTE_NAME
_ANCHORED_NAME_PAT = _anchored(_optional(_capture(_DOMAIN_AND_PORT), "/"), _capture(_REMOTE_NAME))
_REFERENCE_PAT = _anchored(
    _capture(_NAME_PAT), _optional(":", _capture(_TAG)), _optional("@", _capture(_DIGEST_PAT))
)

# Exported Go regexps; as in Go, only ReferenceRegexp is anchored (use `.search` for Go's
# MatchString/FindStringSubmatch on the unanchored ones).
DigestRegexp: Final = re.compile(_DIGEST_PAT, re.ASCII)
DomainRegexp: Final = re.compile(_DOMAIN_AND_PORT, re.ASCII)
IdentifierRegexp: Final = re.compile(_IDENTIFIER, re.ASCII)
NameRegexp: Final = re.compile(_NAME_PAT, re.ASCII)
ReferenceRegexp: Final = re.compile(_REFERENCE_PAT, re.ASCII)
TagRegexp: Final = re.compile(_TAG, re.ASCII)
# Go's unexported anchored variants (AnchoredDomainRegexp is the one regexp_test.go builds).
AnchoredDomainRegexp: Final = re.compile(_anchored(_DOMAIN_AND_PORT), re.ASCII)
AnchoredNameRegexp: Final = re.compile(_ANCHORED_NAME_PAT, re.ASCII)
AnchoredTagRegexp: Final = re.compile(_anchored(_TAG), re.ASCII)
AnchoredDigestRegexp: Final = re.compile(_anchored(_DIGEST_PAT), re.ASCII)
AnchoredIdentifierRegexp: Final = re.compile(_anchored(_IDENTIFIER), re.ASCII)


# --- Reference values ---


@dataclass(frozen=True, slots=True)
class Named:
    """A reference with a repository name, and optionally a tag and/or a digest.

    One type stands for Go's repository, taggedReference, canonicalReference and reference;
    build it through the parse functions or the `with_*` builders, which validate.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Go's Name(): `domain/path`, or just the path when there is no domain."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def kind(self) -> str:
        """`name-only`, `tagged`, `digested` or `tagged+digested`."""
        if self.tag is None:
            return "name-only" if self.digest is None else "digested"
        return "tagged" if self.digest is None else "tagged+digested"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += ":" + self.tag
        if self.digest is not None:
            text += "@" + self.digest
        return text


@dataclass(frozen=True, slots=True)
class DigestReference:
    """A bare digest (Go's digestReference): what ParseAnyReference returns for an ID."""

    digest: str

    @property
    def domain(self) -> None:
        return None

    @property
    def path(self) -> None:
        return None

    @property
    def name(self) -> None:
        return None

    @property
    def tag(self) -> None:
        return None

    @property
    def kind(self) -> str:
        return "digest-only"

    def __str__(self) -> str:
        return self.digest


Reference: TypeAlias = Named | DigestReference


# --- Parsing ---


def _go_lower(s: str) -> str:
    """Go's strings.ToLower: simple per-rune case mapping.

    Python's str.lower() uses full mappings, which turn U+0130 into two code points where Go
    gives ASCII `i`; that changes whether the lower-cased input matches the grammar.
    """
    if s.isascii():
        return s.lower()
    return "".join("i" if c == "\u0130" else c.lower() for c in s)


def _parse_digest(value: str, algorithms: AbstractSet[str]) -> str:
    try:
        return validate_digest(value, algorithms=algorithms)
    except InvalidDigest as exc:
        raise InvalidReference(exc.message) from exc


def _split_name(name: str) -> tuple[str, str] | None:
    match = AnchoredNameRegexp.match(name)
    if match is None:
        return None
    return match.group(1) or "", match.group(2)


def parse(s: str, *, algorithms: AbstractSet[str] = DAEMON_ALGORITHMS) -> Named:
    """Go's Parse: a syntactically valid reference, without any normalization."""
    if s == "":
        raise InvalidReference(ERR_NAME_EMPTY)
    matches = ReferenceRegexp.match(s)
    if matches is None:
        lowered = _go_lower(s)
        if lowered != s and ReferenceRegexp.match(lowered) is not None:
            raise InvalidReference(ERR_NAME_CONTAINS_UPPERCASE)
        raise InvalidReference(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = matches.group(1), matches.group(2), matches.group(3)
    # The name group matched the same grammar, so this split always succeeds.
    domain, path = _split_name(name) or ("", name)
    if len(path) > REPOSITORY_NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(ERR_NAME_TOO_LONG)
    if digest is not None:
        digest = _parse_digest(digest, algorithms)
    # Go's getBestReferenceType cannot meet an empty name here: the grammar requires a path.
    return Named(domain, path, tag, digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Go's splitDockerDomain: the registry domain and the remainder (remote[:tag][@digest])."""
    maybe_domain, sep, maybe_remote = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain == _LOCALHOST:
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    elif _go_lower(maybe_domain) != maybe_domain:
        # Namespaces are lower case, so an upper-case first component can only be a host.
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def parse_normalized_named(s: str, *, algorithms: AbstractSet[str] = DAEMON_ALGORITHMS) -> Named:
    """Go's ParseNormalizedNamed: a familiar name (`ubuntu`) made fully qualified."""
    if AnchoredIdentifierRegexp.match(s):
        raise InvalidReference(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(s)
    remote = remainder.partition(":")[0]
    if _go_lower(remote) != remote:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    return parse(domain + "/" + remainder, algorithms=algorithms)


def parse_any_reference(
    s: str, *, algorithms: AbstractSet[str] = DAEMON_ALGORITHMS
) -> Named | DigestReference:
    """Go's ParseAnyReference: a 64-hex ID, a full digest, or else a familiar name."""
    if AnchoredIdentifierRegexp.match(s):
        return DigestReference("sha256:" + s)
    try:
        return DigestReference(validate_digest(s, algorithms=algorithms))
    except InvalidDigest:
        pass
    return parse_normalized_named(s, algorithms=algorithms)


def parse_named(s: str, *, algorithms: AbstractSet[str] = DAEMON_ALGORITHMS) -> Named:
    """Go's ParseNamed: like parse_normalized_named, but `s` must already be canonical."""
    named = parse_normalized_named(s, algorithms=algorithms)
    if str(named) != s:
        raise InvalidReference(ERR_NAME_NOT_CANONICAL)
    return named


def parse_docker_ref(s: str, *, algorithms: AbstractSet[str] = DAEMON_ALGORITHMS) -> Named:
    """Go's ParseDockerRef: normalized, `:latest` when bare, and `name@digest` for tag+digest."""
    named = parse_normalized_named(s, algorithms=algorithms)
    if named.tag is not None and named.digest is not None:
        return with_digest(with_name(named.name), named.digest)
    return tag_name_only(named)


# --- Builders ---


def with_name(name: str) -> Named:
    """Go's WithName: a name-only reference; no tag, digest or normalization allowed."""
    split = _split_name(name)
    if split is None:
        raise InvalidReference(ERR_REFERENCE_INVALID_FORMAT)
    if len(split[1]) > REPOSITORY_NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(ERR_NAME_TOO_LONG)
    return Named(*split)


def with_tag(named: Named, tag: str) -> Named:
    """Go's WithTag: `named` with `tag` (replacing any tag; a digest is kept)."""
    if not AnchoredTagRegexp.match(tag):
        raise InvalidReference(ERR_TAG_INVALID_FORMAT)
    return Named(named.domain, named.path, tag, named.digest)


def with_digest(named: Named, digest: str) -> Named:
    """Go's WithDigest: `named` with `digest` (a tag is kept).

    Like Go it only checks the reference grammar (>= 32 hex digits), not go-digest's rules.
    """
    if not AnchoredDigestRegexp.match(digest):
        raise InvalidReference(ERR_DIGEST_INVALID_FORMAT)
    return Named(named.domain, named.path, named.tag, digest)


def trim_named(ref: Named) -> Named:
    """Go's TrimNamed: the name only, without tag or digest."""
    return Named(ref.domain, ref.path)


def is_name_only(ref: Named) -> bool:
    """Go's IsNameOnly: neither a tag nor a digest."""
    return ref.tag is None and ref.digest is None


def tag_name_only(ref: Named) -> Named:
    """Go's TagNameOnly: adds the `latest` tag to a name-only reference."""
    return with_tag(ref, DEFAULT_TAG) if is_name_only(ref) else ref


# --- Familiar forms and matching ---


def _familiarize(ref: Named) -> Named:
    domain, path = ref.domain, ref.path
    if domain == DEFAULT_DOMAIN:
        domain = ""
        # Go strips `library/` only when no further namespace follows it.
        if path.startswith(OFFICIAL_REPO_PREFIX):
            rest = path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in rest:
                path = rest
    return Named(domain, path, ref.tag, ref.digest)


def familiar_name(ref: Named) -> str:
    """Go's FamiliarName: `ubuntu` for `docker.io/library/ubuntu:22.04`."""
    return _familiarize(ref).name


def familiar_string(ref: Named | DigestReference) -> str:
    """Go's FamiliarString: the familiar name plus `:tag` and/or `@digest`."""
    if isinstance(ref, DigestReference):
        return str(ref)
    return str(_familiarize(ref))


def familiar_match(pattern: str, ref: Named | DigestReference) -> bool:
    """Go's FamiliarMatch: path_match on FamiliarString, then on FamiliarName.

    Raises BadPattern for a malformed pattern (Go reports only the first match's error;
    a malformed pattern fails on every name, so raising at once loses nothing).
    """
    if path_match(pattern, familiar_string(ref)):
        return True
    if isinstance(ref, Named):
        return path_match(pattern, familiar_name(ref))
    return False


def reference_filter_match(pattern: str, ref: Named) -> bool:
    """The image-list `reference` filter of docker >= v29.5.0 for one stored reference.

    True if `pattern` path-matches FamiliarString, FamiliarName, TagNameOnly(ref).String() or
    Name(). Raises BadPattern for a malformed pattern.
    """
    targets = (familiar_string(ref), familiar_name(ref), str(tag_name_only(ref)), ref.name)
    return any(path_match(pattern, target) for target in targets)

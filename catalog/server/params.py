"""Request parameters, parsed as moby's httputils parses them: booleans, platforms,
filters and the tag a request names."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from catalog.docker.filters import FilterArgs, filters_from_json
from catalog.docker.jsontext import JSONTextError, decode_json
from catalog.domain.platform import Platform
from catalog.domain.reference import familiar_name, parse_normalized_named, tag_name_only, with_tag
from catalog.errors import InvalidArgument, InvalidReference
from catalog.server.versions import ApiVersion
from catalog.services.tag import AMBIGUOUS_NAME


def bool_value(params: QueryParams, key: str) -> bool:
    """httputils.BoolValue: false for "", 0, no, false, none (any case); true otherwise."""
    value = params.get(key, "").strip().lower()
    return value not in ("", "0", "no", "false", "none")


def bool_value_or_default(params: QueryParams, key: str, default: bool) -> bool:
    return bool_value(params, key) if key in params else default


def parse_go_bool(value: str) -> bool | None:
    """strconv.ParseBool; None when it does not parse."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def decode_platform(text: str) -> Platform:
    """httputils.DecodePlatform: a JSON OCI platform with both os and architecture."""
    try:
        document = decode_json(text)
    except JSONTextError as exc:
        raise InvalidArgument(f"failed to parse platform: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("failed to parse platform: not a JSON object")
    os_name = document.get("os") or ""
    architecture = document.get("architecture") or ""
    variant = document.get("variant") or ""
    if not all(isinstance(v, str) for v in (os_name, architecture, variant)):
        raise InvalidArgument("failed to parse platform: fields must be strings")
    optional = variant or document.get("os.version") or document.get("os.features")
    if not os_name and not architecture and optional:
        raise InvalidArgument(
            "optional platform fields provided, but OS and Architecture are missing"
        )
    if not os_name or not architecture:
        raise InvalidArgument("both OS and Architecture must be provided")
    return Platform(os_name, architecture, variant or None)


def platforms_param(params: QueryParams, version: ApiVersion, key: str) -> list[Platform]:
    """The `platform` values of load and save (API >= 1.48, several from 1.52)."""
    if version.before("1.48"):
        return []
    values = [v for v in params.getlist(key) if v]
    if version.before("1.52") and len(values) > 1:
        raise InvalidArgument(
            "multiple platform parameters are not supported in this API version; "
            "use API version 1.52 or later"
        )
    return [decode_platform(value) for value in values]


def filters_param(params: QueryParams) -> FilterArgs:
    return filters_from_json(params.get("filters", ""))


def repo_tag_reference(repo: str, tag: str) -> str | None:
    """httputils.RepoTagReference: the full tag reference `repo` and `tag` name, or None
    for an empty `repo` (the daemon then answers a bare 200 and does nothing)."""
    if not repo:
        return None
    named = parse_normalized_named(repo)
    if named.digest is not None:
        raise InvalidReference("cannot import digest reference")
    named = with_tag(named, tag) if tag else tag_name_only(named)
    if familiar_name(named) == "sha256":
        raise InvalidReference(AMBIGUOUS_NAME)
    return str(named)

"""An image's config JSON: parsed and checked, never re-serialized (its bytes are its ID).

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from catalog.docker.gotime import EARLIEST, LATEST
from catalog.docker.jsontext import JSONTextError, decode_json, or_empty
from catalog.domain.digest import image_id, is_sha256_digest
from catalog.errors import InvalidArchive

# containers/image caps configs at 4 MiB; so do we.
MAX_CONFIG_BYTES = 4 << 20
# moby's maxLayerDepth.
MAX_LAYERS = 125

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})\Z"
)


class TimestampOutOfRange(ValueError):
    """A valid RFC 3339 time that a datetime cannot hold (see parse_timestamp)."""


def parse_timestamp(value: object, *, clamp: bool = True) -> datetime | None:
    """An RFC 3339 time as Go writes it, to microseconds; Go's zero time means unknown.

    Go's times reach far beyond a datetime's years 1 to 9999: an instant outside them
    (`9999-12-31T23:00:00-05:00`, year 0) is the nearest end of that range with `clamp`
    (docs/differences.md §3), else a ValueError.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"].upper()
    date = match["date"]
    # Year 0 exists for Go, not for datetime: check the rest of it in another leap year.
    year_zero = date.startswith("0000")
    parsed = datetime.fromisoformat(
        f"{'2000' + date[4:] if year_zero else date}T{match['time']}.{fraction}"
        f"{'+00:00' if zone == 'Z' else zone}"
    )
    if not year_zero and parsed.year == 1 and parsed.replace(tzinfo=None) == datetime(1, 1, 1):
        return None
    try:
        if year_zero:
            raise OverflowError
        return parsed.astimezone(UTC)
    except OverflowError:
        if not clamp:
            raise TimestampOutOfRange(f"{value!r} is outside years 1 to 9999 in UTC") from None
        return EARLIEST if year_zero or parsed.year == 1 else LATEST


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with nanoseconds trimmed as Go's RFC3339Nano does."""
    base = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{value.microsecond:06d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


@dataclass(frozen=True)
class HistoryEntry:
    created: datetime | None
    created_by: str | None
    author: str | None
    comment: str | None
    empty_layer: bool


@dataclass(frozen=True)
class ImageConfig:
    """The facts catalog keeps in columns; the whole document stays in `raw`."""

    raw: bytes
    document: dict[str, Any] = field(repr=False)
    id: str
    created: datetime | None
    created_text: str | None
    os: str
    architecture: str
    variant: str | None
    author: str | None
    comment: str | None
    labels: dict[str, str]
    diff_ids: list[str]
    history: list[HistoryEntry]


def _optional_str(document: dict[str, Any], key: str, where: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArchive(f"invalid image config: {where}{key} must be a string")
    return value


def parse_config(raw: bytes) -> ImageConfig:
    """Parse and check config bytes; raise InvalidArchive with a one-line reason."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise InvalidArchive(f"image config is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = decode_json(raw)
    except JSONTextError as exc:
        raise InvalidArchive(f"invalid image config: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidArchive("invalid image config: not a JSON object")

    rootfs = document.get("rootfs")
    if not isinstance(rootfs, dict):
        raise InvalidArchive("invalid image config: no rootfs")
    if rootfs.get("type") != "layers":
        raise InvalidArchive(f"invalid image config: rootfs type {rootfs.get('type')!r}")
    diff_ids = or_empty(rootfs.get("diff_ids"), [])
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and is_sha256_digest(d) for d in diff_ids
    ):
        raise InvalidArchive("invalid image config: rootfs.diff_ids must be sha256 digests")
    if len(diff_ids) > MAX_LAYERS:
        raise InvalidArchive(f"image has {len(diff_ids)} layers, more than {MAX_LAYERS}")

    container_config = or_empty(document.get("config"), {})
    if not isinstance(container_config, dict):
        raise InvalidArchive("invalid image config: config must be an object")
    labels = or_empty(container_config.get("Labels"), {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise InvalidArchive("invalid image config: labels must map strings to strings")

    history: list[HistoryEntry] = []
    raw_history = or_empty(document.get("history"), [])
    if not isinstance(raw_history, list):
        raise InvalidArchive("invalid image config: history must be a list")
    for position, entry in enumerate(raw_history):
        if not isinstance(entry, dict):
            raise InvalidArchive("invalid image config: history entries must be objects")
        where = f"history[{position}]."
        try:
            created = parse_timestamp(entry.get("created"))
        except ValueError as exc:
            raise InvalidArchive(f"invalid image config: {where}created: {exc}") from None
        history.append(
            HistoryEntry(
                created=created,
                created_by=_optional_str(entry, "created_by", where),
                author=_optional_str(entry, "author", where),
                comment=_optional_str(entry, "comment", where),
                empty_layer=bool(entry.get("empty_layer", False)),
            )
        )
    if sum(not h.empty_layer for h in history) > len(diff_ids):
        # moby image.Store.Create refuses these.
        raise InvalidArchive("too many non-empty layers in History section")

    created_text = _optional_str(document, "created", "")
    try:
        created = parse_timestamp(created_text)
    except ValueError as exc:
        raise InvalidArchive(f"invalid image config: created: {exc}") from None

    return ImageConfig(
        raw=raw,
        document=document,
        id=image_id(raw),
        created=created,
        created_text=created_text if created is not None else None,
        os=_optional_str(document, "os", "") or "",
        architecture=_optional_str(document, "architecture", "") or "",
        variant=_optional_str(document, "variant", "") or None,
        author=_optional_str(document, "author", "") or None,
        comment=_optional_str(document, "comment", "") or None,
        labels=dict(labels),
        diff_ids=list(diff_ids),
        history=history,
    )


# moby's empty layer: the DiffID of a tar of 1024 NUL bytes; Python pads to 10240.
EMPTY_LAYER_DIFF_IDS = frozenset(
    {
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
        "sha256:84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652",
    }
)


# moby's DockerOCIImageConfig: the OCI image config's fields, then Docker's extensions, in
# the order Go marshals them; every one `omitempty`. Image inspect shows `Config` typed
# as this, so other keys a config holds (old builders' container-config keys: Hostname,
# AttachStdin, Image, ...) never show.
IMAGE_CONFIG_FIELDS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "Healthcheck",
    "OnBuild",
    "Shell",
)
# docker-image-spec HealthcheckConfig, every field `omitempty`.
HEALTHCHECK_FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")
# Fields that are Go sets (map[string]struct{}): whatever a value held, it marshals as {}.
_SET_FIELDS = frozenset({"ExposedPorts", "Volumes"})


def _go_fields(document: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The keys of `document` that name `fields` as Go's encoding/json matches them
    (exactly, else case-insensitively; the last of several wins), empty ones left out."""
    folded = {name.lower(): name for name in reversed(fields)}
    found: dict[str, Any] = {}
    for key, value in document.items():
        name = key if key in fields else folded.get(key.lower())
        if name is not None:
            found[name] = value
    return {
        name: found[name] for name in fields if found.get(name) not in (None, "", False, 0, [], {})
    }


def typed_image_config(config: object) -> dict[str, Any]:
    """An image config's `config` object as moby's image inspect shows it (API 1.52):
    only DockerOCIImageConfig's fields, empty ones omitted; `{}` when there is none."""
    if not isinstance(config, dict):
        return {}
    typed = _go_fields(config, IMAGE_CONFIG_FIELDS)
    for name in _SET_FIELDS & typed.keys():
        if isinstance(typed[name], dict):
            typed[name] = {key: {} for key in typed[name]}
    healthcheck = typed.get("Healthcheck")
    if isinstance(healthcheck, dict):
        typed["Healthcheck"] = _go_fields(healthcheck, HEALTHCHECK_FIELDS)
    return typed

"""The Engine API's JSON documents, shaped by the API version a client asked for.

Each function takes what a service returned (as plain data) and gives the document moby's
router would send at that version (docs/engine-api.md §4): placeholders
below 1.43, `VirtualSize` below 1.44, `Containers: -1` below 1.51, the legacy and 1.52
`/system/df` shapes. Pure: no SQLAlchemy, no Starlette.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from catalog import __version__
from catalog.docker.gojson import go_json_text
from catalog.domain.imageconfig import format_timestamp
from catalog.server.versions import API_VERSION, MIN_API_VERSION, ApiVersion

ENGINE_NAME = "catalog"
OS_TYPE = "linux"
NONE_TAG = "<none>:<none>"
NONE_DIGEST = "<none>@<none>"

# moby legacyConfigFields (daemon/server/router/image/inspect_response.go): image-config
# keys older API versions always carried, empty, whatever the image's config held.
LEGACY_CONFIG_V1_49: dict[str, Any] = {
    "AttachStderr": False,
    "AttachStdin": False,
    "AttachStdout": False,
    "Cmd": None,
    "Domainname": "",
    "Entrypoint": None,
    "Env": None,
    "Hostname": "",
    "Image": "",
    "Labels": None,
    "OnBuild": None,
    "OpenStdin": False,
    "StdinOnce": False,
    "Tty": False,
    "User": "",
    "Volumes": None,
    "WorkingDir": "",
}
LEGACY_CONFIG_V1_50_51: dict[str, Any] = {
    "Cmd": None,
    "Entrypoint": None,
    "Env": None,
    "Labels": None,
    "OnBuild": None,
    "User": "",
    "Volumes": None,
    "WorkingDir": "",
}
# What catalog is, where moby names its storage driver (image inspect below 1.52; from
# 1.52 moby leaves GraphDriver out unless a graph driver is in use, and so does catalog).
# `Data` is an empty map, not null: the schemas say it is a non-nullable object.
GRAPH_DRIVER: dict[str, Any] = {"Name": ENGINE_NAME, "Data": {}}

# Go's runtime.GOARCH for Python's platform.machine().
_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def go_json(document: Any, *, sort_keys: bool = False) -> bytes:
    """JSON as Go's encoding/json writes it: compact, UTF-8, `<`, `>` and `&` escaped,
    and a trailing newline (httputils.WriteJSON). With `sort_keys`, every object's keys
    are sorted, as when moby re-encodes a document through a map (compat.Wrap)."""
    return (go_json_text(document, sort_keys=sort_keys) + "\n").encode()


def go_arch() -> str:
    machine = platform.machine().lower()
    return _GO_ARCH.get(machine, machine)


def _sorted_labels(labels: Mapping[str, str] | None) -> dict[str, str] | None:
    # A Go map is always encoded with its keys sorted.
    return None if labels is None else dict(sorted(labels.items()))


# --- GET /images/json and the images of /system/df --------------------------------


def image_summary(summary: Mapping[str, Any], version: ApiVersion) -> dict[str, Any]:
    """One ImageSummary (from `ImageSummary.to_api()`) at `version` (moby getImagesJSON)."""
    document = dict(summary)
    document["Labels"] = _sorted_labels(document.get("Labels"))
    if version.before("1.43"):
        if not document["RepoTags"] and not document["RepoDigests"]:
            document["RepoTags"] = [NONE_TAG]
            document["RepoDigests"] = [NONE_DIGEST]
        else:
            # Go's nil slices stayed nil before 1.43: empty lists were null.
            document["RepoTags"] = document["RepoTags"] or None
            document["RepoDigests"] = document["RepoDigests"] or None
    if version.before("1.51"):
        document["Containers"] = -1
    if version.before("1.44"):
        document["VirtualSize"] = document["Size"]
        document = dict(sorted(document.items()))
    return document


def _df_image(summary: Mapping[str, Any], version: ApiVersion) -> dict[str, Any]:
    # /system/df keeps real container counts at every version, and no placeholders.
    document = dict(summary)
    document["Labels"] = _sorted_labels(document.get("Labels"))
    if version.before("1.44"):
        document["VirtualSize"] = document["Size"]
        document = dict(sorted(document.items()))
    return document


# --- GET /images/{name}/json ---------------------------------------------------------


def image_inspect(document: Mapping[str, Any], version: ApiVersion) -> tuple[dict[str, Any], bool]:
    """An ImageInspect document (the service's shape, `Config` typed as API 1.52 shows it)
    at `version` (moby getImagesByName), and whether its keys go out sorted: moby
    re-encodes it through a map (compat.Wrap) whenever it adds fields."""
    result = dict(document)
    config = result.get("Config")
    typed: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
    if version.before("1.52"):
        # compat.WithExtraFields: the legacy keys are added where missing or null.
        legacy = LEGACY_CONFIG_V1_49 if version.before("1.50") else LEGACY_CONFIG_V1_50_51
        for key, value in legacy.items():
            if typed.get(key) is None:
                typed[key] = value
        result["GraphDriver"] = dict(GRAPH_DRIVER)
    result["Config"] = typed
    if version.before("1.44"):
        result["VirtualSize"] = result.get("Size", 0)
        result.setdefault("Created", "0001-01-01T00:00:00Z")
    if version.before("1.45"):
        result["Container"] = ""
        result["ContainerConfig"] = {}
    if version.before("1.52"):
        return result, True
    # omitempty from 1.52 on; Parent and DockerVersion, when set, are added back through
    # compat.Wrap, which sorts the keys.
    for key in ("Parent", "Comment", "DockerVersion", "Author"):
        if result.get(key) == "":
            del result[key]
    return result, "Parent" in result or "DockerVersion" in result


# --- GET /system/df --------------------------------------------------------------------

DF_TYPES = ("container", "image", "volume", "build-cache")


def _omit_zero(document: Mapping[str, Any]) -> dict[str, Any]:
    """Go's `omitempty` on numbers and slices."""
    return {k: v for k, v in document.items() if v not in (0, None) and v != []}


def disk_usage(
    *,
    version: ApiVersion,
    types: Sequence[str],
    verbose: bool | None,
    images: Sequence[Mapping[str, Any]] | None,
    layers_size: int,
    image_active: int,
    image_reclaimable: int,
    containers: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The `/system/df` document (moby getDiskUsage, docs/engine-api.md §4.3).

    Below 1.52, or at 1.52 without `verbose`, the legacy fields (`LayersSize`, `Images`,
    `Containers`, `Volumes`) are sent; from 1.52 the `...Usage` objects too, with their
    `Items` only when `verbose` is true. `types` are the kinds asked for (all when
    empty); `images` and `containers` are None when not asked for.
    """
    items = None if images is None else [_df_image(image, version) for image in images]
    return _disk_usage(
        version=version,
        types=types,
        verbose=verbose,
        items=items,
        image_count=len(items or ()),
        layers_size=layers_size,
        image_active=image_active,
        image_reclaimable=image_reclaimable,
        containers=None if containers is None else list(containers),
        container_count=len(containers or ()),
        container_running=sum(1 for c in containers or () if c.get("State") == "running"),
    )


# Where the image and container items go in a streamed `/system/df` (`disk_usage_pieces`).
_ITEMS = "\x00image items\x00"
_CONTAINER_ITEMS = "\x00container items\x00"


def disk_usage_pieces(
    *,
    version: ApiVersion,
    types: Sequence[str],
    verbose: bool | None,
    image_count: int | None,
    image_items: Callable[[], Iterator[str]],
    layers_size: int,
    image_active: int,
    image_reclaimable: int,
    containers: Sequence[Mapping[str, Any]] | None = None,
    container_count: int | None = None,
    container_running: int = 0,
    container_items: Callable[[], Iterator[str]] | None = None,
) -> Iterator[str]:
    """The document `disk_usage` gives, as text in pieces, its image items written as
    `image_items()` makes them (JSON texts in this version's df shape, commas between):
    the same bytes, never all in memory. `image_count` is None when images were not
    asked for.

    The containers are either `containers` (documents), or, streamed the same way,
    `container_count` of them (None when not asked for), `container_running` of those
    running, written by `container_items()` (ContainerSummary JSON texts, commas between)."""
    items = None if image_count is None else ([_ITEMS] if image_count else [])
    listed: list[Any] | None
    if container_items is None:
        listed = None if containers is None else list(containers)
        container_count = len(listed or ())
        container_running = sum(1 for c in listed or () if c.get("State") == "running")
    else:
        listed = (
            None if container_count is None else ([_CONTAINER_ITEMS] if container_count else [])
        )
    document = _disk_usage(
        version=version,
        types=types,
        verbose=verbose,
        items=items,
        image_count=image_count or 0,
        layers_size=layers_size,
        image_active=image_active,
        image_reclaimable=image_reclaimable,
        containers=listed,
        container_count=container_count or 0,
        container_running=container_running,
    )
    rest = go_json_text(document)
    # The images come before the containers in the document, each at most once.
    for marker, produce in ((_ITEMS, image_items), (_CONTAINER_ITEMS, container_items)):
        before, found, rest = rest.partition(go_json_text(marker))
        if found:
            assert produce is not None
            yield before
            yield from produce()
        else:
            rest = before
    yield rest + "\n"


def _disk_usage(
    *,
    version: ApiVersion,
    types: Sequence[str],
    verbose: bool | None,
    items: list[Any] | None,
    image_count: int,
    layers_size: int,
    image_active: int,
    image_reclaimable: int,
    containers: list[Any] | None,
    container_count: int,
    container_running: int,
) -> dict[str, Any]:
    legacy = version.before("1.52") or verbose is None
    with_items = bool(verbose) and not legacy
    new = version.at_least("1.52")
    wanted = set(types) if types else {"container", "image", "volume"}
    document: dict[str, Any] = {}
    if "image" in wanted and items is not None:
        if legacy:
            document["LayersSize"] = layers_size
            document["Images"] = items
        if new:
            usage = _omit_zero(
                {
                    "ActiveCount": image_active,
                    "Reclaimable": image_reclaimable,
                    "TotalCount": image_count,
                    "TotalSize": layers_size,
                }
            )
            if with_items and items:
                usage["Items"] = items
            document["ImageUsage"] = usage
    if "container" in wanted and containers is not None:
        if legacy:
            document["Containers"] = containers
        if new:
            usage = _omit_zero({"ActiveCount": container_running, "TotalCount": container_count})
            if with_items and containers:
                usage["Items"] = containers
            document["ContainerUsage"] = usage
    if "volume" in wanted:
        if legacy:
            document["Volumes"] = []
        if new:
            document["VolumeUsage"] = {}
    if "build-cache" in wanted:
        if legacy:
            document["BuildCache"] = []
        if new:
            document["BuildCacheUsage"] = {}
    return document


# --- /version, /info, /_ping -----------------------------------------------------------


def engine_version(kernel: str | None = None) -> dict[str, Any]:
    """`GET /version`: catalog as the Engine component (docs/engine-api.md §4.5)."""
    kernel = kernel if kernel is not None else platform.release()
    runtime = f"python{platform.python_version()}"
    arch = go_arch()
    return {
        "Platform": {"Name": ENGINE_NAME},
        "Components": [
            {
                "Name": "Engine",
                "Version": __version__,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "Arch": arch,
                    "BuildTime": "",
                    "Experimental": "false",
                    "GitCommit": "",
                    "GoVersion": runtime,
                    "KernelVersion": kernel,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": OS_TYPE,
                },
            }
        ],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": runtime,
        "Os": OS_TYPE,
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    }


def engine_info(
    *, images: int, containers: int, running: int, name: str, cpus: int
) -> dict[str, Any]:
    """A small `GET /info`: enough for `docker info` and for `docker inspect` to finish."""
    return {
        "ID": "",
        "Containers": containers,
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": containers - running,
        "Images": images,
        "Driver": ENGINE_NAME,
        "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": [], "Authorization": [], "Log": []},
        "MemoryLimit": False,
        "SwapLimit": False,
        "NCPU": cpus,
        "MemTotal": 0,
        "KernelVersion": platform.release(),
        "OperatingSystem": f"{ENGINE_NAME} {__version__} (Python {sys.version.split()[0]})",
        "OSType": OS_TYPE,
        "Architecture": platform.machine(),
        "Name": name,
        "ServerVersion": __version__,
        "ExperimentalBuild": False,
        "Labels": [],
        "Warnings": None,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
    }


def common_headers() -> dict[str, str]:
    """Headers of every response (moby's version and experimental middlewares)."""
    return {
        "Api-Version": API_VERSION,
        "Ostype": OS_TYPE,
        "Docker-Experimental": "false",
        "Server": f"{ENGINE_NAME}/{__version__} ({OS_TYPE})",
    }


def ping_headers() -> dict[str, str]:
    """pingHandler's own headers (no BuildKit here: the classic builder's version)."""
    return {
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
        "Builder-Version": "1",
        "Swarm": "inactive",
    }


# --- JSON message streams (/images/load) ----------------------------------------------


def stream_message(text: str) -> bytes:
    """A `{"stream": ...}` message as moby's streamformatter writes it."""
    return _message({"stream": text})


def error_message(text: str) -> bytes:
    """streamformatter.FormatError: both keys, for the docker CLI and for docker-py."""
    return _message({"errorDetail": {"message": text}, "error": text})


def progress_message(layer: str, current: int, total: int) -> bytes:
    """A `Loading layer` progress message, drawn by the docker CLI on a terminal."""
    width = 50
    filled = width * current // total if total > 0 else width
    bar = (
        "["
        + "=" * max(filled - 1, 0)
        + (">" if filled < width else "=")
        + " " * (width - filled)
        + "]"
    )
    return _message(
        {
            "status": "Loading layer",
            "progressDetail": {"current": current, "total": total},
            "progress": f"{bar}  {current}B/{total}B",
            "id": layer,
        }
    )


def _message(document: Mapping[str, Any]) -> bytes:
    return go_json(document).rstrip(b"\n") + b"\r\n"


def prune_report(records: Iterable[Mapping[str, str]], space_reclaimed: int) -> dict[str, Any]:
    """ImagesPruneReport: `ImagesDeleted` null when nothing went."""
    deleted = [dict(record) for record in records]
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": space_reclaimed}


# --- catalog's reports -------------------------------------------------------------------


def _report_value(kind: str, value: Any) -> Any:
    """A report cell as JSON keeps it: exact (full IDs, byte counts, RFC 3339 times)."""
    if value is None:
        return None
    if kind == "time":
        assert isinstance(value, datetime)
        return format_timestamp(value)
    if kind == "flag":
        return bool(value)
    if kind in ("count", "bytes"):
        return int(value)
    return value


def report_description(report: Any) -> dict[str, Any]:
    """A report of catalog.services.reports: what it shows, its options (as query
    parameters, with their defaults) and its columns."""
    return {
        "name": report.name,
        "title": report.title,
        "summary": report.summary,
        "description": report.description,
        "options": {name: getattr(report.defaults, name) for name in report.options},
        "columns": [
            {"name": c.name, "title": c.title, "kind": c.kind, "description": c.description}
            for c in report.columns
        ],
    }


def report_result(result: Any) -> dict[str, Any]:
    """One report's rows (a ReportResult) with the options it ran with."""
    columns = result.report.columns
    settings = result.settings
    return {
        "report": result.report.name,
        "settings": {
            "older_than": settings.older_than,
            "cutoff": format_timestamp(settings.cutoff) if settings.cutoff else None,
            "max_tags": settings.max_tags or None,
            "period": settings.period,
            "limit": settings.limit or None,
        },
        "columns": [c.name for c in columns],
        "rows": [
            {c.name: _report_value(c.kind, row[c.name]) for c in columns} for row in result.rows
        ],
    }

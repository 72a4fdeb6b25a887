"""The Engine API's container documents, shaped by the API version asked for: the
ContainerSummary of `GET /containers/json` (and of `/system/df`) and the
ContainerInspectResponse of `GET /containers/{id}/json`, in moby's field order.

catalog records containers but runs none, so what only a running container has (a
process, mounts, networks, ports, a writable layer, log and hosts files) is empty or
zero, as moby shows it for a container that has none; the network mode is `none`.

Pure: no SQLAlchemy, no Starlette (the views come from catalog.services.container_listing).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from catalog.domain.imageconfig import format_timestamp
from catalog.server.documents import ENGINE_NAME, GRAPH_DRIVER
from catalog.server.versions import ApiVersion

if TYPE_CHECKING:
    from catalog.services.container_listing import ContainerDetails, ContainerView

# What catalog answers for every container-runtime endpoint (create, start, attach,
# wait, exec, logs, ...): the docker CLI prints it as it is.
NOT_RUN = "catalog records containers but does not run them"
# Go's zero time.Time in RFC 3339: a start or finish that never happened.
ZERO_TIME = "0001-01-01T00:00:00Z"
NETWORK_MODE = "none"
NO_HEALTHCHECK = "none"


def container_summary(view: ContainerView, version: ApiVersion, now: datetime) -> dict[str, Any]:
    """A container.Summary (moby view.go transform and getContainersJSON) at `version`:
    Health from 1.52; SizeRw and SizeRootFs only when non-zero (`omitempty`)."""
    document: dict[str, Any] = {
        "Id": view.id,
        "Names": ["/" + view.name],
        "Image": view.image,
        "ImageID": view.image_id,
        "Command": view.command,
        "Created": int(view.created.timestamp()),
        "Ports": [],
    }
    if view.size_root_fs:
        document["SizeRootFs"] = view.size_root_fs
    document["Labels"] = dict(sorted(view.labels.items()))  # a Go map: sorted keys
    document["State"] = view.state
    document["Status"] = view.status(now)
    document["HostConfig"] = {"NetworkMode": NETWORK_MODE}
    if version.at_least("1.52"):
        document["Health"] = {"Status": NO_HEALTHCHECK, "FailingStreak": 0}
    document["NetworkSettings"] = {"Networks": {}}
    document["Mounts"] = []
    return document


def _time(value: datetime | None) -> str:
    return format_timestamp(value) if value is not None else ZERO_TIME


def _config(details: ContainerDetails, version: ApiVersion) -> dict[str, Any]:
    """The container's Config (container.Config's field order): the image's config as
    `docker create` merged it in, with the container's own entrypoint, command, image
    name and labels."""
    view = details.view
    image = details.image_config or {}
    config: dict[str, Any] = {
        "Hostname": view.id[:12],
        "Domainname": "",
        "User": image.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
    }
    if image.get("ExposedPorts"):
        config["ExposedPorts"] = image["ExposedPorts"]
    config.update(
        {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "Env": image.get("Env"),
            "Cmd": view.cmd,
        }
    )
    if image.get("Healthcheck"):
        config["Healthcheck"] = image["Healthcheck"]
    config.update(
        {
            "Image": view.image_named,
            "Volumes": image.get("Volumes"),
            "WorkingDir": image.get("WorkingDir", ""),
            "Entrypoint": view.entrypoint,
        }
    )
    if version.before("1.52"):
        config["OnBuild"] = None  # omitted when empty from 1.52 (API changelog)
    config["Labels"] = dict(sorted(view.labels.items()))
    if image.get("StopSignal"):
        config["StopSignal"] = image["StopSignal"]
    return config


def container_inspect(
    details: ContainerDetails, version: ApiVersion, now: datetime
) -> dict[str, Any]:
    """A ContainerInspectResponse (moby daemon/inspect.go and getContainersByName) at
    `version`: GraphDriver (what catalog is) below 1.52, OnBuild null below 1.52."""
    del now  # the inspect document has times, not durations
    view = details.view
    document: dict[str, Any] = {
        "Id": view.id,
        "Created": format_timestamp(view.created),
        "Path": view.path,
        "Args": view.args,
        "State": {
            "Status": view.state,
            "Running": view.running,
            "Paused": view.state == "paused",
            "Restarting": view.state == "restarting",
            "OOMKilled": False,
            "Dead": view.state == "dead",
            "Pid": 0,
            "ExitCode": view.exit_code,
            "Error": "",
            "StartedAt": _time(view.started_at),
            "FinishedAt": _time(view.finished_at),
        },
        "Image": view.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": "/" + view.name,
        "RestartCount": 0,
        "Driver": ENGINE_NAME,
        "Platform": details.image_os,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {
            "NetworkMode": NETWORK_MODE,
            "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": False,
            "Privileged": False,
            "ReadonlyRootfs": False,
        },
    }
    if version.before("1.52"):
        document["GraphDriver"] = dict(GRAPH_DRIVER)
    if details.size_root_fs is not None:
        document["SizeRw"] = 0
        document["SizeRootFs"] = details.size_root_fs
    document["Mounts"] = []
    document["Config"] = _config(details, version)
    document["NetworkSettings"] = {
        "SandboxID": "",
        "SandboxKey": "",
        "Ports": {},
        "Networks": {},
    }
    return document

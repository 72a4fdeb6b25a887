"""Which registries may be reached without verified TLS, mirrors, and where certificates
are: docker's daemon settings, kept in `<root>/registries.json` with daemon.json's keys.

```json
{"insecure-registries": ["myregistry:5000", "10.0.0.0/8"],
 "registry-mirrors": ["https://mirror.example.com"],
 "certs-dir": "/etc/docker/certs.d"}
```

As in docker, 127.0.0.0/8 and ::1 are always insecure; a registry is insecure when it is
named (`host:port` or `host`) or when its host is, or resolves to, an address in an
insecure CIDR. Mirrors serve pulls from docker.io only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from catalog.docker.jsontext import JSONTextError, decode_json
from catalog.errors import CatalogError

SETTINGS_FILE = "registries.json"
DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")
# docker's default insecure CIDRs (registry.newServiceConfig).
LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_host(registry: str) -> str:
    """The host of `host[:port]` (IPv6 literals in brackets)."""
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    if registry.count(":") == 1:
        return registry.partition(":")[0]
    return registry


@dataclass(frozen=True)
class RegistrySettings:
    insecure_registries: tuple[str, ...] = ()
    insecure_networks: tuple[IpNetwork, ...] = ()
    mirrors: tuple[str, ...] = ()
    certs_dir: Path = DEFAULT_CERTS_DIR

    def with_insecure(self, registries: Iterable[str]) -> RegistrySettings:
        """These settings plus more insecure registries (`--insecure-registry`)."""
        names, networks = _split_insecure(registries)
        return RegistrySettings(
            insecure_registries=self.insecure_registries + names,
            insecure_networks=self.insecure_networks + networks,
            mirrors=self.mirrors,
            certs_dir=self.certs_dir,
        )

    def is_insecure(self, registry: str) -> bool:
        """docker's isSecureIndex, negated: named, or an address in an insecure CIDR."""
        if registry in self.insecure_registries or split_host(registry) in (
            self.insecure_registries
        ):
            return True
        networks = (*LOOPBACK_NETWORKS, *self.insecure_networks)
        for address in _addresses(split_host(registry)):
            if any(address.version == net.version and address in net for net in networks):
                return True
        return False


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    result = []
    for info in infos:
        try:
            result.append(ipaddress.ip_address(str(info[4][0]).partition("%")[0]))
        except ValueError:
            continue
    return result


def _split_insecure(values: Iterable[str]) -> tuple[tuple[str, ...], tuple[IpNetwork, ...]]:
    names: list[str] = []
    networks: list[IpNetwork] = []
    for value in values:
        value = value.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if not value:
            continue
        if "/" in value:
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
                continue
            except ValueError:
                raise CatalogError(f"invalid insecure registry CIDR {value!r}") from None
        names.append(value)
    return tuple(names), tuple(networks)


def _strings(document: dict[str, object], key: str, path: Path) -> Sequence[str]:
    value = document.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{path}: {key} must be a list of strings")
    return value


def load_settings(root: Path, insecure: Iterable[str] = ()) -> RegistrySettings:
    """The settings in `<root>/registries.json` (none if absent), plus `insecure`."""
    path = root / SETTINGS_FILE
    document: dict[str, object] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}") from None
    if text.strip():
        try:
            loaded = decode_json(text)
        except JSONTextError as exc:
            raise CatalogError(f"{path}: invalid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise CatalogError(f"{path}: expected a JSON object")
        document = loaded
    names, networks = _split_insecure(_strings(document, "insecure-registries", path))
    mirrors = tuple(m.rstrip("/") for m in _strings(document, "registry-mirrors", path))
    certs_dir = document.get("certs-dir")
    if certs_dir is not None and not isinstance(certs_dir, str):
        raise CatalogError(f"{path}: certs-dir must be a string")
    settings = RegistrySettings(
        insecure_registries=names,
        insecure_networks=networks,
        mirrors=mirrors,
        certs_dir=Path(certs_dir) if certs_dir else DEFAULT_CERTS_DIR,
    )
    return settings.with_insecure(insecure)


@dataclass(frozen=True)
class RegistryName:
    """Where a repository's registry is: `docker.io` is served by registry-1.docker.io,
    and its credentials are stored under docker's index URL."""

    domain: str  # as in the reference: docker.io, ghcr.io, 127.0.0.1:5000
    host: str = field(init=False)

    def __post_init__(self) -> None:
        host = "registry-1.docker.io" if self.domain == "docker.io" else self.domain
        object.__setattr__(self, "host", host)

    @property
    def is_docker_hub(self) -> bool:
        return self.domain == "docker.io"


DOCKER_HUB_INDEX = "https://index.docker.io/v1/"

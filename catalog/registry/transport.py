"""Which endpoints a registry gets, and their TLS, as docker decides it.

A secure registry: HTTPS only, verified against the system's CAs plus every `*.crt` in
`<certs-dir>/HOST:PORT/` (client certificates from its `*.cert` / `*.key` pairs), as
docker reads `/etc/docker/certs.d`. An insecure one: HTTPS without verification, then
plain HTTP if that fails (docker's lookupV2Endpoints). A mirror is tried before docker.io.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import CatalogError
from catalog.registry.settings import RegistryName, RegistrySettings


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a registry: a base URL and how to check its certificate."""

    base_url: str  # scheme://host[:port]
    tls: ssl.SSLContext | None  # None for plain HTTP
    verified: bool
    mirror: bool = False


def tls_context(certs_dir: Path, host: str, *, verify: bool) -> ssl.SSLContext:
    """The system CAs plus `certs_dir/host`'s CA and client certificates."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    directory = certs_dir / host
    try:
        entries = sorted(directory.iterdir()) if directory.is_dir() else []
    except OSError as exc:
        raise CatalogError(f"cannot read {directory}: {exc.strerror}") from None
    for entry in entries:
        try:
            if entry.suffix == ".crt":
                context.load_verify_locations(cafile=str(entry))
            elif entry.suffix == ".cert":
                key = entry.with_suffix(".key")
                if not key.is_file():
                    raise CatalogError(f"missing key {key.name} for client certificate {entry}")
                context.load_cert_chain(str(entry), str(key))
            elif entry.suffix == ".key" and not entry.with_suffix(".cert").is_file():
                raise CatalogError(f"missing client certificate {entry.stem}.cert for key {entry}")
        except (ssl.SSLError, OSError) as exc:
            raise CatalogError(f"cannot use {entry}: {exc}") from None
    return context


def endpoints(name: RegistryName, settings: RegistrySettings, *, pull: bool) -> list[Endpoint]:
    """The endpoints to try, in order, for the registry `name`."""
    result: list[Endpoint] = []
    if pull and name.is_docker_hub:
        for mirror in settings.mirrors:
            scheme, _, rest = mirror.partition("://")
            host = rest.split("/")[0] if rest else scheme
            secure = scheme != "http" and not settings.is_insecure(host)
            tls = tls_context(settings.certs_dir, host, verify=secure) if scheme != "http" else None
            base = mirror if "://" in mirror else f"https://{mirror}"
            result.append(Endpoint(base, tls, verified=secure, mirror=True))
    host = name.host
    if settings.is_insecure(name.domain):
        result.append(
            Endpoint(
                f"https://{host}",
                tls_context(settings.certs_dir, name.domain, verify=False),
                verified=False,
            )
        )
        result.append(Endpoint(f"http://{host}", None, verified=False))
    else:
        result.append(
            Endpoint(
                f"https://{host}",
                tls_context(settings.certs_dir, name.domain, verify=True),
                verified=True,
            )
        )
    return result

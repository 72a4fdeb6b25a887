"""docker's registry rules, without a registry: which registries are insecure, the
endpoints (mirrors first) each gets, challenges, credentials in config.json, and the
Engine API's X-Registry-Auth."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from catalog.domain.platform import Platform
from catalog.errors import CatalogError
from catalog.registry.auth import parse_challenges
from catalog.registry.credentials import (
    Credentials,
    DockerConfig,
    decode_registry_auth,
    normalize_server,
)
from catalog.registry.manifest import ImageIndex, choose_manifest, parse_manifest
from catalog.registry.settings import RegistryName, RegistrySettings, load_settings
from catalog.registry.transport import endpoints


@pytest.mark.parametrize(
    ("registry", "insecure"),
    [
        ("127.0.0.1:5000", True),
        ("127.8.9.10", True),
        ("[::1]:5000", True),
        ("10.1.2.3:5000", False),
        ("192.0.2.7:443", False),
        ("registry.lan:5000", True),  # named in the settings
        ("10.9.0.1:5000", True),  # in the named CIDR
    ],
)
def test_insecure_registries(tmp_path: Path, registry: str, insecure: bool) -> None:
    (tmp_path / "registries.json").write_text(
        json.dumps({"insecure-registries": ["registry.lan:5000", "10.9.0.0/16"]})
    )
    assert load_settings(tmp_path).is_insecure(registry) is insecure


def test_endpoints_follow_dockers_order(tmp_path: Path) -> None:
    settings = RegistrySettings(mirrors=("https://mirror.example.com",), certs_dir=tmp_path)
    hub = endpoints(RegistryName("docker.io"), settings, pull=True)
    assert [e.base_url for e in hub] == [
        "https://mirror.example.com",
        "https://registry-1.docker.io",
    ]
    assert [e.base_url for e in endpoints(RegistryName("docker.io"), settings, pull=False)] == [
        "https://registry-1.docker.io"
    ]
    secure = endpoints(RegistryName("10.1.2.3:5000"), settings, pull=True)
    assert [(e.base_url, e.verified) for e in secure] == [("https://10.1.2.3:5000", True)]
    local = endpoints(RegistryName("127.0.0.1:5000"), settings, pull=True)
    assert [(e.base_url, e.verified) for e in local] == [
        ("https://127.0.0.1:5000", False),
        ("http://127.0.0.1:5000", False),
    ]


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "registries.json").write_text('{"insecure-registries": "x"}')
    with pytest.raises(CatalogError, match="insecure-registries must be a list of strings"):
        load_settings(tmp_path)


def test_challenges() -> None:
    [bearer] = parse_challenges(
        ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
         'scope="repository:library/busybox:pull"']
    )  # fmt: skip
    assert bearer.scheme == "bearer"
    assert bearer.parameters == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }
    assert parse_challenges(['Basic realm="Registry Realm"'])[0].scheme == "basic"


def test_config_json_auths_and_writing(tmp_path: Path) -> None:
    pair = base64.b64encode(b"me:pa:ss").decode()
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {"https://index.docker.io/v1/": {"auth": pair}, "ghcr.io": {}},
                "psFormat": "table {{.ID}}",
            }
        )
    )
    config = DockerConfig(tmp_path)
    assert config.get("https://index.docker.io/v1/") == Credentials("me", "pa:ss")
    assert config.get("ghcr.io") is None
    config.store("registry.lan:5000", Credentials("u", "p"))
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["psFormat"] == "table {{.ID}}"
    assert written["auths"]["registry.lan:5000"] == {"auth": base64.b64encode(b"u:p").decode()}
    assert DockerConfig(tmp_path).erase("registry.lan:5000")
    assert "registry.lan:5000" not in json.loads((tmp_path / "config.json").read_text())["auths"]
    assert normalize_server("") == "https://index.docker.io/v1/"
    assert normalize_server("https://registry.lan:5000/v2/") == "registry.lan:5000"


def test_x_registry_auth() -> None:
    header = (
        base64.urlsafe_b64encode(
            json.dumps({"username": "me", "password": "pw", "serveraddress": "x"}).encode()
        )
        .decode()
        .rstrip("=")
    )
    assert decode_registry_auth(header) == Credentials("me", "pw")
    assert decode_registry_auth("") is None
    with pytest.raises(CatalogError, match="X-Registry-Auth"):
        decode_registry_auth("%%%")


def test_platform_choice_skips_attestations() -> None:
    def entry(arch: str, digest: str, **annotations: str) -> dict[str, object]:
        return {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + digest * 64,
            "size": 1,
            "platform": {"os": "linux", "architecture": arch},
            "annotations": annotations,
        }

    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                entry("amd64", "a", **{"vnd.docker.reference.type": "attestation-manifest"}),
                entry("arm64", "b"),
                entry("amd64", "c"),
            ],
        }
    ).encode()
    index = parse_manifest(raw, "", "x")
    assert isinstance(index, ImageIndex)
    assert choose_manifest(index, Platform("linux", "amd64"), "x").digest == "sha256:" + "c" * 64
    assert choose_manifest(index, Platform("linux", "aarch64"), "x").digest.endswith("b" * 64)

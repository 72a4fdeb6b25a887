"""Registry credentials where the docker CLI keeps them: `$DOCKER_CONFIG/config.json`
(`~/.docker/config.json`), its `auths`, and the `docker-credential-<name>` helpers that
`credsStore` and `credHelpers` name (the docker-credential-helpers protocol: the verb as
the argument, the server URL or a JSON document on stdin, JSON on stdout).

`catalog login` and `catalog logout` write the same file the docker CLI reads, keeping
every key they do not own, atomically and with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.docker.jsontext import JSONTextError, decode_json
from catalog.errors import CatalogError, InvalidArgument
from catalog.registry.settings import DOCKER_HUB_INDEX

CONFIG_FILE = "config.json"
HELPER_PREFIX = "docker-credential-"
# The helpers' answer when they hold nothing for a server.
NOT_FOUND = "credentials not found in native keychain"
# A username of this value means the secret is an identity (refresh) token.
TOKEN_USERNAME = "<token>"  # noqa: S105 - the helpers' marker, not a secret
HELPER_TIMEOUT = 60


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""
    # A bearer token to send as it is (X-Registry-Auth's `registrytoken`).
    registry_token: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


def config_dir() -> Path:
    """`$DOCKER_CONFIG`, else `~/.docker`, as the docker CLI finds it."""
    configured = os.environ.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path.home() / ".docker"


def credentials_key(domain: str) -> str:
    """The key the docker CLI stores a registry's credentials under."""
    return DOCKER_HUB_INDEX if domain == "docker.io" else domain


def hostname_of(key: str) -> str:
    """docker's ConvertToHostname: `https://host/v1/` and `host/path` are `host`."""
    stripped = key.removeprefix("http://").removeprefix("https://")
    return stripped.split("/")[0]


def normalize_server(server: str) -> str:
    """The registry `catalog login SERVER` means, as its credentials key."""
    server = server.strip()
    if not server or hostname_of(server) in (
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
    ):
        return DOCKER_HUB_INDEX
    return hostname_of(server)


class DockerConfig:
    """The docker CLI's config.json, read once; `save()` writes it back whole."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / CONFIG_FILE
        self.document: dict[str, Any] = {}
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CatalogError(f"cannot read {self.path}: {exc.strerror}") from None
        if not text.strip():
            return
        try:
            loaded = decode_json(text)
        except JSONTextError as exc:
            raise CatalogError(f"{self.path}: invalid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise CatalogError(f"{self.path}: expected a JSON object")
        self.document = loaded

    @property
    def auths(self) -> dict[str, Any]:
        auths = self.document.get("auths")
        if not isinstance(auths, dict):
            auths = {}
            self.document["auths"] = auths
        return auths

    def helper_for(self, key: str) -> str | None:
        """The credential helper for `key`: `credHelpers[host]`, else `credsStore`."""
        helpers = self.document.get("credHelpers")
        if isinstance(helpers, dict):
            helper = helpers.get(hostname_of(key)) or helpers.get(key)
            if isinstance(helper, str) and helper:
                return helper
        store = self.document.get("credsStore")
        return store if isinstance(store, str) and store else None

    # --- reading ---

    def get(self, key: str) -> Credentials | None:
        helper = self.helper_for(key)
        if helper is not None:
            return helper_get(helper, key)
        return self._from_auths(key)

    def _from_auths(self, key: str) -> Credentials | None:
        auths = self.document.get("auths")
        if not isinstance(auths, dict):
            return None
        entry = auths.get(key)
        if entry is None:
            # docker's GetAuthConfig tries every key that names the same host.
            host = hostname_of(key)
            for candidate, value in auths.items():
                if hostname_of(candidate) == host:
                    entry = value
                    break
        if not isinstance(entry, dict):
            return None
        username = entry.get("username") or ""
        password = entry.get("password") or ""
        encoded = entry.get("auth") or ""
        if encoded:
            try:
                decoded = base64.b64decode(encoded, validate=False).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise CatalogError(f"{self.path}: invalid auth for {key}") from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise CatalogError(f"{self.path}: invalid auth for {key}")
        credentials = Credentials(
            username=str(username),
            password=str(password),
            identity_token=str(entry.get("identitytoken") or ""),
            registry_token=str(entry.get("registrytoken") or ""),
        )
        return None if credentials.empty else credentials

    # --- writing ---

    def store(self, key: str, credentials: Credentials) -> str:
        """Keep `credentials` for `key`: in its helper, else in `auths` (base64, as docker
        does). Returns where they went (for the warning docker prints)."""
        helper = self.helper_for(key)
        if helper is not None:
            helper_store(helper, key, credentials)
            # docker leaves an empty entry in auths so that `docker info` lists the login.
            self.auths[key] = {}
            self.save()
            return f"the {HELPER_PREFIX}{helper} helper"
        entry: dict[str, str] = {}
        if credentials.identity_token:
            entry["identitytoken"] = credentials.identity_token
        else:
            pair = f"{credentials.username}:{credentials.password}".encode()
            entry["auth"] = base64.b64encode(pair).decode()
        self.auths[key] = entry
        self.save()
        return str(self.path)

    def erase(self, key: str) -> bool:
        """Forget `key`'s credentials; False if there were none."""
        found = False
        host = hostname_of(key)
        helper = self.helper_for(key)
        if helper is not None:
            found = helper_erase(helper, key)
        auths = self.document.get("auths")
        if isinstance(auths, dict):
            for candidate in [c for c in auths if c == key or hostname_of(c) == host]:
                del auths[candidate]
                found = True
            self.save()
        return found

    def save(self) -> None:
        """Write the file atomically (a temporary file renamed over it), mode 0600."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".config.json.", dir=self.directory)
        except OSError as exc:
            raise CatalogError(f"cannot write {self.path}: {exc.strerror}") from None
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(self.document, file, indent="\t")
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise CatalogError(f"cannot write {self.path}: {exc.strerror}") from None


# --- the helper protocol ---


def _run_helper(helper: str, verb: str, payload: str) -> subprocess.CompletedProcess[str]:
    program = shutil.which(HELPER_PREFIX + helper)
    if program is None:
        raise CatalogError(
            f"credential helper {HELPER_PREFIX}{helper} not found on PATH "
            "(named by credsStore or credHelpers in the docker config)"
        )
    try:
        return subprocess.run(
            [program, verb],
            input=payload,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CatalogError(f"credential helper {HELPER_PREFIX}{helper} {verb}: {exc}") from None


def _helper_failure(helper: str, verb: str, result: subprocess.CompletedProcess[str]) -> str:
    reason = result.stdout.strip() or result.stderr.strip() or f"exit {result.returncode}"
    return f"credential helper {HELPER_PREFIX}{helper} {verb}: {reason.splitlines()[0]}"


def helper_get(helper: str, key: str) -> Credentials | None:
    result = _run_helper(helper, "get", key)
    if result.returncode != 0:
        if NOT_FOUND in result.stdout or NOT_FOUND in result.stderr:
            return None
        raise CatalogError(_helper_failure(helper, "get", result))
    try:
        document = decode_json(result.stdout)
    except JSONTextError:
        raise CatalogError(
            f"credential helper {HELPER_PREFIX}{helper} get: invalid JSON answer"
        ) from None
    if not isinstance(document, dict):
        raise CatalogError(f"credential helper {HELPER_PREFIX}{helper} get: invalid answer")
    username = str(document.get("Username") or "")
    secret = str(document.get("Secret") or "")
    if username == TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    credentials = Credentials(username=username, password=secret)
    return None if credentials.empty else credentials


def helper_store(helper: str, key: str, credentials: Credentials) -> None:
    if credentials.identity_token:
        username, secret = TOKEN_USERNAME, credentials.identity_token
    else:
        username, secret = credentials.username, credentials.password
    payload = json.dumps({"ServerURL": key, "Username": username, "Secret": secret})
    result = _run_helper(helper, "store", payload)
    if result.returncode != 0:
        raise CatalogError(_helper_failure(helper, "store", result))


def helper_erase(helper: str, key: str) -> bool:
    result = _run_helper(helper, "erase", key)
    if result.returncode != 0:
        if NOT_FOUND in result.stdout or NOT_FOUND in result.stderr:
            return False
        raise CatalogError(_helper_failure(helper, "erase", result))
    return True


def lookup(domain: str) -> Credentials | None:
    """The credentials the docker CLI would use for the registry `domain`."""
    return DockerConfig().get(credentials_key(domain))


def decode_registry_auth(header: str) -> Credentials | None:
    """The Engine API's `X-Registry-Auth`: base64url JSON of an AuthConfig (padding
    optional, standard base64 accepted too, as moby's DecodeAuthConfig is lenient)."""
    header = header.strip()
    if not header:
        return None
    padded = header + "=" * (-len(header) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
        document = decode_json(raw)
    except (binascii.Error, ValueError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64url JSON") from None
    if not isinstance(document, dict):
        return None
    username = str(document.get("username") or "")
    password = str(document.get("password") or "")
    encoded = str(document.get("auth") or "")
    if encoded and not username:
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("invalid X-Registry-Auth header: bad auth field") from None
    credentials = Credentials(
        username=username,
        password=password,
        identity_token=str(document.get("identitytoken") or ""),
        registry_token=str(document.get("registrytoken") or ""),
    )
    return None if credentials.empty else credentials

"""Authentication as docker does it: the registry's `WWW-Authenticate` challenge decides.

`Basic` sends the username and password on every request. `Bearer` asks the challenge's
realm for a token for the scopes a request needs (`repository:NAME:pull[,push]`), with
`service` and `account`, sending the credentials as HTTP basic (or an identity token as an
OAuth2 refresh token, as docker does after a login that returned one); anonymous when there
are none. Tokens are cached per set of scopes until they expire.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from catalog.registry.credentials import Credentials
from catalog.registry.errors import RegistryError, Unauthorized

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')
# docker's default when a token response says nothing (60 s, minimum).
DEFAULT_TOKEN_SECONDS = 60
CLIENT_ID = "catalog"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.parameters.get("realm", "")


def parse_challenges(header_values: Iterable[str]) -> list[Challenge]:
    """The challenges of `WWW-Authenticate` headers (one per header, as registries send)."""
    challenges = []
    for value in header_values:
        scheme, _, rest = value.strip().partition(" ")
        if not scheme:
            continue
        parameters: dict[str, str] = {}
        position = 0
        while position < len(rest):
            match = _PARAM.match(rest, position)
            if match is None:
                break
            quoted, bare = match.group(2), match.group(3)
            value_text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
            parameters[match.group(1).lower()] = value_text
            position = match.end()
        challenges.append(Challenge(scheme.lower(), parameters))
    return challenges


def basic_header(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def error_text(response: httpx.Response) -> str:
    """A registry's or token server's error body as docker prints it: `code: message`."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        errors = document.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = str(first.get("code") or "").lower().replace("_", " ")
            message = str(first.get("message") or "")
            return f"{code}: {message}" if code and message else code or message
        for key in ("details", "error_description", "error", "message"):
            if isinstance(document.get(key), str) and document[key]:
                return str(document[key])
    return f"{response.status_code} {response.reason_phrase}".strip()


class Authorizer:
    """The Authorization header for a registry's requests, from its challenge."""

    def __init__(
        self, http: httpx.Client, challenge: Challenge | None, credentials: Credentials | None
    ) -> None:
        self._http = http
        self.challenge = challenge
        self._credentials = credentials
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header(self, scopes: Iterable[str]) -> str | None:
        challenge = self.challenge
        credentials = self._credentials
        if credentials is not None and credentials.registry_token:
            return "Bearer " + credentials.registry_token
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if credentials is None or not credentials.username:
                return None
            return basic_header(credentials)
        if challenge.scheme != "bearer":
            return None
        key = tuple(sorted(set(scopes)))
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return "Bearer " + cached[0]
            token, lifetime = self._fetch_token(challenge, key)
            self._tokens[key] = (token, time.monotonic() + lifetime - 5)
        return "Bearer " + token

    def forget(self, scopes: Iterable[str], challenge: Challenge | None) -> None:
        """Drop a token the registry refused, and take its newer challenge."""
        with self._lock:
            self._tokens.pop(tuple(sorted(set(scopes))), None)
            if challenge is not None:
                self.challenge = challenge

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"the registry's token realm {realm!r} is not an http(s) URL")
        service = challenge.parameters.get("service", "")
        credentials = self._credentials
        try:
            if credentials is not None and credentials.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": credentials.identity_token,
                    "service": service,
                    "client_id": CLIENT_ID,
                    "scope": " ".join(scopes),
                }
                response = self._http.post(realm, data=form)
            else:
                params: list[tuple[str, str | int | float | bool | None]] = []
                if service:
                    params.append(("service", service))
                params.extend(("scope", scope) for scope in scopes)
                headers = {}
                if credentials is not None and credentials.username:
                    params.append(("account", credentials.username))
                    headers["Authorization"] = basic_header(credentials)
                response = self._http.get(realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"getting a token from {realm}: {exc}") from None
        if response.status_code in (401, 403):
            raise Unauthorized(f"unauthorized: {error_text(response)} (token from {realm})")
        if response.status_code != 200:
            raise RegistryError(f"getting a token from {realm}: {error_text(response)}")
        try:
            document = response.json()
        except ValueError:
            raise RegistryError(f"getting a token from {realm}: not JSON") from None
        token = (
            document.get("token") or document.get("access_token")
            if isinstance(document, dict)
            else None
        )
        if not isinstance(token, str) or not token:
            raise RegistryError(f"getting a token from {realm}: no token in the answer")
        lifetime = document.get("expires_in")
        seconds = (
            float(lifetime)
            if isinstance(lifetime, int | float) and lifetime >= DEFAULT_TOKEN_SECONDS
            else DEFAULT_TOKEN_SECONDS
        )
        return token, seconds

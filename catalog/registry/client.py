"""The registry HTTP API v2 over httpx: ping, manifests, blobs, uploads, mounts, tags.

One client per registry and operation. It pings `/v2/` on each endpoint in turn (docker's
order: see `transport`) and keeps the first that answers, with its authentication
challenge; every later request carries the Authorization header its scopes need. Blob
bytes stream: downloads are read in chunks, uploads are sent from an iterator.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from catalog import __version__
from catalog.registry.auth import Authorizer, Challenge, error_text, parse_challenges
from catalog.registry.credentials import Credentials
from catalog.registry.errors import (
    InsecureRefused,
    ManifestUnknown,
    RegistryError,
    Unauthorized,
)
from catalog.registry.manifest import ACCEPT
from catalog.registry.settings import RegistryName, RegistrySettings
from catalog.registry.transport import Endpoint, endpoints

USER_AGENT = f"catalog/{__version__}"
CONNECT_TIMEOUT = 30.0
# Between two reads of a response (a blob may take long in all, never this long silent).
READ_TIMEOUT = 120.0
DOWNLOAD_CHUNK = 1 << 20


def pull_scope(path: str) -> str:
    return f"repository:{path}:pull"


def push_scope(path: str) -> str:
    return f"repository:{path}:pull,push"


def transport_reason(exc: BaseException) -> str:
    """One line for a transport failure, in Go's words where docker users know them."""
    text = str(exc) or type(exc).__name__
    cause = exc.__context__ or exc.__cause__
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"tls: failed to verify certificate: {cause.verify_message}"
        cause = cause.__context__ or cause.__cause__
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return "http: server gave HTTP response to HTTPS client"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.rsplit("certificate verify failed:", 1)[-1].strip(" ()_")
        return f"tls: failed to verify certificate: {detail}"
    return text.splitlines()[0]


@dataclass(frozen=True)
class FetchedManifest:
    raw: bytes
    content_type: str
    # Docker-Content-Digest, as the registry stated it (absent on some registries).
    digest: str | None


class RegistryClient:
    """Requests to one registry, authenticated as its challenge asks."""

    def __init__(
        self,
        domain: str,
        settings: RegistrySettings,
        credentials: Credentials | None,
        *,
        pull: bool = True,
    ) -> None:
        self.name = RegistryName(domain)
        self.settings = settings
        self.credentials = credentials
        self._candidates = endpoints(self.name, settings, pull=pull)
        self._http: httpx.Client | None = None
        self.endpoint: Endpoint | None = None
        self._authorizer: Authorizer | None = None

    # --- connecting ---

    def _new_http(self, endpoint: Endpoint) -> httpx.Client:
        verify: ssl.SSLContext | bool = endpoint.tls if endpoint.tls is not None else False
        return httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )

    def connect(self) -> None:
        """Ping `/v2/` on each endpoint until one answers; keep it and its challenge."""
        if self._http is not None:
            return
        failures: list[str] = []
        for endpoint in self._candidates:
            http = self._new_http(endpoint)
            url = f"{endpoint.base_url}/v2/"
            try:
                response = http.get(url)
            except httpx.HTTPError as exc:
                http.close()
                failures.append(f'Get "{url}": {transport_reason(exc)}')
                continue
            if response.status_code not in (200, 401) and endpoint.mirror:
                http.close()
                failures.append(f'Get "{url}": {response.status_code}')
                continue
            challenges = parse_challenges(response.headers.get_list("www-authenticate"))
            challenge = _preferred(challenges)
            self._http, self.endpoint = http, endpoint
            self._authorizer = Authorizer(http, challenge, self.credentials)
            return
        message = failures[-1] if failures else f"no endpoint for {self.name.domain}"
        if not self.settings.is_insecure(self.name.domain) and "HTTP response" in message:
            raise InsecureRefused(
                f"{message} (plain HTTP is used only for insecure registries: "
                f"--insecure-registry {self.name.domain})"
            )
        raise RegistryError(message)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def http(self) -> httpx.Client:
        self.connect()
        assert self._http is not None
        return self._http

    def url(self, path: str) -> str:
        self.connect()
        assert self.endpoint is not None
        return urljoin(self.endpoint.base_url + "/", path.lstrip("/"))

    # --- requests ---

    def _headers(self, scopes: Iterable[str], headers: dict[str, str] | None) -> dict[str, str]:
        self.connect()
        assert self._authorizer is not None
        result = dict(headers or {})
        authorization = self._authorizer.header(scopes)
        if authorization is not None:
            result["Authorization"] = authorization
        return result

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Iterable[str],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """A request with a replayable body; retried once with a fresh token on a 401
        that brings a new challenge (a scope the first token lacked)."""
        scopes = tuple(scopes)
        for attempt in (0, 1):
            try:
                response = self.http.request(
                    method,
                    url,
                    headers=self._headers(scopes, headers),
                    content=content,
                    follow_redirects=follow_redirects,
                )
            except httpx.HTTPError as exc:
                raise RegistryError(f'{method} "{url}": {transport_reason(exc)}') from None
            if response.status_code != 401 or attempt:
                return response
            challenge = _preferred(parse_challenges(response.headers.get_list("www-authenticate")))
            if challenge is None or challenge.scheme != "bearer":
                return response
            assert self._authorizer is not None
            self._authorizer.forget(scopes, challenge)
        raise AssertionError("unreachable")

    @contextmanager
    def stream(
        self, method: str, url: str, *, scopes: Iterable[str], headers: dict[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (blobs); redirects followed."""
        try:
            request = self.http.build_request(method, url, headers=self._headers(scopes, headers))
            response = self.http.send(request, stream=True, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise RegistryError(f'{method} "{url}": {transport_reason(exc)}') from None
        try:
            yield response
        finally:
            response.close()

    # --- the API ---

    def get_manifest(self, path: str, reference: str, *, what: str) -> FetchedManifest:
        url = self.url(f"/v2/{path}/manifests/{reference}")
        response = self.request("GET", url, scopes=[pull_scope(path)], headers={"Accept": ACCEPT})
        if response.status_code == 404:
            raise ManifestUnknown(f"manifest for {what} not found: {error_text(response)}")
        check(response, what, pull=True)
        return FetchedManifest(
            raw=response.content,
            content_type=response.headers.get("content-type", ""),
            digest=response.headers.get("docker-content-digest"),
        )

    def blob_url(self, path: str, digest: str) -> str:
        return self.url(f"/v2/{path}/blobs/{digest}")

    def blob_exists(self, path: str, digest: str, *, scopes: Iterable[str]) -> int | None:
        """HEAD a blob: its size if the repository has it, else None."""
        response = self.request(
            "HEAD", self.blob_url(path, digest), scopes=scopes, follow_redirects=True
        )
        if response.status_code == 404:
            return None
        check(response, f"blob {digest}", pull=False)
        length = response.headers.get("content-length")
        return int(length) if length and length.isdigit() else 0

    def get_small_blob(self, path: str, digest: str, *, limit: int, what: str) -> bytes:
        """A blob read whole (a config), refused beyond `limit` bytes."""
        with self.stream("GET", self.blob_url(path, digest), scopes=[pull_scope(path)]) as response:
            check(response, what, pull=True)
            chunks = []
            size = 0
            try:
                for chunk in response.iter_raw(DOWNLOAD_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise RegistryError(f"{what}: larger than {limit} bytes")
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                raise RegistryError(f"{what}: {transport_reason(exc)}") from None
        return b"".join(chunks)

    def start_upload(
        self, path: str, *, mount: str | None = None, source: str | None = None
    ) -> tuple[bool, str | None]:
        """POST an upload; with `mount`/`source`, ask to mount the blob from another
        repository first. Returns (mounted, upload URL when not mounted)."""
        scopes = [push_scope(path)]
        query = ""
        if mount is not None and source is not None:
            scopes.append(pull_scope(source))
            query = f"?mount={mount}&from={source}"
        url = self.url(f"/v2/{path}/blobs/uploads/{query}")
        response = self.request("POST", url, scopes=scopes)
        if response.status_code == 201 and mount is not None:
            return True, None
        check(response, f"starting an upload to {path}", pull=False)
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"starting an upload to {path}: no Location in the answer")
        return False, urljoin(url, location)

    def upload(
        self, path: str, location: str, chunks: Iterable[bytes], digest_of: Callable[[], str]
    ) -> None:
        """PATCH `chunks` to the upload at `location` as one stream, then PUT it with the
        digest `digest_of()` gives once the stream has been read."""
        scopes = [push_scope(path)]
        headers = self._headers(scopes, {"Content-Type": "application/octet-stream"})
        try:
            response = self.http.request("PATCH", location, headers=headers, content=chunks)
        except httpx.HTTPError as exc:
            raise RegistryError(f'PATCH "{location}": {transport_reason(exc)}') from None
        check(response, f"uploading to {path}", pull=False)
        location = urljoin(location, response.headers.get("location") or location)
        separator = "&" if "?" in location else "?"
        response = self.request("PUT", f"{location}{separator}digest={digest_of()}", scopes=scopes)
        check(response, f"uploading to {path}", pull=False)

    def upload_bytes(self, path: str, data: bytes, digest: str) -> None:
        """A small blob (a config) in one POST then one PUT, as docker sends it."""
        _, location = self.start_upload(path)
        assert location is not None
        separator = "&" if "?" in location else "?"
        response = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            scopes=[push_scope(path)],
            headers={"Content-Type": "application/octet-stream"},
            content=data,
        )
        check(response, f"uploading {digest} to {path}", pull=False)

    def put_manifest(self, path: str, reference: str, raw: bytes, media_type: str) -> str | None:
        url = self.url(f"/v2/{path}/manifests/{reference}")
        response = self.request(
            "PUT", url, scopes=[push_scope(path)], headers={"Content-Type": media_type}, content=raw
        )
        check(response, f"putting the manifest of {path}:{reference}", pull=False)
        digest = response.headers.get("docker-content-digest")
        return str(digest) if digest else None

    def list_tags(self, path: str, *, what: str) -> list[str]:
        """Every tag of a repository, following `Link: <...>; rel="next"` pages."""
        url: str | None = self.url(f"/v2/{path}/tags/list")
        tags: list[str] = []
        pages = 0
        while url is not None and pages < 1000:
            pages += 1
            response = self.request("GET", url, scopes=[pull_scope(path)])
            if response.status_code == 404:
                raise ManifestUnknown(f"repository {what} not found: {error_text(response)}")
            check(response, what, pull=True)
            try:
                document = response.json()
            except ValueError:
                raise RegistryError(f"listing the tags of {what}: not JSON") from None
            page = document.get("tags") if isinstance(document, dict) else None
            tags.extend(t for t in page or [] if isinstance(t, str))
            following = response.links.get("next", {}).get("url")
            url = urljoin(url, following) if following else None
        return tags


def _preferred(challenges: list[Challenge]) -> Challenge | None:
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def check(response: httpx.Response, what: str, *, pull: bool) -> None:
    """Raise the registry's error for a failed response, one line naming `what`."""
    status = response.status_code
    if status < 400:
        return
    if not response.is_closed:
        response.read()
    text = error_text(response)
    if status == 401:
        if pull:
            raise Unauthorized(
                f"pull access denied for {what}, repository does not exist or may require "
                f"'docker login': {text}"
            )
        raise Unauthorized(f"{what}: {text}")
    if status == 403:
        raise Unauthorized(f"{what}: {text}")
    raise RegistryError(f"{what}: {text}")


def check_credentials(settings: RegistrySettings, domain: str, credentials: Credentials) -> None:
    """Ask the registry whether `credentials` are good, as the daemon's login does: an
    authenticated `GET /v2/` (with a token for no scope, when it asks for bearer)."""
    with RegistryClient(domain, settings, credentials) as client:
        response = client.request("GET", client.url("/v2/"), scopes=[])
        if response.status_code == 401:
            raise Unauthorized(f"login to {domain}: unauthorized: incorrect username or password")
        check(response, f"login to {domain}", pull=False)

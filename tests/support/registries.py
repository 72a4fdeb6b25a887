"""Real registries for tests: Debian's `docker-registry` (distribution 2.8) on a free
port, anonymous over HTTP, htpasswd basic auth over TLS (throwaway openssl certificates),
or token auth with a small token service run here; images put there with `skopeo copy`.

Also a TCP proxy that cuts one blob's response short, and a docker-credential helper
script speaking the helpers' protocol over a JSON file.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DOCKER_REGISTRY = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")
OPENSSL = shutil.which("openssl")
ENABLE = "install Debian's docker-registry, skopeo and openssl (see .ci/run)"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def outward_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (for a registry that docker's
    rules treat as secure), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.254", 9))  # no packet is sent
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith(("127.", "0.")) else address


def openssl(directory: Path, *args: str, stdin: bytes | None = None) -> bytes:
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *args], cwd=directory, input=stdin, capture_output=True, check=True
    )
    return result.stdout


@dataclass(frozen=True)
class ServerCertificate:
    ca: Path
    cert: Path
    key: Path


def server_certificate(directory: Path, address: str) -> ServerCertificate:
    """A throwaway CA and a server certificate for `address` (an IP), P-256, two days."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(directory, "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=catalog registry test CA")  # fmt: skip
    (directory / "server.ext").write_text(
        f"subjectAltName=IP:{address}\nextendedKeyUsage=serverAuth\n"
    )
    openssl(directory, "req", *key, "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={address}")  # fmt: skip
    openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2",
            "-extfile", "server.ext")  # fmt: skip
    return ServerCertificate(
        directory / "ca.crt", directory / "server.crt", directory / "server.key"
    )


# --- the token service ---


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """A token server for distribution's `token` auth: RS256 JWTs signed with openssl,
    carrying the certificate in `x5c`. `users` may do anything; anonymous users may pull."""

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                "token.key", "-out", "token.crt", "-days", "2", "-subj", "/CN=token")  # fmt: skip
        der = openssl(directory, "x509", "-in", "token.crt", "-outform", "DER")
        self.x5c = base64.b64encode(der).decode()
        self.users = users
        self.issuer = "catalog-test-issuer"
        self.service = "catalog-test-registry"
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def cert(self) -> Path:
        return self.directory / "token.crt"

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = openssl(
            self.directory, "dgst", "-sha256", "-sign", "token.key", stdin=signing_input.encode()
        )
        return f"{signing_input}.{_b64(signature)}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if service.users.get(name) != password:
                        body = json.dumps({"details": "incorrect username or password"})
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(body.encode())
                        return
                    user = name
                scopes = query.get("scope", [])
                service.requests.append(
                    {"user": user, "scopes": scopes, "service": query.get("service", [""])[0]}
                )
                access = []
                for scope in scopes:
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    wanted = actions.split(",")
                    granted = wanted if user else [a for a in wanted if a == "pull"]
                    access.append({"type": kind, "name": name, "actions": granted})
                now = int(time.time())
                token = service.sign(
                    {
                        "iss": service.issuer,
                        "sub": user or "",
                        "aud": service.service,
                        "exp": now + 300,
                        "nbf": now - 10,
                        "iat": now,
                        "jti": uuid.uuid4().hex,
                        "access": access,
                    }
                )
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def __enter__(self) -> TokenService:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the registry ---


@dataclass
class Registry:
    host: str  # host:port, as a reference names it
    storage: Path
    scheme: str
    ca: Path | None = None
    username: str | None = None
    password: str | None = None
    logs: list[Path] = field(default_factory=list)

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"

    def skopeo_auth(self, prefix: str) -> list[str]:
        """skopeo's options for this registry as copy's source (`src`) or destination
        (`dest`), or for inspect ("")."""
        dash = f"--{prefix}-" if prefix else "--"
        options = [f"{dash}tls-verify={'true' if self.ca else 'false'}"]
        if self.ca is not None:
            options.append(f"{dash}cert-dir={self.ca.parent / 'certs.d' / self.host}")
        if self.username:
            options.append(f"{dash}creds={self.username}:{self.password}")
        return options

    def put(self, source: str, name: str, *options: str) -> None:
        """`skopeo copy SOURCE docker://HOST/NAME`."""
        assert SKOPEO is not None
        subprocess.run(
            [SKOPEO, "copy", "-q", *self.skopeo_auth("dest"), *options, source,
             f"docker://{self.ref(name)}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def copy_out(self, name: str, destination: str) -> None:
        """`skopeo copy docker://HOST/NAME DESTINATION` (every blob verified)."""
        assert SKOPEO is not None
        subprocess.run(
            [SKOPEO, "copy", "-q", *self.skopeo_auth("src"), f"docker://{self.ref(name)}",
             destination],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def inspect(self, name: str, *options: str) -> dict[str, Any]:
        assert SKOPEO is not None
        result = subprocess.run(
            [SKOPEO, "inspect", *self.skopeo_auth(""), *options, f"docker://{self.ref(name)}"],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        document = json.loads(result.stdout)
        assert isinstance(document, dict)
        return document

    def raw_manifest(self, name: str) -> bytes:
        assert SKOPEO is not None
        return subprocess.run(
            [SKOPEO, "inspect", "--raw", *self.skopeo_auth(""), f"docker://{self.ref(name)}"],
            check=True, capture_output=True, timeout=60,
        ).stdout  # fmt: skip

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (for corruption tests)."""
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def _config(
    storage: Path,
    address: str,
    *,
    cert: ServerCertificate | None,
    htpasswd: Path | None,
    token: TokenService | None,
) -> str:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": address, "secret": uuid.uuid4().hex},
    }
    if cert is not None:
        config["http"]["tls"] = {"certificate": str(cert.cert), "key": str(cert.key)}
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "catalog-test", "path": str(htpasswd)}}
    if token is not None:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.cert),
            }
        }
    return json.dumps(config)  # YAML is a superset of JSON


@contextlib.contextmanager
def run_registry(
    directory: Path,
    *,
    host: str = "127.0.0.1",
    tls: bool = False,
    users: dict[str, str] | None = None,
    token: TokenService | None = None,
) -> Iterator[Registry]:
    """A docker-registry on a free port of `host`, stopped (and its storage left in
    `directory`) afterwards."""
    assert DOCKER_REGISTRY is not None
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    address = f"{host}:{port}"
    cert = server_certificate(directory / "tls", host) if tls else None
    htpasswd = None
    if users is not None and token is None:
        import bcrypt

        htpasswd = directory / "htpasswd"
        htpasswd.write_text(
            "".join(
                f"{name}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"
                for name, password in users.items()
            )
        )
    storage = directory / "storage"
    config_path = directory / "config.yml"
    config_path.write_text(_config(storage, address, cert=cert, htpasswd=htpasswd, token=token))
    log = directory / "registry.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(config_path)], stdout=log_file, stderr=log_file
        )
    registry = Registry(
        host=address,
        storage=storage,
        scheme="https" if tls else "http",
        ca=None,
        logs=[log],
    )
    if cert is not None:
        certs_dir = directory / "tls" / "certs.d" / address
        certs_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cert.ca, certs_dir / "ca.crt")
        registry.ca = cert.ca
    if users:
        registry.username, registry.password = next(iter(users.items()))
    try:
        _wait_until_up(registry, process, cert)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(
    registry: Registry, process: subprocess.Popen[bytes], cert: ServerCertificate | None
) -> None:
    url = f"{registry.scheme}://{registry.host}/v2/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {registry.logs[0].read_text()[-2000:]}")
        try:
            verify = ssl.create_default_context(cafile=str(cert.ca)) if cert else False
            httpx.get(url, verify=verify, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not start: {registry.logs[0].read_text()[-2000:]}")


# --- a proxy that drops one blob's connection ---


class CuttingProxy:
    """Forwards TCP to `target`; a response to a GET of a path containing `cut_path` is
    cut after `after` bytes and the connection closed, as a registry that drops it."""

    def __init__(self, target: str, cut_path: str, after: int = 256) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.cut_path = cut_path.encode()
        self.after = after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        cutting = threading.Event()

        def upward() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    if b"GET " in data and self.cut_path in data:
                        cutting.set()
                    upstream.sendall(data)
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=upward, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if cutting.is_set():
                    room = self.after - sent
                    client.sendall(data[: max(room, 0)])
                    sent += len(data)
                    if sent >= self.after:
                        self.cuts += 1
                        break
                else:
                    client.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
            upstream.close()

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._listener.close()


# --- a credential helper ---

HELPER = """#!{python}
import json, sys
path = {store!r}
try:
    with open(path) as f:
        store = json.load(f)
except FileNotFoundError:
    store = {{}}
verb = sys.argv[1]
data = sys.stdin.read()
if verb == "get":
    entry = store.get(data.strip())
    if entry is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": data.strip(), "Username": entry[0], "Secret": entry[1]}}))
elif verb == "store":
    doc = json.loads(data)
    store[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
elif verb == "erase":
    if store.pop(data.strip(), None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
elif verb == "list":
    print(json.dumps({{k: v[0] for k, v in store.items()}}))
with open(path, "w") as f:
    json.dump(store, f)
"""


def install_credential_helper(bin_dir: Path, name: str, store: Path) -> Path:
    """`docker-credential-NAME` in `bin_dir`, keeping what it is given in `store` (JSON)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(HELPER.format(python=sys.executable, store=str(store)))
    path.chmod(0o755)
    return path


def with_path(bin_dir: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

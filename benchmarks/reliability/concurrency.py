"""Concurrent writers (issue 12, item 4), on the backend under test.

Writers. `WORKERS` processes each run a seeded mix of operations (load, tag, rmi,
append, squash, container create and rm, prune) through catalog's operations and services,
as the CLI calls them, while `READERS` processes list images in a loop. Each writer works
in a namespace of its own (repositories `wN/...`, containers `wN-...`, prune with its
label), but every image stands on the same two base layers, so the writers share layer
rows and blob files all the time: exactly what leases and the writer lock are for.

Then:

* no operation surfaced "database is locked", a serialization failure or a deadlock,
  and none failed with anything but catalog's own errors (a NotFound or a Conflict the
  worker's choice may meet);
* no write was lost: the operations that reported success, replayed one at a time in a
  new catalog (each writer's in its order: the namespaces are disjoint), give the same
  images, references, containers and layers as the concurrent run; and `fsck` is clean;
* no reader saw a half-written image: in one snapshot, each listed image has all its
  layers (as its config says), its size is their sum, and each reference names an image.

Server. The same mix of what the Engine API serves (load, tag, delete, prune, catalog's
squash) from `CLIENTS` concurrent HTTP clients against one `catalog serve`, with clients
listing images meanwhile; the same checks.

Figures: operations per second, and p50/p99 latency per operation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from benchmarks.reliability.catalogs import (
    ArchiveImage,
    Stopwatch,
    TrialCatalog,
    docker_archive,
    fsck_errors,
    layer_tar,
    percentile,
    trial_catalog,
)
from benchmarks.reliability.results import ClassResult, RunSettings
from catalog.context import Catalog
from catalog.db.models import (
    Container,
    Image,
    ImageConfigJSON,
    ImageLayer,
    ImageReference,
    Layer,
)
from catalog.docker.filters import FilterArgs
from catalog.domain.imageconfig import parse_config
from catalog.errors import CatalogError
from catalog.operations.append import append_image
from catalog.operations.fsck.rows import snapshot
from catalog.operations.load import load_archive
from catalog.operations.removal import prune_images, remove_images
from catalog.operations.squash import squash_image
from catalog.services.containers import create_container, remove_container
from catalog.services.listing import list_images
from catalog.services.tag import tag_image
from catalog.settings import normalize_database_url

REPOSITORY = Path(__file__).resolve().parents[2]
CREATED = "2024-01-01T00:00:00Z"
SQUASHED_AT = datetime(2024, 6, 1, tzinfo=UTC)
KIB = 1 << 10
# What a writer must never be told: the backend asking to be retried.
CONTENTION = ("database is locked", "serializ", "deadlock", "could not obtain lock")
ARCHIVES_PER_WRITER = 3
# Between a reader's listings.
READER_PAUSE = 0.02


@dataclass(frozen=True)
class Sizes:
    workers: int
    operations: int
    readers: int
    clients: int
    requests: int


FULL = Sizes(workers=8, operations=200, readers=4, clients=32, requests=50)
BOUNDED = Sizes(workers=6, operations=12, readers=2, clients=16, requests=4)


# --- What the writers do ---


def _base_layers() -> list[bytes]:
    return [layer_tar(1, 256 * KIB), layer_tar(2, 256 * KIB)]


def writer_archive(writer: str, number: int) -> ArchiveImage:
    own = layer_tar(zlib.crc32(f"{writer}/{number}".encode()), 64 * KIB)
    return ArchiveImage(
        [*_base_layers(), own],
        tags=[f"{writer}/app:{number}"],
        labels={"writer": writer},
        created=CREATED,
    )


def make_files(scratch: Path, writers: list[str]) -> None:
    """The archives and layer tars the writers use, made once before they start."""
    for writer in writers:
        for number in range(ARCHIVES_PER_WRITER):
            path = scratch / f"{writer}-{number}.tar"
            path.write_bytes(docker_archive([writer_archive(writer, number)]))
        layer = layer_tar(zlib.crc32(f"{writer}/layer".encode()), 32 * KIB)
        (scratch / f"{writer}-layer.tar").write_bytes(layer)


def apply(catalog: Catalog, scratch: Path, writer: str, op: dict[str, Any]) -> None:
    """Run one recorded operation (the writers and the replay call the same)."""
    kind = op["op"]
    if kind == "load":
        load_archive(catalog, scratch / f"{writer}-{op['number']}.tar")
    elif kind == "tag":
        with catalog.database.write() as session:
            tag_image(session=session, source=op["source"], target=op["target"])
    elif kind == "rmi":
        deletion = remove_images(catalog, [op["name"]])
        if deletion.failures:
            raise deletion.failures[0].error
    elif kind == "append":
        append_image(
            catalog, op["base"], scratch / f"{writer}-layer.tar", tags=[op["tag"]], created=CREATED
        )
    elif kind == "squash":
        squash_image(catalog, op["image"], tags=[op["tag"]], now=SQUASHED_AT)
    elif kind == "container-create":
        with catalog.database.write() as session:
            create_container(session=session, image=op["image"], name=op["name"])
    elif kind == "container-rm":
        with catalog.database.write() as session:
            remove_container(session=session, term=op["name"], force=True)
    elif kind == "prune":
        prune_images(
            catalog,
            FilterArgs({"dangling": {"false": True}, "label": {f"writer={writer}": True}}),
        )
    else:  # pragma: no cover - the choices below name only these
        raise ValueError(kind)


class WriterModel:
    """What a writer believes it has made, to choose operations that mostly make sense
    (a wrong guess fails with NotFound or Conflict, which is allowed)."""

    def __init__(self, writer: str, chooser: random.Random) -> None:
        self.writer = writer
        self.chooser = chooser
        self.tags: set[str] = set()
        self.containers: set[str] = set()
        self.counter = 0

    def next_op(self) -> dict[str, Any]:
        w, pick = self.writer, self.chooser
        self.counter += 1
        kinds = ["load"] * 3
        if self.tags:
            kinds += ["tag"] * 2 + ["rmi"] * 2 + ["append", "squash", "container-create"]
            kinds += ["prune"]
        if self.containers:
            kinds += ["container-rm"]
        kind = pick.choice(kinds)
        tags = sorted(self.tags)
        if kind == "load":
            number = pick.randrange(ARCHIVES_PER_WRITER)
            return {"op": kind, "number": number, "adds": [f"{w}/app:{number}"]}
        if kind == "tag":
            target = f"{w}/alias:{pick.randrange(4)}"
            return {"op": kind, "source": pick.choice(tags), "target": target, "adds": [target]}
        if kind == "rmi":
            return {"op": kind, "name": pick.choice(tags), "removes": True}
        if kind == "append":
            tag = f"{w}/appended:{pick.randrange(3)}"
            return {"op": kind, "base": pick.choice(tags), "tag": tag, "adds": [tag]}
        if kind == "squash":
            tag = f"{w}/flat:{pick.randrange(3)}"
            return {"op": kind, "image": pick.choice(tags), "tag": tag, "adds": [tag]}
        if kind == "container-create":
            name = f"{w}-c{pick.randrange(4)}"
            return {"op": kind, "image": pick.choice(tags), "name": name, "container": name}
        if kind == "container-rm":
            return {"op": kind, "name": pick.choice(sorted(self.containers))}
        return {"op": kind}

    def applied(self, op: dict[str, Any]) -> None:
        self.tags.update(op.get("adds", []))
        if op.get("removes"):
            self.tags.discard(op["name"])
        if "container" in op:
            self.containers.add(op["container"])
        if op["op"] == "container-rm":
            self.containers.discard(op["name"])
        if op["op"] == "prune":
            self.tags.clear()  # whatever no container used is gone; the rest is a guess


def _catalog_for(root: Path, url: str) -> TrialCatalog:
    return TrialCatalog(root, normalize_database_url(url))


def run_writer(root: Path, url: str, scratch: Path, writer: str, count: int, seed: int) -> None:
    """A writer process: `count` operations; JSON lines on stdout, one per operation."""
    chooser = random.Random(f"{seed}-{writer}")  # noqa: S311 - the mix reproducible by seed
    model = WriterModel(writer, chooser)
    with _catalog_for(root, url).open() as catalog:
        for _ in range(count):
            op = model.next_op()
            watch = Stopwatch()
            error = None
            try:
                apply(catalog, scratch, writer, op)
            except CatalogError as exc:
                error = f"{type(exc).__name__}: {exc.message}"
            except Exception as exc:  # any other exception is reported, and is a failure
                error = f"unexpected {type(exc).__name__}: {exc}"
            record = {**op, "seconds": watch.seconds, "error": error}
            print(json.dumps(record), flush=True)
            if error is None:
                model.applied(op)


def run_reader(root: Path, url: str, stop: Path) -> None:
    """A reader process: list and check images in one snapshot until `stop` exists; one
    JSON line at the end: how many listings, and what was wrong."""
    listings = 0
    problems: list[str] = []
    with _catalog_for(root, url).open() as catalog:
        while not stop.exists():
            problems += check_snapshot(catalog)
            listings += 1
            time.sleep(READER_PAUSE)  # a user's loop, not a spin that starves the writers
    print(json.dumps({"listings": listings, "problems": problems[:20]}), flush=True)


def check_snapshot(catalog: Catalog) -> list[str]:
    """What a reader must never see: an image without all its layers, a size that is not
    their sum, a reference to no image; all read in one snapshot."""
    problems = []
    with snapshot(catalog.database) as session:
        summaries = list_images(session=session, all_images=True)
        configs = dict(
            session.execute(select(ImageConfigJSON.image_id, ImageConfigJSON.config)).all()
        )
        layer_counts = dict(
            session.execute(
                select(ImageLayer.image_id, func.count()).group_by(ImageLayer.image_id)
            ).all()
        )
        sums = dict(
            session.execute(
                select(ImageLayer.image_id, func.sum(Layer.diff_size))
                .join(Layer, Layer.chain_id == ImageLayer.chain_id)
                .group_by(ImageLayer.image_id)
            ).all()
        )
        dangling_references = session.scalar(
            select(func.count())
            .select_from(ImageReference)
            .where(~select(Image.id).where(Image.id == ImageReference.image_id).exists())
        )
    for summary in summaries:
        image_id = summary.id
        config = configs.get(image_id)
        if config is None:
            problems.append(f"{image_id}: listed without its config")
            continue
        layers = len(parse_config(bytes(config)).diff_ids)
        if layer_counts.get(image_id, 0) != layers:
            problems.append(f"{image_id}: {layer_counts.get(image_id, 0)} of {layers} layers")
        if summary.size != (sums.get(image_id) or 0):
            problems.append(f"{image_id}: size {summary.size}, layers sum {sums.get(image_id)}")
    if dangling_references:
        problems.append(f"{dangling_references} references to no image")
    return problems


# --- State, to compare a concurrent run with its serial replay ---


def catalog_state(catalog: Catalog, *, made_then: bool = False) -> dict[str, Any]:
    """Images, references (to image IDs), containers (by name) and layers. With
    `made_then`, images created when they were made (not at the archives' fixed time: a
    squash through the server, which takes no time) count by number only, and so do the
    references to them: their IDs depend on when they were made."""
    with catalog.database.read() as session:
        references = {
            f"{repository}:{tag or digest}": image_id
            for repository, tag, digest, image_id in session.execute(
                select(
                    ImageReference.repository,
                    ImageReference.tag,
                    ImageReference.digest,
                    ImageReference.image_id,
                )
            )
        }
        created = dict(session.execute(select(Image.id, Image.created)).all())
        containers = {c.name: c.image_id for c in session.scalars(select(Container))}
        layers = set(session.scalars(select(Layer.chain_id)))
    images = set(created)
    if made_then:
        fixed = datetime.fromisoformat(CREATED)
        then = {image for image, when in created.items() if when != fixed}
        images = (images - then) | {f"(made then: {len(then)})"}
        references = {
            name: ("(made then)" if image in then else image) for name, image in references.items()
        }
        layers = {"(not compared: those of images made then depend on when)"}
    return {
        "images": sorted(images),
        "references": dict(sorted(references.items())),
        "containers": dict(sorted(containers.items())),
        "layers": sorted(layers),
    }


def _difference(concurrent: dict[str, Any], serial: dict[str, Any]) -> list[str]:
    lines = []
    for key in concurrent:
        a, b = concurrent[key], serial[key]
        if a == b:
            continue
        if isinstance(a, dict):
            only_a = {k: a[k] for k in a if b.get(k) != a[k]}
            only_b = {k: b[k] for k in b if a.get(k) != b[k]}
            lines.append(f"{key}: concurrent has {only_a}, the replay {only_b}")
        else:
            lines.append(
                f"{key}: concurrent has {sorted(set(a) - set(b))[:5]}, the replay"
                f" {sorted(set(b) - set(a))[:5]}"
            )
    return lines


# --- The run ---


@dataclass
class Outcome:
    operations: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    listings: int = 0


def _python(module_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "benchmarks.reliability.concurrency", *module_args]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    # The harness is in the source tree; `catalog` is whatever this Python imports.
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _writers_run(made: TrialCatalog, scratch: Path, sizes: Sizes, seed: int) -> Outcome:
    outcome = Outcome()
    writers = [f"w{i}" for i in range(sizes.workers)]
    make_files(scratch, writers)
    stop = scratch / "stop-readers"
    stop.unlink(missing_ok=True)
    common = ["--root", str(made.root), "--url", made.url_text, "--scratch", str(scratch)]
    env = _environment()
    readers = [
        subprocess.Popen(
            _python(["reader", *common, "--stop", str(stop)]),
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(sizes.readers)
    ]
    watch = Stopwatch()
    processes = [
        subprocess.Popen(
            _python(
                [
                    "writer",
                    *common,
                    "--writer",
                    w,
                    "--count",
                    str(sizes.operations),
                    "--seed",
                    str(seed),
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in writers
    ]
    for writer, process in zip(writers, processes, strict=True):
        out, err = process.communicate(timeout=3600)
        if process.returncode != 0:
            outcome.failures.append(f"writer {writer} exited {process.returncode}: {err[-500:]}")
        for line in out.splitlines():
            outcome.operations.append({**json.loads(line), "writer": writer})
    outcome.seconds = watch.seconds
    stop.touch()
    for reader in readers:
        out, _ = reader.communicate(timeout=600)
        if not out.strip():
            outcome.failures.append(f"a reader exited {reader.returncode} without a report")
            continue
        report = json.loads(out.strip().splitlines()[-1])
        outcome.listings += int(report["listings"])
        outcome.failures += [f"a reader saw: {p}" for p in report["problems"]]
    return outcome


def _judge(
    outcome: Outcome,
    made: TrialCatalog,
    replay: Callable[[Catalog], None],
    replay_catalog: TrialCatalog,
    made_then: bool = False,
) -> None:
    for op in outcome.operations:
        error = op.get("error")
        if error is None:
            continue
        if any(word in error.lower() for word in CONTENTION) or error.startswith("unexpected"):
            outcome.failures.append(f"{op['writer']} {op['op']}: {error}")
    with made.open() as catalog:
        outcome.failures += [f"fsck: {line}" for line in fsck_errors(catalog)]
        concurrent = catalog_state(catalog, made_then=made_then)
    with replay_catalog.open() as catalog:
        replay(catalog)
        serial = catalog_state(catalog, made_then=made_then)
    outcome.failures += [
        f"lost or changed writes: {line}" for line in _difference(concurrent, serial)
    ]


def _figures(outcome: Outcome, what: str) -> list[str]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for op in outcome.operations:
        by_kind[op["op"]].append(op["seconds"])
    succeeded = sum(op.get("error") is None for op in outcome.operations)
    total = len(outcome.operations)
    rate = total / outcome.seconds if outcome.seconds else 0.0
    lines = [
        f"- {total} {what} in {outcome.seconds:.1f} s: {rate:.1f} operations/s"
        f" ({succeeded} succeeded, the others met a NotFound or Conflict of their own"
        f" making); readers listed {outcome.listings} times.",
        "",
        "  | operation | count | p50 | p99 |",
        "  |---|---|---|---|",
    ]
    for kind, seconds in sorted(by_kind.items()):
        lines.append(
            f"  | {kind} | {len(seconds)} | {percentile(seconds, 0.5) * 1000:.0f} ms"
            f" | {percentile(seconds, 0.99) * 1000:.0f} ms |"
        )
    return lines


def _writers(settings: RunSettings, sizes: Sizes) -> ClassResult:
    scratch = settings.workdir / "concurrency-files"
    scratch.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    with trial_catalog(settings, "writers") as made, trial_catalog(settings, "replay") as again:
        outcome = _writers_run(made, scratch, sizes, settings.seed)

        def replay(catalog: Catalog) -> None:
            for op in outcome.operations:  # each writer's in its order (disjoint namespaces)
                if op.get("error") is None:
                    try:
                        apply(catalog, scratch, op["writer"], op)
                    except CatalogError as exc:
                        outcome.failures.append(f"the replay of {op} failed: {exc}")

        ordered = sorted(outcome.operations, key=lambda op: int(op["writer"][1:]))
        outcome.operations = ordered
        _judge(outcome, made, replay, again)
    details = [
        f"- {sizes.workers} writer processes x {sizes.operations} operations, {sizes.readers}"
        " reader processes listing in a loop; every image on the same two base layers.",
        *_figures(outcome, "operations"),
        "",
        *(f"- FAILED: {line}" for line in outcome.failures[:15]),
    ]
    return ClassResult(
        f"concurrent writers ({sizes.workers} processes)",
        settings.backend,
        len(outcome.operations),
        len(outcome.failures),
        watch.seconds,
        details,
    )


# --- Through catalog serve ---


def _client_ops(client: str, count: int, chooser: random.Random) -> Iterator[dict[str, Any]]:
    """A client's requests: what the Engine API serves of the writers' mix."""
    model = WriterModel(client, chooser)
    for _ in range(count):
        op = model.next_op()
        if op["op"] in ("append", "container-create", "container-rm"):
            continue  # no Engine API endpoint in catalog for these
        if op["op"] == "squash":
            # The endpoint takes no time, so the new image's ID depends on when it was
            # made: later requests leave it alone, and the replay compares its tag only.
            op["adds"] = []
        op["client_model"] = model
        yield op


def _request(http: httpx.Client, scratch: Path, client: str, op: dict[str, Any]) -> str | None:
    """Send one op; None on success, else the error message."""
    kind = op["op"]
    if kind == "load":
        body = (scratch / f"{client}-{op['number']}.tar").read_bytes()
        response = http.post("/images/load?quiet=1", content=body)
        if response.status_code != 200:
            return response.text
        for line in response.text.splitlines():
            message = json.loads(line)
            if "error" in message:
                return str(message["error"])
        return None
    if kind == "tag":
        repo, _, tag = op["target"].rpartition(":")
        response = http.post(f"/images/{op['source']}/tag", params={"repo": repo, "tag": tag})
    elif kind == "rmi":
        response = http.delete(f"/images/{op['name']}")
    elif kind == "squash":
        response = http.post(f"/catalog/images/{op['image']}/squash", json={"tags": [op["tag"]]})
    else:  # prune
        filters = json.dumps({"label": [f"writer={client}"], "dangling": ["false"]})
        response = http.post("/images/prune", params={"filters": filters})
    if response.status_code >= 300:
        try:
            return str(response.json().get("message", response.text))
        except ValueError:
            return response.text
    return None


def _clients_run(base_url: str, scratch: Path, sizes: Sizes, seed: int) -> Outcome:
    outcome = Outcome()
    clients = [f"c{i}" for i in range(sizes.clients)]
    make_files(scratch, clients)
    lock = threading.Lock()
    stop = threading.Event()

    def client(name: str) -> None:
        chooser = random.Random(f"{seed}-{name}")  # noqa: S311 - reproducible by seed
        with httpx.Client(base_url=base_url, timeout=600) as http:
            for op in _client_ops(name, sizes.requests, chooser):
                model = op.pop("client_model")
                watch = Stopwatch()
                try:
                    error = _request(http, scratch, name, op)
                except httpx.HTTPError as exc:
                    error = f"unexpected {type(exc).__name__}: {exc}"
                record = {**op, "writer": name, "seconds": watch.seconds, "error": error}
                with lock:
                    outcome.operations.append(record)
                if error is None:
                    model.applied(op)

    def reader() -> None:
        with httpx.Client(base_url=base_url, timeout=600) as http:
            while not stop.is_set():
                response = http.get("/images/json", params={"all": "1"})
                with lock:
                    outcome.listings += 1
                    if response.status_code != 200:
                        outcome.failures.append(
                            f"a listing answered {response.status_code}: {response.text}"
                        )

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers:
        thread.start()
    watch = Stopwatch()
    threads = [threading.Thread(target=client, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.seconds = watch.seconds
    stop.set()
    for thread in readers:
        thread.join()
    return outcome


def _server(settings: RunSettings, sizes: Sizes) -> ClassResult:
    scratch = settings.workdir / "concurrency-serve-files"
    scratch.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    with trial_catalog(settings, "serve") as made, trial_catalog(settings, "serve-replay") as again:
        port = _free_port()
        server = subprocess.Popen(
            [*_catalog_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=made.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_listening(port)
            outcome = _clients_run(f"http://127.0.0.1:{port}", scratch, sizes, settings.seed)
        finally:
            server.terminate()
            _, log = server.communicate(timeout=60)
        if "Traceback" in log:
            outcome.failures.append(f"the server logged a traceback: {log[-500:]}")

        def replay(catalog: Catalog) -> None:
            for op in sorted(outcome.operations, key=lambda op: int(op["writer"][1:])):
                if op.get("error") is None:
                    try:
                        if op["op"] == "squash":
                            squash_image(catalog, op["image"], tags=[op["tag"]])
                        else:
                            apply(catalog, scratch, op["writer"], op)
                    except CatalogError as exc:
                        outcome.failures.append(f"the replay of {op} failed: {exc}")

        # catalog's squash endpoint takes no time: its images' IDs depend on when.
        _judge(outcome, made, replay, again, made_then=True)
    details = [
        f"- {sizes.clients} HTTP clients x up to {sizes.requests} requests (load, tag, delete,"
        " prune, squash: what the Engine API serves of the mix) against one `catalog serve`,"
        " 2 more clients listing images meanwhile.",
        *_figures(outcome, "requests"),
        "",
        *(f"- FAILED: {line}" for line in outcome.failures[:15]),
    ]
    return ClassResult(
        f"concurrent HTTP clients ({sizes.clients}, catalog serve)",
        settings.backend,
        len(outcome.operations),
        len(outcome.failures),
        watch.seconds,
        details,
    )


def _catalog_command() -> list[str]:
    """The `catalog` console script beside this Python, else the same through -c."""
    beside = Path(sys.executable).parent / "catalog"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from catalog.cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("catalog serve did not start listening")


def run(settings: RunSettings) -> list[ClassResult]:
    sizes = FULL if settings.full else BOUNDED
    return [_writers(settings, sizes), _server(settings, sizes)]


def main() -> None:
    parser = argparse.ArgumentParser(description="a writer or reader process of the suite")
    parser.add_argument("role", choices=["writer", "reader"])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--writer")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stop", type=Path)
    args = parser.parse_args()
    if args.role == "writer":
        run_writer(args.root, args.url, args.scratch, args.writer, args.count, args.seed)
    else:
        run_reader(args.root, args.url, args.stop)


if __name__ == "__main__":
    main()

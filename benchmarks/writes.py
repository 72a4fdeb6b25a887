"""The cost of one write on a large catalog, with the facts kept for the listing and
without them (docs/listing.md §12): `catalog tag`, `rmi`, `load` of one image and
`image squash`, each timed alone, one write per transaction, as a user makes them.

Without: the `kept_facts` calls the writers make are replaced by ones that do nothing, in
this process only, so the same code is timed with and without their work, the two
alternating. Those writes leave the catalog's kept facts stale: the runner measures
writes last.

Each repetition writes a new image or name (from a small image made here, its layers a
few kilobytes), so every repetition does the same work on a catalog of the same size.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from catalog.context import Catalog
from catalog.domain.digest import sha256_digest
from catalog.operations.load import load_archive
from catalog.operations.removal import remove_images
from catalog.operations.squash import squash_image
from catalog.services import kept_facts
from catalog.services.tag import tag_image

OPERATIONS = ("tag", "rmi", "load", "squash")
# The writers' calls into kept_facts, made to do nothing for the runs without them.
KEPT_FACT_CALLS = (
    "image_added",
    "image_removed",
    "names_changed",
    "parent_set",
    "container_added",
    "container_removed",
)


@contextmanager
def without_kept_facts() -> Iterator[None]:
    columns = ("new_image_columns", "names_columns")
    saved = {name: getattr(kept_facts, name) for name in (*KEPT_FACT_CALLS, *columns)}
    for name in KEPT_FACT_CALLS:
        setattr(kept_facts, name, lambda **_: None)
    kept_facts.new_image_columns = lambda created, labels: {}
    kept_facts.names_columns = lambda **_: {}
    try:
        yield
    finally:
        for name, call in saved.items():
            setattr(kept_facts, name, call)


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def small_archive(number: int, tag: str, *, layers: int = 3) -> bytes:
    """A `docker save` archive of one image of `layers` small layers, different for each
    `number`, tagged `tag`."""
    tars = [
        _tar({f"layer{i}/file-{number}": f"write {number} layer {i}\n".encode() * 64})
        for i in range(layers)
    ]
    diff_ids = [sha256_digest(tar) for tar in tars]
    created = (datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=number)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Labels": {"bench.write": str(number)}},
            "history": [{"created": created, "created_by": f"layer {i}"} for i in range(layers)],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        separators=(",", ":"),
    ).encode()
    config_name = sha256_digest(config).removeprefix("sha256:") + ".json"
    members = {config_name: config}
    names = []
    for tar, diff_id in zip(tars, diff_ids, strict=True):
        name = diff_id.removeprefix("sha256:") + "/layer.tar"
        members[name] = tar
        names.append(name)
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": names}]
    members["manifest.json"] = json.dumps(manifest).encode()
    return _tar(members)


def measure(catalog: Catalog, workdir: Path, spec: dict[str, Any]) -> dict[str, list[float]]:
    """Time `spec["op"]` with the kept facts and without, `spec["repeat"]` times each,
    alternating (after two untimed runs of each): drift on a shared machine falls on both.
    Times in `kept` and `bare`."""
    op = spec["op"]
    repeat = int(spec.get("repeat", 15))
    workdir.mkdir(parents=True, exist_ok=True)
    counter = iter(range(int(spec.get("number", 0)) + 1, 10**9))

    def archive(number: int, tag: str) -> Path:
        path = workdir / f"write-{number}.tar"
        path.write_bytes(small_archive(number, tag))
        return path

    squashed = f"bench-write/squash-{spec.get('number', 0)}:1"
    if op == "squash":
        # One loaded image, squashed into a new image each time (its layers in the store).
        load_archive(catalog, archive(next(counter), squashed))

    def step() -> tuple[Callable[[], Any], Callable[[], Any]]:
        """The next write: (untimed setup, the write)."""
        number = next(counter)
        if op == "tag":
            return nothing, partial(tag, number)
        if op == "load":
            path = archive(number, f"bench-write/load:{number}")
            return nothing, partial(load_archive, catalog, path)
        if op == "rmi":
            name = f"bench-write/rmi:{number}"
            path = archive(number, name)
            return partial(load_archive, catalog, path), partial(remove_images, catalog, [name])
        if op == "squash":
            return nothing, partial(squash, number)
        raise ValueError(f"unknown write {op!r}")

    def nothing() -> None:
        return None

    def tag(number: int) -> Any:
        with catalog.database.write() as session:
            target = f"bench-write/tag:{number}"
            return tag_image(session=session, source=spec["source"], target=target)

    def squash(number: int) -> Any:
        now = datetime(2026, 7, 1, tzinfo=UTC) + timedelta(seconds=number)
        tags = [f"bench-write/squashed:{number}"]
        return squash_image(catalog, squashed, layers=2, tags=tags, now=now)

    def run(kept: bool) -> float:
        with _nothing() if kept else without_kept_facts():
            setup, write = step()
            setup()
            started = time.perf_counter()
            write()
            return time.perf_counter() - started

    for _ in range(2):  # warm-up: statements compiled, caches filled, both ways
        run(True)
        run(False)
    found: dict[str, list[float]] = {"kept": [], "bare": []}
    for i in range(repeat):
        for kept in (True, False) if i % 2 == 0 else (False, True):
            found["kept" if kept else "bare"].append(run(kept))
    return found


@contextmanager
def _nothing() -> Iterator[None]:
    yield

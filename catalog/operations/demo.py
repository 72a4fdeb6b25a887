"""A sample catalog, made in the process from nothing: what `catalog demo` shows.

Every image is built with the services a user drives from the CLI (`append_image` with
generated layer directories, `tag_image`, `create_container`), so the demo exercises the
real code paths and its catalog is an ordinary one:

* `demo/base` (two layers: a root filesystem and packages), whose first step is left
  untagged under it: an *intermediate* image, as `docker build` leaves them;
* apps built on the base, sharing its layers: `demo/web` (1.0, and 2.0 also `latest`),
  `demo/api` (1.1 `latest`), and `demo/worker` built on `demo/web:2.0`;
* an *untagged leaf*: the previous `demo/api:latest`, whose tag moved to 1.1;
* `demo/tools`, an old, unrelated image that shares nothing;
* containers in several states.

Creation times are spread over the weeks before `now`, so growth and staleness reports
have something to show. Layer contents are generated text, deterministic for a given
layer name and size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Container
from catalog.domain.imageconfig import format_timestamp
from catalog.operations.append import SCRATCH, append_image
from catalog.services.containers import create_container
from catalog.services.info import count_rows
from catalog.services.tag import tag_image

KB = 1000

# A generated layer: file paths and their sizes in bytes.
Layer = Mapping[str, int]


@dataclass(frozen=True)
class Step:
    """One `catalog image append`: BASE (an earlier step, or scratch) plus a layer."""

    name: str
    base: str
    files: Layer
    tags: tuple[str, ...]
    weeks_ago: float
    message: str


STEPS: tuple[Step, ...] = (
    Step(
        "tools",
        SCRATCH,
        {"bin/busybox": 700 * KB, "etc/motd": 2 * KB},
        ("demo/tools:1.0",),
        20,
        "an old, unrelated image",
    ),
    Step(
        "rootfs",
        SCRATCH,
        {"bin/sh": 600 * KB, "lib/libc.so.6": 1400 * KB, "etc/os-release": 1 * KB},
        (),
        13,
        "base step 1: the root filesystem",
    ),
    Step(
        "packages",
        "rootfs",
        {"usr/lib/python3/runtime.py": 900 * KB, "usr/share/ca-certificates.crt": 200 * KB},
        ("demo/base:1.0", "demo/base:latest"),
        12,
        "base step 2: packages",
    ),
    Step(
        "web-1.0",
        "packages",
        {"srv/web/app.py": 150 * KB, "srv/web/static/site.css": 250 * KB},
        ("demo/web:1.0",),
        9,
        "web 1.0",
    ),
    Step(
        "api-1.0",
        "packages",
        {"srv/api/server.py": 400 * KB},
        ("demo/api:latest",),
        6,
        "api 1.0",
    ),
    Step(
        "api-1.1",
        "packages",
        {"srv/api/server.py": 420 * KB, "srv/api/schema.json": 30 * KB},
        ("demo/api:1.1",),
        4,
        "api 1.1",
    ),
    Step(
        "web-2.0",
        "packages",
        {"srv/web/app.py": 350 * KB, "srv/web/static/site.css": 300 * KB},
        ("demo/web:2.0", "demo/web:latest"),
        3,
        "web 2.0",
    ),
    Step(
        "worker",
        "web-2.0",
        {"srv/worker/jobs.py": 80 * KB},
        ("demo/worker:latest",),
        1,
        "worker, built on web 2.0",
    ),
)
# After every step: `demo/api:latest` moves to 1.1, leaving api 1.0 untagged.
MOVED_TAG = ("api-1.1", "demo/api:latest")
# (name, image step, state)
CONTAINERS: tuple[tuple[str, str, str], ...] = (
    ("demo-web-1", "web-2.0", "running"),
    ("demo-web-2", "web-2.0", "exited"),
    ("demo-api", "api-1.1", "running"),
    ("demo-worker", "worker", "created"),
)


@dataclass
class DemoCatalog:
    """What the demo made: image IDs by step name, and container IDs by name."""

    images: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)


def file_content(path: str, size: int) -> bytes:
    """`size` bytes of text, the same for the same path and size."""
    seed = hashlib.sha256(path.encode()).hexdigest()
    line = f"{path} {seed}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def write_layer(directory: Path, files: Layer) -> None:
    for relative, size in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_content(relative, size))


def is_empty(*, session: Session) -> bool:
    """No images, names or containers (blobs alone do not count)."""
    counts = count_rows(session=session)
    return counts.images == counts.references == counts.containers == 0


def build_demo(catalog: Catalog, *, workdir: Path, now: datetime) -> DemoCatalog:
    """Build the demo's images and containers in `catalog`; layer directories are
    generated under `workdir` (left for the caller to remove)."""
    made = DemoCatalog()
    for step in STEPS:
        layer = workdir / step.name
        layer.mkdir(parents=True)
        write_layer(layer, step.files)
        created = (now - timedelta(weeks=step.weeks_ago)).replace(microsecond=0)
        made.images[step.name] = append_image(
            catalog,
            step.base if step.base == SCRATCH else made.images[step.base],
            layer,
            tags=step.tags,
            message=step.message,
            created=format_timestamp(created),
        )
    with catalog.database.write() as session:
        source, target = MOVED_TAG
        tag_image(session=session, source=made.images[source], target=target)
        names = [name for name, _, _ in CONTAINERS]
        taken = set(session.scalars(select(Container.name).where(Container.name.in_(names))))
        for name, image, state in CONTAINERS:
            # A name already in use (a demo run before, with --force): a generated one.
            container = create_container(
                session=session,
                image=made.images[image],
                name=None if name in taken else name,
                state=state,
            )
            made.containers[container.name] = container.id
    return made

"""Synthetic catalogs, deterministic by seed, written with bulk Core inserts.

The shape follows what a busy Docker host or CI builder holds:

- base images (`debian:12`, `alpine:3.19`, ...) of 3-5 layers, their popularity skewed;
- families (one repository each) on a base, sharing the base chain and a family prefix of
  0-4 layers, each version adding 1-6 layers of its own (3-15 layers in all); a version
  often reuses the previous version's first own layer; family sizes skewed (Zipf);
- tags: a version tag per image, `latest` and some minor tags, digest references on
  pulled repositories, a few digest-only images, and about 10% dangling images (no
  reference, no child: their tag moved on);
- intermediate images of locally built families: untagged, with children, `parent_id`
  set along the build chain;
- a few common label keys; history entries matching the config; config JSON whose
  digest is the image ID, so every row is what `register_image` would have written;
- containers, about 0.2 per image, skewed to popular and latest images, in mixed states;
- creation times spread over the two years before a fixed anchor;
- the facts kept for the listing (docs/listing.md §12), as the writers would keep them.

Rows only: no layer blob is written to the content store (listings never read blobs),
but every blob row the foreign keys need exists. The database is a freshly migrated
catalog (`open_catalog` runs the real migrations); rows go in with executemany batches on
SQLite, in one transaction with bulk-load pragmas, and with COPY on PostgreSQL.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, ForeignKeyConstraint, Table, text

from catalog.context import Catalog
from catalog.db import kept_values
from catalog.db.engine import writer_engine
from catalog.db.models import (
    Blob,
    Container,
    Image,
    ImageConfigJSON,
    ImageHistory,
    ImageLabel,
    ImageLayer,
    ImageReference,
    Layer,
)

# The newest creation time; the data spans the two years before it. Fixed, so a seed
# always gives the same catalog.
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 24 * 3600
# The empty tar's diff ID (1024 zero bytes): Docker's empty layers share it.
EMPTY_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
EMPTY_TAR_SIZE = 1024

DISTROS = ("debian", "ubuntu", "alpine", "centos", "fedora", "busybox", "python", "node")
TEAMS = tuple(f"team-{i:02d}" for i in range(20))
TIERS = ("prod", "staging", "dev")
CONTAINER_STATES = (
    ("running", 35),
    ("exited", 45),
    ("created", 10),
    ("paused", 4),
    ("restarting", 2),
    ("dead", 4),
)
# SQLite pragmas of the connection that bulk-loads.
BULK_PRAGMAS = (
    # No rollback journal and no WAL while loading a new database: a failed load leaves
    # a database nobody uses. WAL is switched back on right after.
    "PRAGMA journal_mode = OFF",
    "PRAGMA synchronous = OFF",
    "PRAGMA cache_size = -2000000",
    "PRAGMA temp_store = MEMORY",
)
# Rows per executemany / COPY batch.
BATCH = 20_000


@dataclass(frozen=True)
class Probes:
    """Filter values that exist in the generated data, each selecting a few percent."""

    label: str  # label=KEY=VALUE
    label_not: str  # label!=KEY
    reference: str  # reference=GLOB
    before: str  # before=NAME (an old tagged image)
    since: str  # since=NAME (a recent tagged image)
    until: str  # until=RFC3339 time

    def filters(self) -> dict[str, dict[str, list[str]]]:
        """Benchmark name -> filter arguments."""
        return {
            "label": {"label": [self.label]},
            "label!": {"label!": [self.label_not]},
            "reference": {"reference": [self.reference]},
            "before": {"before": [self.before]},
            "since": {"since": [self.since]},
            "until": {"until": [self.until]},
            "dangling": {"dangling": ["true"]},
        }


@dataclass
class GenerationResult:
    images: int
    seed: int
    seconds: float
    rows: dict[str, int]
    probes: Probes
    intermediates: int
    dangling: int
    digest_only: int
    containers: int
    cpu_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "seed": self.seed,
            "seconds": self.seconds,
            "rows": self.rows,
            "probes": self.probes.__dict__,
            "intermediates": self.intermediates,
            "dangling": self.dangling,
            "digest_only": self.digest_only,
            "containers": self.containers,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationResult:
        return cls(
            images=data["images"],
            seed=data["seed"],
            seconds=data["seconds"],
            rows=data["rows"],
            probes=Probes(**data["probes"]),
            intermediates=data["intermediates"],
            dangling=data["dangling"],
            digest_only=data["digest_only"],
            containers=data["containers"],
            cpu_seconds=data.get("cpu_seconds", 0.0),
        )


@dataclass
class _Stack:
    """A layer stack: chain IDs and diff IDs bottom first, and the sum of diff sizes."""

    chains: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()
    size: int = 0


@dataclass
class _Family:
    repository: str
    familiar: str
    base: int  # index into the bases
    prefix: _Stack
    weight: float
    built_locally: bool
    pulled: bool
    labels: dict[str, str]
    versions: list[int] = field(default_factory=list)  # image indexes, in creation order


@dataclass
class _ImageRow:
    parent: int | None  # index of the parent image (parents always come first)
    created: datetime
    stack: _Stack
    kind: str  # base, app, intermediate
    family: int  # -1 for bases
    labels: dict[str, str]
    id: str = ""  # the config's digest, computed once labels are final
    config: bytes = b""


def _zipf_cumulative(count: int, exponent: float) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(count)))


class _Generator:
    def __init__(self, images: int, seed: int, containers_per_image: float) -> None:
        if images < 20:
            raise ValueError("a synthetic catalog needs at least 20 images")
        self.n = images
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by seed
        self.containers_per_image = containers_per_image
        self.blobs: dict[str, int] = {}  # digest -> size
        self.layers: dict[str, tuple[str, str | None, int]] = {}  # chain -> diff, parent, size
        self.images: list[_ImageRow] = []
        # (repository, tag, digest, image index, created_at)
        self.references: list[tuple[str, str | None, str | None, int, datetime]] = []
        self.families: list[_Family] = []
        self.bases: list[int] = []  # image indexes of base images
        self.base_cumulative: list[float] = []
        self.family_cumulative: list[float] = []
        self.last_tag_time: dict[int, datetime] = {}
        self.dangling = 0
        self.digest_only = 0

    # --- digests and layers --------------------------------------------------------------

    def random_digest(self) -> str:
        return f"sha256:{self.rng.getrandbits(256):064x}"

    def push(self, stack: _Stack, diff_id: str, diff_size: int) -> _Stack:
        """`stack` plus one layer; its layer (and blob) rows are recorded once."""
        if stack.chains:
            parent: str | None = stack.chains[-1]
            chain = "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
        else:
            parent, chain = None, diff_id
        if chain not in self.layers:
            self.layers[chain] = (diff_id, parent, diff_size)
            if diff_id not in self.blobs:
                self.blobs[diff_id] = (
                    EMPTY_TAR_SIZE if diff_id == EMPTY_DIFF_ID else diff_size + 10_240
                )
        return _Stack((*stack.chains, chain), (*stack.diff_ids, diff_id), stack.size + diff_size)

    def push_new(self, stack: _Stack, median_size: float, *, empty: bool = False) -> _Stack:
        if empty:
            return self.push(stack, EMPTY_DIFF_ID, 0)
        size = max(1, int(self.rng.lognormvariate(0.0, 1.0) * median_size))
        return self.push(stack, self.random_digest(), size)

    def add_image(
        self,
        stack: _Stack,
        *,
        created: datetime,
        parent: int | None,
        kind: str,
        family: int,
        labels: dict[str, str],
    ) -> int:
        self.images.append(_ImageRow(parent, created, stack, kind, family, labels))
        return len(self.images) - 1

    def random_time(self, low: float = 0.0, high: float = 1.0) -> datetime:
        offset = SPAN_SECONDS * (1.0 - self.rng.uniform(low, high))
        return ANCHOR - timedelta(seconds=int(offset))

    # --- images ----------------------------------------------------------------------------

    def make_bases(self) -> None:
        count = max(2, min(400, round(self.n**0.5 / 3), self.n // 10))
        for index in range(count):
            stack = _Stack()
            for _ in range(self.rng.randint(3, 5)):
                stack = self.push_new(stack, 30e6)
            distro = DISTROS[index % len(DISTROS)]
            self.bases.append(
                self.add_image(
                    stack,
                    created=self.random_time(0.0, 0.6),
                    parent=None,
                    kind="base",
                    family=-1,
                    labels={"maintainer": f"{distro}@example.org"},
                )
            )
        self.base_cumulative = _zipf_cumulative(count, 1.2)

    def make_families(self) -> None:
        rng = self.rng
        count = max(3, self.n // 40)
        self.family_cumulative = _zipf_cumulative(count, 0.8)
        base_indexes = range(len(self.bases))
        for index in range(count):
            base = rng.choices(base_indexes, cum_weights=self.base_cumulative)[0]
            prefix = self.images[self.bases[base]].stack
            for _ in range(rng.randint(0, 4)):
                prefix = self.push_new(prefix, 20e6)
            org = f"org-{rng.randrange(30):02d}"
            app = f"app-{index}"
            team = TEAMS[rng.randrange(len(TEAMS))]
            form = rng.random()
            if form < 0.5:
                repository, familiar = f"docker.io/{org}/{app}", f"{org}/{app}"
            elif form < 0.7:
                repository = familiar = f"ghcr.io/{org}/{app}"
            elif form < 0.9:
                repository = familiar = f"registry.example.com:5000/{team}/{app}"
            else:
                repository, familiar = f"docker.io/library/{app}", app
            labels: dict[str, str] = {}
            if rng.random() < 0.7:
                labels["maintainer"] = f"{team}@example.com"
            if rng.random() < 0.6:
                labels["org.opencontainers.image.source"] = f"https://git.example.com/{org}/{app}"
            if rng.random() < 0.8:
                labels["com.example.team"] = team
            if rng.random() < 0.93:
                labels["com.example.tier"] = TIERS[rng.randrange(len(TIERS))]
            self.families.append(
                _Family(
                    repository=repository,
                    familiar=familiar,
                    base=base,
                    prefix=prefix,
                    weight=1.0 / (index + 1) ** 0.8,
                    built_locally=rng.random() < 0.25,
                    pulled=form < 0.9 and rng.random() < 0.6,
                    labels=labels,
                )
            )

    def make_versions(self) -> None:
        rng = self.rng
        family_indexes = range(len(self.families))
        previous_first: dict[int, tuple[str, int]] = {}
        while len(self.images) < self.n:
            index = rng.choices(family_indexes, cum_weights=self.family_cumulative)[0]
            family = self.families[index]
            depth = len(family.prefix.chains)
            own = rng.randint(max(1, 3 - depth), min(6, 15 - depth))
            stack = family.prefix
            for position in range(own):
                reuse = previous_first.get(index)
                if position == 0 and own > 1 and reuse is not None and rng.random() < 0.5:
                    stack = self.push(stack, *reuse)  # unchanged dependencies layer
                else:
                    # Now and then an empty layer (never the top one), as RUN steps that
                    # change nothing give.
                    empty = position < own - 1 and rng.random() < 0.05
                    stack = self.push_new(stack, 2e6, empty=empty)
            if own > 1:
                previous_first[index] = (stack.diff_ids[depth], self.layers[stack.chains[depth]][2])
            created = self.random_time()
            parent: int | None = None
            room = self.n - len(self.images) - 1
            if family.built_locally and own >= 2 and room > 0 and rng.random() < 0.15:
                # Built here: untagged intermediates along the build chain, the first one's
                # parent the base image.
                parent = self.bases[family.base]
                for step in range(min(own - 1, 2, room), 0, -1):
                    below = stack.chains[-step:]
                    partial = _Stack(
                        stack.chains[:-step],
                        stack.diff_ids[:-step],
                        stack.size - sum(self.layers[c][2] for c in below),
                    )
                    parent = self.add_image(
                        partial,
                        created=created - timedelta(seconds=30 * step),
                        parent=parent,
                        kind="intermediate",
                        family=index,
                        labels=dict(family.labels),
                    )
            family.versions.append(
                self.add_image(
                    stack,
                    created=created,
                    parent=parent,
                    kind="app",
                    family=index,
                    labels=dict(family.labels),
                )
            )

    # --- names -----------------------------------------------------------------------------

    def name(
        self, repository: str, image: int, *, tag: str | None = None, digest: str | None = None
    ) -> None:
        created = self.images[image].created + timedelta(seconds=self.rng.randint(1, 86_400))
        if tag is not None:
            self.last_tag_time[image] = max(self.last_tag_time.get(image, created), created)
        self.references.append((repository, tag, digest, image, created))

    def make_references(self) -> None:
        rng = self.rng
        # Bases: `distro:N`, the newest of each distro also `latest`, most pulled by digest.
        newest: dict[str, int] = {}
        for number, image in enumerate(self.bases):
            distro = DISTROS[number % len(DISTROS)]
            repository = f"docker.io/library/{distro}"
            self.name(repository, image, tag=str(number // len(DISTROS) + 1))
            if rng.random() < 0.8:
                self.name(repository, image, digest=self.random_digest())
            if (
                distro not in newest
                or self.images[image].created > self.images[newest[distro]].created
            ):
                newest[distro] = image
        for distro, image in newest.items():
            self.name(f"docker.io/library/{distro}", image, tag="latest")

        # Apps: a version tag each in creation order (and the version label); about 10%
        # of all images dangling (never a family's latest), a few digest-only.
        for family in self.families:
            family.versions.sort(key=lambda i: self.images[i].created)
        candidates = [image for family in self.families for image in family.versions[:-1]]
        dangling = set(rng.sample(candidates, min(len(candidates), round(0.10 * self.n))))
        rest = [image for image in candidates if image not in dangling]
        digest_only = set(rng.sample(rest, min(len(rest), round(0.03 * self.n))))
        self.dangling, self.digest_only = len(dangling), len(digest_only)
        for family in self.families:
            for number, image in enumerate(family.versions):
                version = f"1.{number // 10}.{number % 10}"
                self.images[image].labels["org.opencontainers.image.version"] = version
                if image in dangling:
                    continue
                if image in digest_only:
                    self.name(family.repository, image, digest=self.random_digest())
                    continue
                self.name(family.repository, image, tag=version)
                if number % 10 == 9 and rng.random() < 0.3:
                    self.name(family.repository, image, tag=f"1.{number // 10}")
                if family.pulled and rng.random() < 0.4:
                    self.name(family.repository, image, digest=self.random_digest())
            if family.versions:
                self.name(family.repository, family.versions[-1], tag="latest")

    def make_ids(self) -> None:
        for image in self.images:
            image.config = _config_json(image)
            image.id = "sha256:" + hashlib.sha256(image.config).hexdigest()
        if len({image.id for image in self.images}) != len(self.images):
            raise AssertionError("two synthetic images have the same config")

    def make_containers(
        self,
    ) -> list[tuple[str, str, str, str, str, datetime, datetime | None, datetime | None]]:
        rng = self.rng
        count = round(self.containers_per_image * self.n)
        latest = {family.versions[-1] for family in self.families if family.versions}
        population: list[int] = []
        weights: list[float] = []
        for index, image in enumerate(self.images):
            if image.kind == "intermediate":
                continue
            weight = 0.5 if image.kind == "base" else self.families[image.family].weight
            population.append(index)
            weights.append(weight * (4.0 if index in latest else 1.0))
        chosen = rng.choices(population, weights=weights, k=count)
        states = rng.choices(
            [s for s, _ in CONTAINER_STATES], weights=[w for _, w in CONTAINER_STATES], k=count
        )
        containers = []
        for number, (position, state) in enumerate(zip(chosen, states, strict=True)):
            used = self.images[position]
            created = used.created + timedelta(seconds=rng.randint(60, 30 * 86_400))
            # Docker's rules: a container that ran has a start; one that stopped, a finish.
            started = None if state == "created" else created + timedelta(seconds=1)
            finished = created + timedelta(hours=1) if state in ("exited", "dead") else None
            containers.append(
                (
                    f"{rng.getrandbits(256):064x}",
                    f"bench-{number:07d}",
                    used.id,
                    used.id,  # the image as named: its ID
                    state,
                    created,
                    started,
                    finished,
                )
            )
        return containers

    def probes(self) -> Probes:
        """Filter values present in the data, each selecting a few percent of it."""
        named: dict[int, str] = {}
        for repository, tag, _digest, image, _created in self.references:
            if (
                tag is not None
                and tag != "latest"
                and not repository.startswith("docker.io/library/")
            ):
                named.setdefault(image, _familiar(f"{repository}:{tag}"))
        by_time = sorted(range(len(self.images)), key=lambda i: self.images[i].created)
        with_names = [index for index in by_time if index in named]

        def name_at(fraction: float) -> str:
            return named[with_names[min(len(with_names) - 1, int(fraction * len(with_names)))]]

        teams = {family.labels.get("com.example.team") for family in self.families}
        team = TEAMS[3] if TEAMS[3] in teams else sorted(t for t in teams if t)[0]
        orgs = sorted(
            {
                f.familiar.split("/")[0]
                for f in self.families
                if f.repository.startswith("docker.io/org-")
            }
        )
        org = orgs[min(7, len(orgs) - 1)] if orgs else "org-00"
        cutoff = self.images[by_time[int(0.05 * len(by_time))]].created
        return Probes(
            label=f"com.example.team={team}",
            label_not="com.example.tier",
            reference=f"{org}/*",
            before=name_at(0.05),
            since=name_at(0.95),
            until=cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


def _familiar(reference: str) -> str:
    """FamiliarString of a normalized `repository:tag` (docker.io/ and library/ dropped)."""
    if reference.startswith("docker.io/library/") and "/" not in reference[18:]:
        return reference[18:]
    if reference.startswith("docker.io/"):
        return reference[10:]
    return reference


def _config_json(image: _ImageRow) -> bytes:
    """Config JSON as Docker writes it; its history matches the image_history rows."""
    stamp = image.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    history: list[dict[str, Any]] = [
        {"created": stamp, "created_by": _created_by(i)} for i in range(len(image.stack.diff_ids))
    ]
    history.append({"created": stamp, "created_by": CMD_CREATED_BY, "empty_layer": True})
    document: dict[str, Any] = {
        "architecture": "amd64",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "Cmd": ["app"],
            "Labels": image.labels or None,
        },
        "created": stamp,
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": list(image.stack.diff_ids)},
    }
    return json.dumps(document, separators=(",", ":")).encode()


CMD_CREATED_BY = '/bin/sh -c #(nop)  CMD ["app"]'


_CREATED_BY = tuple(f"/bin/sh -c #(nop) ADD layer-{position}.tar /" for position in range(16))


def _created_by(position: int) -> str:
    return _CREATED_BY[position]


# --- writing --------------------------------------------------------------------------------

Rows = list[tuple[Any, ...]]


def _write(connection: Connection, table: Table, columns: Sequence[str], rows: Rows) -> None:
    """Bulk rows into `table`: COPY on PostgreSQL, executemany batches on SQLite."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    # The driver's executemany, each value through its column type's own bind processor
    # (UTCDateTime's naive-UTC text, ...): the rows Core would write, without building a
    # dict per row.
    dialect = connection.dialect
    processors = [
        _cached(table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in columns
    ]
    if any(processors):
        rows = [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in rows
        ]
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - our own table names
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    for start in range(0, len(rows), BATCH):
        connection.exec_driver_sql(statement, rows[start : start + BATCH])


def _cached(processor: Any) -> Any:
    """A bind processor remembering its answers: times repeat (history rows share their
    image's creation time), and converting each is most of a row's cost."""
    if processor is None:
        return None
    return functools.lru_cache(maxsize=65_536)(processor)


# The facts kept for the listing (docs/listing.md §12), computed here as the writers would
# have kept them; the generator's tests compare them with fsck's recomputation.
KEPT_IMAGE_COLUMNS = (
    "sort_key",
    "unique_size",
    "child_count",
    "tag_count",
    "digest_count",
    "container_count",
    "labels_json",
    "repo_tags",
    "repo_digests",
)


@dataclass
class _KeptFacts:
    ref_counts: Counter[str]
    images: list[tuple[Any, ...]]  # KEPT_IMAGE_COLUMNS, per image index


def _kept_facts(gen: _Generator, containers: Sequence[tuple[Any, ...]]) -> _KeptFacts:
    ref_counts = Counter(chain for image in gen.images for chain in image.stack.chains)
    children = Counter(image.parent for image in gen.images if image.parent is not None)
    names: dict[int, list[tuple[str, str | None, str | None]]] = defaultdict(list)
    for repository, tag, digest, image_index, _ in gen.references:
        names[image_index].append((repository, tag, digest))
    used_by = Counter(container[2] for container in containers)
    rows = []
    for index, image in enumerate(gen.images):
        unique = sum(gen.layers[c][2] for c in image.stack.chains if ref_counts[c] == 1)
        tag_count, digest_count, tags, digests = kept_values.names_json(names.get(index, []))
        rows.append(
            (
                kept_values.sort_key(image.created),
                unique,
                children[index],
                tag_count,
                digest_count,
                used_by[image.id],
                kept_values.labels_json(image.labels),
                tags,
                digests,
            )
        )
    return _KeptFacts(ref_counts, rows)


def plan(
    images: int, seed: int = 7, containers_per_image: float = 0.2
) -> tuple[dict[str, tuple[Table, tuple[str, ...], Rows]], GenerationResult]:
    """Every row of a synthetic catalog, by table in foreign-key order (nothing written)."""
    started = time.perf_counter()
    gen = _Generator(images, seed, containers_per_image)
    gen.make_bases()
    gen.make_families()
    gen.make_versions()
    gen.make_references()
    gen.make_ids()
    containers = gen.make_containers()

    def table(model: Any) -> Table:
        assert isinstance(model.__table__, Table)
        return model.__table__

    ids = [image.id for image in gen.images]
    facts = _kept_facts(gen, containers)
    images_rows: Rows = []
    config_rows: Rows = []
    layer_rows: Rows = []
    label_rows: Rows = []
    history_rows: Rows = []
    for index, image in enumerate(gen.images):
        chains = image.stack.chains
        images_rows.append(
            (
                image.id,
                None if image.parent is None else ids[image.parent],
                image.created,
                "linux",
                "amd64",
                None,
                None,
                None,
                chains[-1] if chains else None,
                image.stack.size,
                gen.last_tag_time.get(index),
                *facts.images[index],
            )
        )
        config_rows.append((image.id, image.config))
        layer_rows.extend((image.id, i, chain) for i, chain in enumerate(chains))
        label_rows.extend((image.id, k, v) for k, v in image.labels.items())
        history_rows.extend(
            (image.id, i, image.created, _created_by(i), None, None, False)
            for i in range(len(chains))
        )
        history_rows.append(
            (image.id, len(chains), image.created, CMD_CREATED_BY, None, None, True)
        )
    tables: dict[str, tuple[Table, tuple[str, ...], Rows]] = {
        "blobs": (
            table(Blob),
            ("digest", "size", "created_at"),
            [(d, s, ANCHOR) for d, s in gen.blobs.items()],
        ),
        # dict order: every layer after its parent (the self-reference is checked per row).
        "layers": (
            table(Layer),
            ("chain_id", "diff_id", "parent_chain_id", "diff_size", "blob_digest", "ref_count"),
            [(c, d, p, s, d, facts.ref_counts[c]) for c, (d, p, s) in gen.layers.items()],
        ),
        # Parents before children, as generated.
        "images": (
            table(Image),
            (
                "id",
                "parent_id",
                "created",
                "os",
                "architecture",
                "variant",
                "author",
                "comment",
                "top_chain_id",
                "size",
                "last_tag_time",
                *KEPT_IMAGE_COLUMNS,
            ),
            images_rows,
        ),
        "image_configs": (table(ImageConfigJSON), ("image_id", "config"), config_rows),
        "image_layers": (table(ImageLayer), ("image_id", "position", "chain_id"), layer_rows),
        "image_labels": (table(ImageLabel), ("image_id", "key", "value"), label_rows),
        "image_history": (
            table(ImageHistory),
            ("image_id", "position", "created", "created_by", "author", "comment", "empty_layer"),
            history_rows,
        ),
        "image_references": (
            table(ImageReference),
            ("repository", "tag", "digest", "image_id", "created_at"),
            [(r, t, d, ids[i], c) for r, t, d, i, c in gen.references],
        ),
        "containers": (
            table(Container),
            (
                "id",
                "name",
                "image_id",
                "image",
                "state",
                "created",
                "started_at",
                "finished_at",
                "exit_code",
            ),
            [(*row, 0) for row in containers],
        ),
    }
    result = GenerationResult(
        images=len(gen.images),
        seed=seed,
        seconds=time.perf_counter() - started,
        rows={name: len(rows) for name, (_, _, rows) in tables.items()},
        probes=gen.probes(),
        intermediates=sum(image.kind == "intermediate" for image in gen.images),
        dangling=gen.dangling,
        digest_only=gen.digest_only,
        containers=len(containers),
    )
    return tables, result


@contextmanager
def _indexes_after_load(connection: Connection, tables: Iterable[Table]) -> Iterator[None]:
    """Drop the secondary indexes (and, on PostgreSQL, the foreign keys) of `tables`,
    and build them again afterwards, in the same transaction: a sort per index instead
    of a B-tree insert per row, and one validating join per foreign key instead of a
    trigger per row (pg_restore does the same). They come back with the models' names
    and definitions, which the schema tests prove equal to the migrations'."""
    tables = list(tables)
    indexes = [index for table in tables for index in table.indexes]
    foreign_keys = []
    if connection.dialect.name == "postgresql":
        foreign_keys = [
            constraint
            for table in tables
            for constraint in table.constraints
            if isinstance(constraint, ForeignKeyConstraint)
        ]
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        connection.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    for constraint in foreign_keys:
        connection.exec_driver_sql(
            f"ALTER TABLE {constraint.table.name} DROP CONSTRAINT {constraint.name}"
        )
    for index in indexes:
        index.drop(connection)
    yield
    for index in indexes:
        index.create(connection)
    for constraint in foreign_keys:
        connection.exec_driver_sql(_add_foreign_key(constraint))


def _add_foreign_key(constraint: ForeignKeyConstraint) -> str:
    """The ALTER TABLE that adds `constraint` back, written out here: SQLAlchemy's
    AddConstraint construct would also mark the model's constraint as created separately,
    so every later create_all of the shared metadata would leave it out."""
    columns = ", ".join(column.name for column in constraint.columns)
    referred = constraint.elements[0].column.table.name
    referred_columns = ", ".join(element.column.name for element in constraint.elements)
    on_delete = f" ON DELETE {constraint.ondelete}" if constraint.ondelete else ""
    return (
        f"ALTER TABLE {constraint.table.name} ADD CONSTRAINT {constraint.name} "
        f"FOREIGN KEY ({columns}) REFERENCES {referred} ({referred_columns}){on_delete}"
    )


def generate(
    catalog: Catalog, *, images: int, seed: int = 7, containers_per_image: float = 0.2
) -> GenerationResult:
    """Fill a freshly migrated, empty `catalog` with `images` synthetic images."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    tables, result = plan(images, seed, containers_per_image)
    engine = writer_engine(catalog.database.engine)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        raw: Any = connection.connection.dbapi_connection
        if sqlite:
            # This connection only, outside a transaction (SQLite refuses them inside):
            # the file stays WAL, and the catalog's own connections set synchronous =
            # NORMAL when they connect.
            for pragma in BULK_PRAGMAS:
                raw.execute(pragma)
        with connection.begin():
            if connection.execute(text("SELECT count(*) FROM images")).scalar_one():
                raise ValueError("generate() needs an empty catalog")
            with _indexes_after_load(connection, (t for t, _, _ in tables.values())):
                for table, columns, rows in tables.values():
                    _write(connection, table, columns, rows)
        if sqlite:
            raw.execute("PRAGMA journal_mode = WAL")
            raw.execute("PRAGMA synchronous = NORMAL")
    if not sqlite:
        # What autovacuum does soon after a bulk load: statistics and the visibility map
        # (index-only scans), so the plans measured are the steady-state ones.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    result.seconds = time.perf_counter() - started
    # This process's CPU time (SQLite's work included; a PostgreSQL server's not): on a
    # busy machine it says more than the wall time.
    result.cpu_seconds = time.process_time() - cpu_started
    return result


def count_rows(connection: Connection) -> dict[str, int]:
    """Rows per catalog table, to check a generated catalog."""
    names = (
        "blobs",
        "layers",
        "images",
        "image_configs",
        "image_layers",
        "image_labels",
        "image_history",
        "image_references",
        "containers",
    )
    return {
        name: int(connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())  # noqa: S608
        for name in names
    }


def main(argv: list[str] | None = None) -> int:
    """Build a synthetic catalog: `python -m benchmarks.generate --images N --db URL`."""
    import argparse
    import json
    import tempfile
    from pathlib import Path

    from catalog.context import open_catalog
    from catalog.settings import Location, normalize_database_url

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Build a synthetic catalog (the benchmark's) in a new, empty database: "
        "any SQLAlchemy URL catalog takes (SQLite or PostgreSQL). Then time `catalog "
        "--root DIR --db URL images ...` against it.",
    )
    parser.add_argument("--images", type=int, required=True, help="how many images (>= 20)")
    parser.add_argument(
        "--containers", type=int, help="how many containers (default: one per five images)"
    )
    parser.add_argument("--seed", type=int, default=7, help="the same seed gives the same rows")
    parser.add_argument("--db", required=True, help="the database URL (its database empty)")
    parser.add_argument(
        "--root",
        type=Path,
        help="the catalog's root directory (default: beside a SQLite file, else a new "
        "temporary directory); the synthetic catalog writes no blob files",
    )
    options = parser.parse_args(argv)
    url = normalize_database_url(options.db)
    root = options.root
    if root is None:
        if url.get_backend_name() == "sqlite" and url.database:
            root = Path(url.database).resolve().parent / "catalog-root"
        else:
            root = Path(tempfile.mkdtemp(prefix="catalog-bench-root-"))
    per_image = 0.2 if options.containers is None else options.containers / options.images
    with open_catalog(Location(root=root, database_url=url)) as catalog:
        result = generate(
            catalog, images=options.images, seed=options.seed, containers_per_image=per_image
        )
    shown = url.render_as_string(hide_password=True)
    print(json.dumps(result.to_json(), indent=2))
    print(
        f"Generated {result.images:,} images and {result.containers:,} containers in "
        f"{result.seconds:.1f} s. Try:\n  catalog --root {root} --db {shown} images | head\n"
        f"  catalog --root {root} --db {shown} images --format json --shared-size > /dev/null"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

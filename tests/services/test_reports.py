"""`catalog report`: every report's rows against numbers this file computes by itself, in
plain Python, from what it built; the consistency the reports promise; the HTML page.

The model below knows nothing of the catalog's code: it computes chain IDs with hashlib,
sizes from the files it put in each layer, and each report's definition (see the module
doc of catalog/services/reports.py) over lists and sets.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from support.builders import ImageBuilder, image_config, layer_tar
from typer.testing import Result

from catalog.context import Catalog, open_catalog
from catalog.db.models import Container
from catalog.docker.filters import parse_filter_flags
from catalog.docker.humanize import human_size
from catalog.domain.reference import parse_normalized_named, with_digest, with_name
from catalog.errors import InvalidArgument, NotFound
from catalog.services.containers import create_container
from catalog.services.delete import Deleter
from catalog.services.images import set_reference
from catalog.services.listing import layers_size
from catalog.services.prune import delete_unused_images
from catalog.services.reports import REPORTS, ReportOptions, report_statement, run_report
from catalog.settings import Location, normalize_database_url

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
NOW = T0 + timedelta(days=60)
GONE = "sha256:" + "f" * 64  # an image ID a container keeps after `rmi -f`
DIGEST = "sha256:" + "d" * 64

# --- The model -------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class LayerSpec:
    """A layer tar made of files of known sizes."""

    files: tuple[tuple[str, int], ...]

    @property
    def tar(self) -> bytes:
        return layer_tar({name: name.encode()[:1] * size for name, size in self.files})

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)


def layer(*files: tuple[str, int]) -> LayerSpec:
    return LayerSpec(tuple(files))


@dataclass
class ImageSpec:
    id: str
    layers: list[LayerSpec]
    tags: list[tuple[str, str]]  # (familiar repository, tag)
    digests: list[tuple[str, str]]  # (familiar repository, digest)
    parent: str | None
    created: datetime | None
    containers: list[str] = field(default_factory=list)

    @property
    def chains(self) -> list[str]:
        out: list[str] = []
        for spec in self.layers:
            out.append(spec.diff_id if not out else sha256(f"{out[-1]} {spec.diff_id}".encode()))
        return out


def normalized(familiar: str) -> str:
    """docker.io/library/ or docker.io/ in front of a familiar name, as Docker adds them."""
    first = familiar.split("/", 1)[0]
    if "/" in familiar and ("." in first or ":" in first or first == "localhost"):
        return familiar
    return f"docker.io/{familiar}" if "/" in familiar else f"docker.io/library/{familiar}"


def byte_key(text: str) -> bytes:
    return text.encode()


@dataclass
class Model:
    images: list[ImageSpec] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # states of containers of GONE

    # -- what the definitions rest on --

    def children(self, image: ImageSpec) -> list[ImageSpec]:
        return [other for other in self.images if other.parent == image.id]

    def intermediate(self, image: ImageSpec) -> bool:
        named = image.tags or image.digests
        return not named and bool(self.children(image)) and not image.containers

    def counted(self) -> list[ImageSpec]:
        return [image for image in self.images if not self.intermediate(image)]

    def sizes(self) -> dict[str, int]:
        return {
            chain: spec.size
            for image in self.images
            for chain, spec in zip(image.chains, image.layers, strict=True)
        }

    def diff_ids(self) -> dict[str, str]:
        return {
            chain: spec.diff_id
            for image in self.images
            for chain, spec in zip(image.chains, image.layers, strict=True)
        }

    def users(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for image in self.counted():
            for chain in image.chains:
                found.setdefault(chain, set()).add(image.id)
        return found

    def disk_total(self) -> int:
        sizes = self.sizes()
        return sum(sizes[chain] for chain in self.users())

    def groups(self, image: ImageSpec) -> set[str | None]:
        names = {repo for repo, _ in image.tags} | {repo for repo, _ in image.digests}
        return set(names) if names else {None}

    def first_reference(self, image: ImageSpec) -> str | None:
        tags = sorted((normalized(repo) + ":" + tag, repo + ":" + tag) for repo, tag in image.tags)
        digests = sorted(
            (normalized(repo) + "@" + digest, repo + "@" + digest) for repo, digest in image.digests
        )
        # normalized strings compared as bytes; ASCII, so str order is byte order
        return tags[0][1] if tags else digests[0][1] if digests else None

    # -- the reports --

    def usage_by_repository(self) -> list[dict[str, Any]]:
        sizes = self.sizes()
        chains: dict[str | None, set[str]] = {}
        for image in self.counted():
            for group in self.groups(image):
                chains.setdefault(group, set()).update(image.chains)
        owners: dict[str, set[str | None]] = {}
        for group, group_chains in chains.items():
            for chain in group_chains:
                owners.setdefault(chain, set()).add(group)
        rows = []
        for group, group_chains in chains.items():
            total = sum(sizes[c] for c in group_chains)
            unique = sum(sizes[c] for c in group_chains if owners[c] == {group})
            members = [i for i in self.counted() if group in self.groups(i)]
            tags = sum(1 for i in self.images for repo, _ in i.tags if repo == group)
            rows.append(
                {
                    "repository": group,
                    "tags": tags,
                    "images": len(members),
                    "total_bytes": total,
                    "unique_bytes": unique,
                    "shared_bytes": total - unique,
                }
            )
        rows.sort(
            key=lambda r: (
                -r["total_bytes"],
                r["repository"] is None,
                byte_key(r["repository"] or ""),
            )
        )
        return rows

    def layer_sharing(self, limit: int = 20) -> list[dict[str, Any]]:
        sizes, diff_ids = self.sizes(), self.diff_ids()
        rows = []
        for chain, users in self.users().items():
            if len(users) < 2:
                continue
            repositories = {
                repo
                for image in self.images
                if chain in image.chains
                for repo, _ in [*image.tags, *image.digests]
            }
            rows.append(
                {
                    "chain_id": chain,
                    "diff_id": diff_ids[chain],
                    "diff_size": sizes[chain],
                    "images": len(users),
                    "repositories": len(repositories),
                    "saved_bytes": sizes[chain] * (len(users) - 1),
                }
            )
        rows.sort(key=lambda r: (-r["saved_bytes"], -r["diff_size"], byte_key(r["chain_id"])))
        return rows[:limit]

    def released(self, ids: set[str]) -> int:
        """Bytes of the layers whose users are all in `ids`."""
        sizes = self.sizes()
        return sum(sizes[c] for c, users in self.users().items() if users <= ids)

    def reclaimable(self, cutoff: datetime | None = None) -> list[dict[str, Any]]:
        candidates = [
            image
            for image in self.counted()
            if not image.containers
            and (cutoff is None or (image.created is not None and image.created <= cutoff))
        ]
        rows = []
        for image in candidates:
            dangling = not image.tags and not self.children(image)
            rows.append(
                {
                    "scope": "image",
                    "image_id": image.id,
                    "reference": self.first_reference(image),
                    "created": image.created,
                    "dangling": dangling,
                    "images": 1,
                    "size": sum(spec.size for spec in image.layers),
                    "freed_bytes": self.released({image.id}),
                }
            )
        rows.sort(key=lambda r: (-r["freed_bytes"], -r["size"], byte_key(r["image_id"])))
        dangling_ids = {r["image_id"] for r in rows if r["dangling"]}
        for scope, ids in (("all dangling", dangling_ids), ("all", {r["image_id"] for r in rows})):
            rows.append(
                {
                    "scope": scope,
                    "image_id": None,
                    "reference": None,
                    "created": None,
                    "dangling": None,
                    "images": len(ids),
                    "size": None,
                    "freed_bytes": self.released(ids),
                }
            )
        return rows

    def stale_tags(self, cutoff: datetime, max_tags: int) -> list[dict[str, Any]]:
        by_repository: dict[str, list[tuple[str, ImageSpec]]] = {}
        for image in self.images:
            for repo, tag in image.tags:
                by_repository.setdefault(repo, []).append((tag, image))
        rows = []
        for repo, tags in by_repository.items():
            # newest first, no creation time last, then the tag's bytes
            tags.sort(
                key=lambda t: (
                    t[1].created is None,
                    -(t[1].created.timestamp() if t[1].created else 0),
                    byte_key(t[0]),
                )
            )
            for rank, (tag, image) in enumerate(tags, start=1):
                old = image.created is not None and image.created <= cutoff
                beyond = rank > max_tags
                if old or beyond:
                    rows.append(
                        {
                            "repository": repo,
                            "tag": tag,
                            "image_id": image.id,
                            "created": image.created,
                            "rank": rank,
                            "repository_tags": len(tags),
                            "older_than_cutoff": old,
                            "beyond_max_tags": beyond,
                        }
                    )
        rows.sort(key=lambda r: (byte_key(r["repository"]), r["rank"]))
        return rows

    def growth(self, period: str = "week") -> list[dict[str, Any]]:
        def bucket(when: datetime | None) -> str | None:
            if when is None:
                return None
            day = when.astimezone(UTC).date()
            if period == "month":
                return f"{day.year:04d}-{day.month:02d}"
            return (day - timedelta(days=day.weekday())).isoformat()

        images: dict[str | None, int] = {}
        for image in self.counted():
            images[bucket(image.created)] = images.get(bucket(image.created), 0) + 1
        sizes = self.sizes()
        new: dict[str | None, int] = {}
        for chain, users in self.users().items():
            times = [i.created for i in self.counted() if i.id in users and i.created]
            first = bucket(min(times)) if times else None
            new[first] = new.get(first, 0) + sizes[chain]
        periods = sorted(images, key=lambda p: (p is None, p or ""))
        rows, running = [], 0
        for p in periods:
            running += new.get(p, 0)
            rows.append(
                {
                    "period": p,
                    "images": images[p],
                    "new_bytes": new.get(p, 0),
                    "cumulative_bytes": running,
                }
            )
        return rows

    def containers_by_image(self) -> list[dict[str, Any]]:
        states = ("created", "running", "paused", "restarting", "removing", "exited", "dead")

        def row(image_id: str, reference: str | None, exists: bool, held: list[str]) -> Any:
            return {
                "image_id": image_id,
                "reference": reference,
                "image_exists": exists,
                "containers": len(held),
                **{state: held.count(state) for state in states},
            }

        rows = [
            row(image.id, self.first_reference(image), True, image.containers)
            for image in self.counted()
        ]
        if self.orphans:
            rows.append(row(GONE, None, False, self.orphans))
        rows.sort(
            key=lambda r: (
                -r["containers"],
                -r["running"],
                r["reference"] is None,
                byte_key(r["reference"] or ""),
                byte_key(r["image_id"]),
            )
        )
        return rows


# --- Building a catalog and its model together ------------------------------------------


class Built:
    """Adds images to a real catalog (through ImageBuilder) and to the model."""

    def __init__(self, catalog: Catalog, images: ImageBuilder) -> None:
        self.catalog = catalog
        self.builder = images
        self.model = Model()

    def image(
        self,
        layers: Sequence[LayerSpec],
        *,
        tags: Sequence[str] = (),
        digests: Sequence[str] = (),
        parent: str | None = None,
        created: datetime | None,
        containers: Sequence[str] = (),
    ) -> str:
        config = None
        if created is None:
            # No creation time; the author keeps two such images of one stack apart.
            document = json.loads(image_config([spec.diff_id for spec in layers]))
            del document["created"]
            document["author"] = f"image {len(self.model.images)}"
            config = json.dumps(document, separators=(",", ":")).encode()
        image_id = self.builder.add(
            [spec.tar for spec in layers],
            tags=tags,
            parent=parent,
            created=created,
            config=config,
        )
        with self.catalog.database.write() as session:
            for repository in digests:
                name = with_name(parse_normalized_named(repository).name)
                set_reference(
                    session=session, reference=with_digest(name, DIGEST), image_id=image_id
                )
            for state in containers:
                create_container(session=session, image=image_id, state=state)
        tag_pairs = [tuple(tag.rsplit(":", 1)) for tag in tags]
        self.model.images.append(
            ImageSpec(
                id=image_id,
                layers=list(layers),
                tags=[(repo, tag) for repo, tag in tag_pairs],
                digests=[(repo, DIGEST) for repo in digests],
                parent=parent,
                created=created,
                containers=list(containers),
            )
        )
        return image_id

    def orphan_container(self, state: str) -> None:
        """A container whose image was deleted (`rmi -f`): it keeps the image's ID."""
        with self.catalog.database.write() as session:
            session.add(
                Container(
                    id=hashlib.sha256(state.encode()).hexdigest(),
                    name=f"orphan-{state}",
                    image_id=GONE,
                    image=GONE,
                    state=state,
                    created=T0,
                    started_at=None if state == "created" else T0,
                )
            )
        self.model.orphans.append(state)


BASE1 = layer(("base/bin", 5000))
BASE2 = layer(("base/lib", 3000))
APP1 = layer(("app/one", 700))
APP2 = layer(("app/two", 900))
WEB = layer(("web/site", 1100))
DANGLING = layer(("dangling", 250))
ONLY = layer(("only", 400))
EMPTY = layer()


@pytest.fixture
def built(catalog: Catalog, images: ImageBuilder) -> Built:
    """A catalog with shared base layers across repositories, several tags, a dangling
    image, a digest-only image, intermediate images (one a container uses), an image
    without a creation time, containers in several states, times over weeks."""
    b = Built(catalog, images)
    day = timedelta(days=1)
    inter = b.image([BASE1], created=T0)  # intermediate: untagged parent of base
    base = b.image([BASE1, BASE2], tags=["base:1", "base:latest"], parent=inter, created=T0 + day)
    b.image(
        [BASE1, BASE2, APP1],
        tags=["app:1"],
        parent=base,
        created=T0 + 8 * day,
        containers=["running", "exited"],
    )
    b.image(
        [BASE1, BASE2, APP2],
        tags=["app:2", "app:latest", "quay.io/team/app:2"],
        parent=base,
        created=T0 + 15 * day,
    )
    b.image([BASE1, BASE2, DANGLING], created=T0 + 20 * day)  # dangling leaf
    b.image(
        [BASE1, BASE2, WEB],
        tags=["registry.example.com:5000/web:1"],
        created=T0 + 40 * day,
        containers=["created"],
    )
    # An untagged parent that a container uses: counted, in the <none> group.
    tool_base = b.image([WEB], created=T0 + 30 * day, containers=["exited"])
    b.image([WEB, APP2], tags=["tool:1"], parent=tool_base, created=T0 + 31 * day)
    # Digest-only: a name in `app`, no tag; ONLY and EMPTY at depths 0 and 1.
    b.image([ONLY, EMPTY], digests=["app"], created=T0 + 50 * day)
    # APP1's diff at depth 0 is another layer than at depth 2; no creation time.
    b.image([APP1, EMPTY], tags=["other:old"], created=None)
    b.orphan_container("dead")
    return b


def run(catalog: Catalog, name: str, **options: Any) -> list[dict[str, Any]]:
    with catalog.database.read() as session:
        return run_report(
            session=session, name=name, options=ReportOptions(**options), now=NOW
        ).rows


# --- Every report against the model ------------------------------------------------------


def test_the_hand_built_catalog_is_what_the_test_means(built: Built) -> None:
    model = built.model
    assert [i for i in model.images if model.intermediate(i)] == [model.images[0]]
    assert model.disk_total() == 5000 + 3000 + 700 + 900 + 250 + 1100 + 1100 + 900 + 400 + 700
    with built.catalog.database.read() as session:
        assert layers_size(session=session) == model.disk_total()


def test_usage_by_repository(built: Built) -> None:
    rows = run(built.catalog, "usage-by-repository")
    assert rows == built.model.usage_by_repository()
    by_name = {row["repository"]: row for row in rows}
    # A few numbers by hand, so the model itself is checked too.
    assert by_name["base"] == {
        "repository": "base",
        "tags": 2,
        "images": 1,
        "total_bytes": 8000,
        "unique_bytes": 0,
        "shared_bytes": 8000,
    }
    assert by_name["quay.io/team/app"]["unique_bytes"] == 0  # app:2 is in `app` too
    assert by_name["tool"]["unique_bytes"] == 900  # APP2 on WEB: its own chain
    assert by_name["app"]["tags"] == 3 and by_name["app"]["images"] == 3
    assert by_name[None]["images"] == 2  # the dangling leaf and the used untagged parent


def test_layer_sharing(built: Built) -> None:
    rows = run(built.catalog, "layer-sharing")
    assert rows == built.model.layer_sharing()
    top = rows[0]
    # BASE1: base, app:1, app:2, the leaf, web; not the intermediate under base.
    assert top["diff_size"] == 5000 and top["images"] == 5 and top["saved_bytes"] == 20000
    assert run(built.catalog, "layer-sharing", limit=2) == built.model.layer_sharing(limit=2)


@pytest.mark.parametrize("older_than", [None, "2024-01-16T00:00:00Z", "1000h"])
def test_reclaimable(built: Built, older_than: str | None) -> None:
    cutoff = {
        None: None,
        "2024-01-16T00:00:00Z": datetime(2024, 1, 16, tzinfo=UTC),
        "1000h": NOW - timedelta(hours=1000),
    }[older_than]
    rows = run(built.catalog, "reclaimable", older_than=older_than)
    assert rows == built.model.reclaimable(cutoff)


def test_reclaimable_numbers_by_hand(built: Built) -> None:
    rows = {r["reference"] or r["scope"]: r for r in run(built.catalog, "reclaimable")}
    assert rows["app:2"]["freed_bytes"] == 900
    assert rows["base:1"]["freed_bytes"] == 0  # everything it has, its children have
    assert rows["image"]["freed_bytes"] == 250 and rows["image"]["dangling"]  # the leaf
    assert rows["app@" + DIGEST]["dangling"] and rows["app@" + DIGEST]["freed_bytes"] == 400
    assert rows["all dangling"]["freed_bytes"] == 650
    # All candidates: APP2 (app:2), the leaf, tool:1's APP2 chain, ONLY, other:old's two.
    assert rows["all"]["freed_bytes"] == 900 + 250 + 900 + 400 + 700
    assert rows["all"]["images"] == 6


def test_stale_tags(built: Built) -> None:
    cutoff = "2024-01-10T00:00:00Z"
    rows = run(built.catalog, "stale-tags", older_than=cutoff, max_tags=2)
    assert rows == built.model.stale_tags(datetime(2024, 1, 10, tzinfo=UTC), 2)
    old = {(r["repository"], r["tag"]) for r in rows if r["older_than_cutoff"]}
    assert old == {("base", "1"), ("base", "latest"), ("app", "1")}
    excess = [(r["repository"], r["tag"]) for r in rows if r["beyond_max_tags"]]
    assert excess == [("app", "1")]  # app:2 and app:latest are newer


def test_stale_tags_defaults(built: Built) -> None:
    # 2160h before NOW is before every image: nothing old; no repository has 10 tags.
    assert run(built.catalog, "stale-tags") == []


@pytest.mark.parametrize("period", ["week", "month"])
def test_growth(built: Built, period: str) -> None:
    rows = run(built.catalog, "growth", period=period)
    assert rows == built.model.growth(period)
    assert rows[-1]["period"] is None  # other:old has no creation time
    if period == "week":
        assert rows[0] == {
            "period": "2024-01-01",
            "images": 1,  # the intermediate is not counted, base is
            "new_bytes": 8000,
            "cumulative_bytes": 8000,
        }
    else:
        assert [r["period"] for r in rows] == ["2024-01", "2024-02", None]


def test_containers_by_image(built: Built) -> None:
    rows = run(built.catalog, "containers-by-image")
    assert rows == built.model.containers_by_image()
    assert rows[0]["reference"] == "app:1" and rows[0]["running"] == 1
    gone = [r for r in rows if not r["image_exists"]]
    assert gone == [{**gone[0], "image_id": GONE, "dead": 1, "containers": 1}]


# --- Consistency -------------------------------------------------------------------------


def check_consistency(catalog: Catalog, model: Model) -> None:
    usage = run(catalog, "usage-by-repository")
    for row in usage:
        assert row["unique_bytes"] + row["shared_bytes"] == row["total_bytes"]
        assert 0 <= row["unique_bytes"] <= row["total_bytes"]
    total = model.disk_total()
    shared_once = sum(
        size
        for chain, size in model.sizes().items()
        if chain in model.users()
        and len({g for i in model.counted() if chain in i.chains for g in model.groups(i)}) > 1
    )
    assert sum(row["unique_bytes"] for row in usage) + shared_once == total

    reclaim = run(catalog, "reclaimable")
    images = [r for r in reclaim if r["scope"] == "image"]
    totals = {r["scope"]: r["freed_bytes"] for r in reclaim if r["scope"] != "image"}
    assert sum(r["freed_bytes"] for r in images) <= totals["all"]
    assert sum(r["freed_bytes"] for r in images if r["dangling"]) <= totals["all dangling"]
    assert totals["all dangling"] <= totals["all"] <= total

    growth = run(catalog, "growth")
    assert sum(r["new_bytes"] for r in growth) == total
    assert (growth[-1]["cumulative_bytes"] if growth else 0) == total
    assert sum(r["images"] for r in growth) == len(model.counted())

    for row in run(catalog, "layer-sharing", limit=1000):
        assert row["saved_bytes"] == row["diff_size"] * (row["images"] - 1)


def test_consistency(built: Built) -> None:
    check_consistency(built.catalog, built.model)


def test_freed_is_what_deleting_really_frees(built: Built) -> None:
    """Each leaf candidate deleted alone (as `rmi -f`, parents pruned) releases exactly
    its FREED; `image prune` and `image prune -a` release the totals."""
    rows = run(built.catalog, "reclaimable")
    leaves = [
        r
        for r in rows
        if r["scope"] == "image"
        and not built.model.children(next(i for i in built.model.images if i.id == r["image_id"]))
    ]
    assert len(leaves) >= 4
    with built.catalog.database.write() as session:
        for row in leaves:
            savepoint = session.begin_nested()
            deleter = Deleter(session)
            deleter.delete(row["image_id"], force=True, prune=True)
            assert deleter.reclaimed == row["freed_bytes"], row
            savepoint.rollback()
        totals = {r["scope"]: r["freed_bytes"] for r in rows if r["scope"] != "image"}
        for flags, scope in (([], "all dangling"), (["dangling=false"], "all")):
            savepoint = session.begin_nested()
            report = delete_unused_images(
                session=session, filters=parse_filter_flags(flags), now=NOW
            )
            assert report.space_reclaimed == totals[scope], scope
            savepoint.rollback()


# --- A property over random small catalogs ---------------------------------------------

POOL = [layer((f"pool{i}", size)) for i, size in enumerate((0, 10, 200, 3000, 45))]
REPOSITORIES = ["one", "two", "quay.io/x/three"]


@st.composite
def catalogs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to 6 images: each a new stack or an existing one plus layers (then a child),
    with random tags (no tag given twice), times (or none) and containers."""
    plans: list[dict[str, Any]] = []
    free_tags = [f"{repo}:{tag}" for repo in REPOSITORIES for tag in ("a", "b", "c")]
    for index in range(draw(st.integers(1, 6))):
        stack = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3))
        parent = None
        if plans and draw(st.booleans()):
            parent = draw(st.integers(0, len(plans) - 1))
            stack = plans[parent]["layers"] + stack[:1]
        # Nine tags for up to six images: the last ones may find none left.
        tags = (
            draw(st.lists(st.sampled_from(free_tags), max_size=2, unique=True)) if free_tags else []
        )
        free_tags = [t for t in free_tags if t not in tags]
        days = draw(st.one_of(st.none(), st.integers(0, 70)))
        plans.append(
            {
                "layers": stack,
                "parent": parent,
                "tags": tags,
                "created": None if days is None else T0 + timedelta(days=days, minutes=index),
                "containers": draw(
                    st.lists(st.sampled_from(["created", "running", "exited"]), max_size=2)
                ),
            }
        )
    return plans


@pytest.fixture
def fresh_catalogs(
    new_db_url: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[[], Catalog]]:
    opened: list[Catalog] = []

    def make() -> Catalog:
        root = tmp_path / f"root{len(opened)}"
        location = Location(root=root, database_url=normalize_database_url(new_db_url()))
        opened.append(open_catalog(location))
        return opened[-1]

    yield make
    for catalog in opened:
        catalog.close()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=catalogs())
def test_reports_match_the_model_on_random_catalogs(
    fresh_catalogs: Callable[[], Catalog], plans: list[dict[str, Any]]
) -> None:
    catalog = fresh_catalogs()
    built = Built(catalog, ImageBuilder(catalog))
    ids: list[str] = []
    for plan in plans:
        parent = ids[plan["parent"]] if plan["parent"] is not None else None
        ids.append(
            built.image(
                plan["layers"],
                tags=plan["tags"],
                parent=parent,
                created=plan["created"],
                containers=plan["containers"],
            )
        )
    model = built.model
    assert run(catalog, "usage-by-repository") == model.usage_by_repository()
    assert run(catalog, "layer-sharing") == model.layer_sharing()
    assert run(catalog, "reclaimable") == model.reclaimable()
    assert run(catalog, "growth", period="month") == model.growth("month")
    assert run(catalog, "containers-by-image") == model.containers_by_image()
    cutoff = T0 + timedelta(days=30)
    assert run(
        catalog, "stale-tags", older_than="2024-01-31T00:00:00Z", max_tags=1
    ) == model.stale_tags(cutoff, 1)
    check_consistency(catalog, model)


# --- One statement, both dialects --------------------------------------------------------


@pytest.mark.parametrize("name", list(REPORTS))
def test_each_report_is_one_statement_for_both_backends(name: str) -> None:
    options = {
        "reclaimable": ReportOptions(older_than="720h"),
        "growth": ReportOptions(period="month"),
    }.get(name)
    statement = report_statement(name, options, now=NOW)
    for dialect, marker in ((sqlite.dialect(), "COLLATE BINARY"), (postgresql.dialect(), '"C"')):
        sql = str(statement.compile(dialect=dialect))
        assert sql.lstrip().upper().startswith(("WITH", "SELECT"))
        assert ";" not in sql
        assert marker in sql  # names and IDs sort by their bytes on both


def test_option_errors(catalog: Catalog) -> None:
    """Errors name an option as the caller spells it: by default its field name (the
    server's query parameter), with `option_names` the CLI's flag."""
    with catalog.database.read() as session:
        with pytest.raises(NotFound, match="no such report: 'nope'"):
            run_report(session=session, name="nope")
        with pytest.raises(InvalidArgument, match=r"^report growth takes no max_tags option$"):
            run_report(session=session, name="growth", options=ReportOptions(max_tags=3))
        flags = {"max_tags": "--max-tags", "older_than": "--older-than", "limit": "--limit"}

        def run(name: str, **options: Any) -> None:
            run_report(
                session=session, name=name, options=ReportOptions(**options), option_names=flags
            )

        with pytest.raises(InvalidArgument, match="report growth takes no --max-tags option"):
            run("growth", max_tags=3)
        with pytest.raises(InvalidArgument, match=r"invalid --older-than value: .*"):
            run("reclaimable", older_than="x")
        with pytest.raises(InvalidArgument, match="invalid --max-tags value: 0"):
            run("stale-tags", max_tags=0)
        with pytest.raises(InvalidArgument, match="invalid --limit value: -1"):
            run("layer-sharing", limit=-1)


def test_reports_of_an_empty_catalog(catalog: Catalog) -> None:
    for name in REPORTS:
        rows = run(catalog, name)
        if name == "reclaimable":
            assert [(r["scope"], r["images"], r["freed_bytes"]) for r in rows] == [
                ("all dangling", 0, 0),
                ("all", 0, 0),
            ]
        else:
            assert rows == [], name


# --- The CLI -------------------------------------------------------------------------


def test_cli_formats(built: Built, cli: Callable[..., Result], tmp_path: Path) -> None:
    expected = built.model.usage_by_repository()
    as_json = json.loads(cli("report", "usage-by-repository", "--format", "json").stdout)
    assert as_json == expected

    as_csv = list(
        csv.DictReader(io.StringIO(cli("report", "usage-by-repository", "--format", "csv").stdout))
    )
    assert [row["repository"] for row in as_csv] == [r["repository"] or "" for r in expected]
    assert [int(row["total_bytes"]) for row in as_csv] == [r["total_bytes"] for r in expected]

    table = cli("report", "usage-by-repository").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAGS", "IMAGES", "TOTAL", "UNIQUE", "SHARED"]
    # app: B1 B2 APP1 APP2 ONLY EMPTY; APP1@3 and ONLY are its own.
    assert table[1].split() == ["app", "3", "3", "10kB", "1.1kB", "8.9kB"]
    assert len(table) == 1 + len(expected)
    assert any(line.startswith("<none>") for line in table)

    out = tmp_path / "growth.json"
    assert (
        cli("report", "growth", "--period", "month", "--format", "json", "-o", str(out)).stdout
        == ""
    )
    growth = json.loads(out.read_text())
    assert [r["period"] for r in growth] == [r["period"] for r in built.model.growth("month")]


def test_cli_json_values_are_exact(built: Built, cli: Callable[..., Result]) -> None:
    rows = json.loads(cli("report", "reclaimable", "--format", "json").stdout)
    expected = built.model.reclaimable()
    assert [r["image_id"] for r in rows] == [r["image_id"] for r in expected]
    first = next(r for r in rows if r["scope"] == "image" and r["created"])
    assert first["created"].endswith("Z") and isinstance(first["dangling"], bool)
    table = cli("report", "reclaimable").stdout.splitlines()
    assert table[-1].split() == ["all", "6", human(expected[-1]["freed_bytes"])]


def human(size: int) -> str:
    return human_size(size, 4)


def test_cli_list(cli: Callable[..., Result]) -> None:
    text = cli("report", "--list").stdout
    for name in REPORTS:
        assert f"\n{name}: " in "\n" + text
    assert "UNIQUE + SHARED = TOTAL" in text
    registry = json.loads(cli("report", "--list", "--format", "json").stdout)
    assert [r["name"] for r in registry] == list(REPORTS)
    assert registry[1]["options"] == {"--limit": 20}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope"], 1, "Error: no such report: 'nope'"),
        (["growth", "--older-than", "1h"], 1, "Error: report growth takes no --older-than"),
        (["reclaimable", "--older-than", "soon"], 1, "Error: invalid --older-than value"),
        (["usage-by-repository", "--html", "x.html"], 2, "--html writes every report"),
        (["--list", "growth"], 2, "--list takes no report NAME"),
        (["--format", "json"], 2, "give a report NAME, --list or --html FILE"),
        (["growth", "--period", "year"], 2, "year"),
    ],
)
def test_cli_errors(cli: Callable[..., Result], args: list[str], code: int, message: str) -> None:
    result = cli("report", *args, exit_code=code)
    assert message in result.stderr
    if code == 1:
        assert result.stderr.count("\n") == 1


def test_cli_without_arguments_shows_help(cli: Callable[..., Result]) -> None:
    result = cli("report", exit_code=None)
    assert "Usage: catalog report" in result.output


def test_cli_write_failure(built: Built, cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("report", "growth", "-o", str(tmp_path / "missing" / "x"), exit_code=1)
    assert result.stderr.startswith("Error: cannot write ") and "No such file" in result.stderr


# --- The HTML page -----------------------------------------------------------------------


class Page(HTMLParser):
    """Elements, attributes and text of an HTML page, as the browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.svg_text: list[list[str]] = []
        self.style = ""
        self.sections: list[str] = []
        self.rows_by_section: dict[str, int] = {}
        self.section: str | None = None
        self.in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self.stack.append(tag)
        if tag == "svg":
            self.svg_text.append([])
        if tag == "section":
            self.section = attributes.get("id")
            assert self.section is not None
            self.sections.append(self.section)
            self.rows_by_section[self.section] = 0
        if tag == "tbody":
            self.in_tbody = True
        if tag == "tr" and self.in_tbody and self.section:
            self.rows_by_section[self.section] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_tbody = False
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if "style" in self.stack[-1:]:
            self.style += data
        if "svg" in self.stack and self.svg_text:
            self.svg_text[-1].append(data)


def test_html_report(built: Built, cli: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    cutoff = "2024-01-10T00:00:00Z"
    assert cli("report", "--html", str(path), "--older-than", cutoff).stdout == ""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = Page()
    page.feed(text)
    page.close()

    assert page.sections == list(REPORTS)
    names = [tag for tag, _ in page.tags]
    assert names.count("table") == len(REPORTS)
    expected_rows = {
        "usage-by-repository": len(built.model.usage_by_repository()),
        "layer-sharing": len(built.model.layer_sharing()),
        "reclaimable": len(built.model.reclaimable(datetime(2024, 1, 10, tzinfo=UTC))),
        "stale-tags": len(built.model.stale_tags(datetime(2024, 1, 10, tzinfo=UTC), 10)),
        "growth": len(built.model.growth()),
        "containers-by-image": len(built.model.containers_by_image()),
    }
    assert page.rows_by_section == expected_rows

    # Three charts, drawn (bars are paths), labelled with the catalog's own names.
    assert names.count("svg") == 3
    assert names.count("path") > 30
    usage, sharing, growth = ("".join(t) for t in page.svg_text)  # in section order
    assert "quay.io/team/app" in usage and "<none>" in usage
    assert "2024-01-01" in growth
    top_chain = built.model.layer_sharing()[0]["chain_id"]
    assert top_chain[7:19] in sharing
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids)), "element IDs are unique in the page"

    # Offline: no scripts, no linked styles, nothing fetched from anywhere.
    assert "script" not in names and "link" not in names and "img" not in names
    for _tag, attributes in page.tags:
        for key, value in attributes.items():
            if key in ("src", "href", "xlink:href", "action", "data"):
                assert value is not None and not value.lower().startswith(("http", "//")), (
                    key,
                    value,
                )
    assert "@import" not in page.style and "url(" not in page.style


def test_html_report_of_an_empty_catalog(cli: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    cli("report", "--html", str(path), "--period", "month")
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    assert [tag for tag, _ in page.tags].count("svg") == 0
    assert "Nothing to report." in path.read_text(encoding="utf-8")
    assert "--period month" in path.read_text(encoding="utf-8")


def test_week_start_in_sql_is_monday(built: Built) -> None:
    """Every week period is a Monday, as date.weekday() says."""
    for row in run(built.catalog, "growth"):
        if row["period"] is not None:
            assert date.fromisoformat(row["period"]).weekday() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # Were OverflowError and ValueError tracebacks (HTTP 500 through the server).
        (
            ["stale-tags", "--max-tags", "99999999999999999999"],
            "Error: invalid --max-tags value: 99999999999999999999 (must be between 1 and "
            "9223372036854775807)",
        ),
        (
            ["layer-sharing", "--limit", "9223372036854775808"],
            "Error: invalid --limit value: 9223372036854775808 (must be between 1 and "
            "9223372036854775807)",
        ),
        (
            ["stale-tags", "--older-than", "99999999999999999999"],
            "Error: invalid --older-than value: failed to parse value as time or duration: "
            'invalid seconds "99999999999999999999": value out of range',
        ),
    ],
)
def test_cli_out_of_range_options(
    cli: Callable[..., Result], args: list[str], message: str
) -> None:
    result = cli("report", *args, exit_code=1)
    assert result.stderr == message + "\n"


def test_cli_extreme_but_valid_options(built: Built, cli: Callable[..., Result]) -> None:
    """A time past year 9999 is the last one a catalog holds: every image is older."""
    rows = json.loads(
        cli("report", "stale-tags", "--older-than", "99999999999", "--format", "json").stdout
    )
    expected = built.model.stale_tags(datetime.max.replace(tzinfo=UTC), 10)
    assert [(r["repository"], r["tag"]) for r in rows] == [
        (r["repository"], r["tag"]) for r in expected
    ]
    assert rows and all(row["older_than_cutoff"] for row in rows)
    limited = json.loads(
        cli("report", "layer-sharing", "--limit", "9223372036854775807", "--format", "json").stdout
    )
    assert limited == json.loads(cli("report", "layer-sharing", "--format", "json").stdout)


def test_periods_of_the_last_microsecond_of_a_day(catalog: Catalog) -> None:
    """SQLite rounds times to milliseconds in its date functions: 23:59:59.9996 on a
    Sunday counted in the next week, and the last microsecond of 9999 in no period."""
    builder = ImageBuilder(catalog)
    builder.add(
        [layer_tar({"a": b"a"})], created=datetime(2024, 1, 7, 23, 59, 59, 999999, tzinfo=UTC)
    )
    builder.add([layer_tar({"b": b"b"})], created=datetime.max.replace(tzinfo=UTC))
    weeks = [row["period"] for row in run(catalog, "growth")]
    assert weeks == ["2024-01-01", "9999-12-27"]
    months = [row["period"] for row in run(catalog, "growth", period="month")]
    assert months == ["2024-01", "9999-12"]

"""The baseline: Docker's graphdriver `Images()` ported to Python, over in-memory objects.

A faithful port of moby `daemon/images/image_list.go` and `ImageDiskUsage`
(docs/listing.md §4.1, §6.1 and §9), over the structures the daemon keeps in memory: an image
store (config JSON parsed per image, children sets), a layer store (read-only layers linked to
their parents), a reference store and the container list. `load()` reads a catalog's
rows into those structures (the daemon's start-up, timed apart); `images()` and
`disk_usage()` then answer as moby does:

- every image of `Map()` (or `Heads()` for dangling=true) visited, filters applied per
  image; the size from `layerStore.Get(RootFS.ChainID()).Size()`, which walks the
  parents; each image's references copied and sorted from the reference store;
- the container count scanned over the whole container list for every listed image
  (`for _, c := range allContainers { if c.ImageID == id ... }`): O(images x containers);
- for shared sizes, `layerRefs[chainID]++` over every image's chain prefixes, each chain
  ID recomputed from the diff IDs by hashing (`rootFS.Append(id); rootFS.ChainID()`).

Two deliberate departures, both in the baseline's favour or neutral: the container scan
runs as `list.count` (the same comparisons, in C, as Go's loop would be, not at Python's
per-iteration cost), and `label!` is accepted with the semantics catalog implements
(containerd's), which the graphdriver refuses; reference filters use the docker >= 29.5
targets, as catalog does. Its answers are checked equal to catalog's
(`summaries_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.docker.filters import FilterArgs, label_checks
from catalog.docker.gotime import GoTimeError, parse_docker_timestamp
from catalog.docker.pathmatch import BadPattern, path_match
from catalog.domain.imageconfig import parse_timestamp
from catalog.domain.reference import (
    DigestReference,
    Named,
    familiar_name,
    familiar_string,
    parse_any_reference,
    tag_name_only,
)
from catalog.errors import InvalidFilter, NotFound
from catalog.services.listing import LIST_FILTERS
from catalog.services.refstore import stored_reference


@dataclass(slots=True)
class DockerImage:
    """image.Image: what the daemon holds of one config."""

    id: str
    parent: str
    created: datetime | None
    os: str
    has_config: bool
    labels: dict[str, str] | None
    diff_ids: list[str]


@dataclass(slots=True)
class ReadOnlyLayer:
    """layer.roLayer: its own diff size and its parent."""

    chain_id: str
    diff_size: int
    parent: ReadOnlyLayer | None

    def size(self) -> int:
        # moby ro_layer.go Size(): the diff sizes of the whole chain, walking parents.
        size, parent = self.diff_size, self.parent
        while parent is not None:
            size += parent.diff_size
            parent = parent.parent
        return size


@dataclass(slots=True)
class DockerContainer:
    id: str
    image_id: str
    state: str


@dataclass
class DaemonState:
    images: dict[str, DockerImage]
    children: dict[str, set[str]]
    layers: dict[str, ReadOnlyLayer]
    references: dict[str, dict[str, Named]]  # image ID -> reference string -> reference
    by_reference: dict[str, str]  # reference string -> image ID
    containers: list[DockerContainer]
    container_image_ids: list[str] = field(default_factory=list)

    # --- image store -------------------------------------------------------------------

    def map(self) -> dict[str, DockerImage]:
        return dict(self.images)

    def heads(self) -> dict[str, DockerImage]:
        return {i: image for i, image in self.images.items() if not self.children.get(i)}

    # --- reference store ---------------------------------------------------------------

    def references_of(self, image_id: str) -> list[Named]:
        # refstore.References: a copy, sorted by the full string (lexicalRefs).
        found = list(self.references.get(image_id, {}).values())
        found.sort(key=str)
        return found

    def get_image(self, term: str) -> DockerImage:
        """GetImage (docs/references.md §5), enough for before/since names and IDs."""
        reference = parse_any_reference(term)
        if isinstance(reference, DigestReference):
            image = self.images.get(reference.digest)
            if image is None:
                raise NotFound(f"No such image: {reference}")
            return image
        found = self.by_reference.get(str(tag_name_only(reference)))
        if found is not None:
            return self.images[found]
        prefix = term.removeprefix("sha256:")
        matches = [i for i in self.images if i[7:].startswith(prefix)]
        if len(matches) == 1:
            return self.images[matches[0]]
        raise NotFound(f"No such image: {familiar_string(tag_name_only(reference))}")


def create_chain_id(diff_ids: list[str]) -> str:
    """layer.CreateChainID: the chain recomputed from the diff IDs, hashing each step."""
    if not diff_ids:
        return ""
    chain = diff_ids[0]
    for diff_id in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
    return chain


def load(session: Session) -> DaemonState:
    """The daemon's start-up: every config parsed, layers linked, references, containers."""
    images: dict[str, DockerImage] = {}
    children: dict[str, set[str]] = defaultdict(set)
    parents: dict[str, str | None] = dict(
        session.execute(text("SELECT id, parent_id FROM images")).all()
    )
    for image_id, config in session.execute(text("SELECT image_id, config FROM image_configs")):
        document = json.loads(config)
        labels = (document.get("config") or {}).get("Labels")
        created = document.get("created")
        parent = parents.get(image_id) or ""
        images[image_id] = DockerImage(
            id=image_id,
            parent=parent,
            created=parse_timestamp(created) if created else None,
            os=document.get("os", ""),
            has_config=document.get("config") is not None,
            labels=labels,
            diff_ids=list(document["rootfs"]["diff_ids"]),
        )
        if parent:
            children[parent].add(image_id)
    rows = session.execute(text("SELECT chain_id, parent_chain_id, diff_size FROM layers"))
    pending = {chain: (parent, size) for chain, parent, size in rows}
    layers: dict[str, ReadOnlyLayer] = {}

    def link(chain: str) -> ReadOnlyLayer:
        stack = []
        while chain not in layers:
            stack.append(chain)
            parent = pending[chain][0]
            if parent is None:
                break
            chain = parent
        for chain_id in reversed(stack):
            parent, size = pending[chain_id]
            layers[chain_id] = ReadOnlyLayer(
                chain_id, size, layers[parent] if parent is not None else None
            )
        return layers[stack[0]] if stack else layers[chain]

    for chain in pending:
        link(chain)
    references: dict[str, dict[str, Named]] = defaultdict(dict)
    by_reference: dict[str, str] = {}
    for repository, tag, digest, image_id in session.execute(
        text("SELECT repository, tag, digest, image_id FROM image_references")
    ):
        reference = stored_reference(repository, tag, digest)
        references[image_id][str(reference)] = reference
        by_reference[str(reference)] = image_id
    containers = [
        DockerContainer(container_id, image_id, state)
        for container_id, image_id, state in session.execute(
            text("SELECT id, image_id, state FROM containers")
        )
    ]
    state = DaemonState(images, dict(children), layers, dict(references), by_reference, containers)
    return state


def _match_reference(patterns: list[str], reference: Named) -> bool:
    targets = (
        familiar_string(reference),
        familiar_name(reference),
        str(tag_name_only(reference)),
        reference.name,
    )
    try:
        return any(path_match(p, t) for p in patterns for t in targets)
    except BadPattern as exc:
        raise InvalidFilter(str(exc)) from None


def images(
    state: DaemonState,
    filters: FilterArgs | None = None,
    *,
    all_images: bool = False,
    shared_size: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """moby ImageService.Images(filters, all, sharedSize), summaries as the API sends them."""
    args = filters or FilterArgs()
    now = now or datetime.now().astimezone()
    args.validate(LIST_FILTERS)
    dangling_only = args.get_bool_or_default("dangling", False)
    before: datetime | None = None
    for value in args.get("before"):
        created = state.get_image(value).created
        if created is not None and (before is None or created < before):
            before = created
    for value in args.get("until"):
        try:
            until = parse_docker_timestamp(value, now)
        except GoTimeError as exc:
            raise InvalidFilter(f"invalid value for 'until' filter: {exc}") from None
        if before is None or until < before:
            before = until
    since: datetime | None = None
    for value in args.get("since"):
        created = state.get_image(value).created
        if created is not None and (since is None or created > since):
            since = created
    checks = label_checks(args)
    patterns = args.get("reference")
    has_reference = "reference" in args
    has_dangling = "dangling" in args

    selected = state.heads() if dangling_only else state.map()
    summaries: list[dict[str, Any]] = []
    listed: list[tuple[DockerImage, dict[str, Any]]] = []
    all_containers: list[str] | None = None
    for image_id, image in selected.items():
        if before is not None and (image.created is None or not image.created < before):
            continue
        if since is not None and (image.created is None or not image.created > since):
            continue
        if checks:
            if not image.has_config:
                continue
            labels = image.labels or {}
            if not all(
                (c.key in labels and (c.value is None or labels[c.key] == c.value)) != c.negate
                for c in checks
            ):
                continue
        if image.os not in ("linux", ""):
            continue
        size = 0
        if image.diff_ids:
            layer = state.layers.get(create_chain_id(image.diff_ids))
            if layer is None:
                continue  # deleted between Map() and Get()
            size = layer.size()
        repo_tags: list[str] = []
        repo_digests: list[str] = []
        for reference in state.references_of(image_id):
            if has_reference and not _match_reference(patterns, reference):
                continue
            if reference.digest is not None:
                repo_digests.append(familiar_string(reference))
            if reference.tag is not None and reference.digest is None:
                repo_tags.append(familiar_string(reference))
        if not repo_tags and not repo_digests:
            if all_images or not state.children.get(image_id):
                if has_dangling and not dangling_only:
                    continue
                if has_reference:
                    continue
            else:
                continue
        elif dangling_only and repo_tags:
            continue
        if all_containers is None:
            all_containers = [c.image_id for c in state.containers]
        summary = {
            "Containers": all_containers.count(image_id),
            "Created": int(image.created.timestamp()) if image.created is not None else 0,
            "Id": image_id,
            "Labels": image.labels,
            "ParentId": image.parent,
            "RepoDigests": repo_digests,
            "RepoTags": repo_tags,
            "SharedSize": -1,
            "Size": size,
        }
        summaries.append(summary)
        listed.append((image, summary))

    if shared_size:
        layer_refs: dict[str, int] = defaultdict(int)
        for image in state.images.values():
            for k in range(1, len(image.diff_ids) + 1):
                layer_refs[create_chain_id(image.diff_ids[:k])] += 1
        for image, summary in listed:
            shared = 0
            for k in range(1, len(image.diff_ids) + 1):
                chain = create_chain_id(image.diff_ids[:k])
                if layer_refs[chain] > 1:
                    layer = state.layers.get(chain)
                    if layer is None:
                        raise RuntimeError(f"layer {chain} was not found (corruption?)")
                    shared += layer.diff_size
            summary["SharedSize"] = shared
    summaries.sort(key=lambda s: s["Created"], reverse=True)
    return summaries


def disk_usage(state: DaemonState) -> dict[str, Any]:
    """/system/df for images and containers: Images(shared) plus ImageDiskUsage."""
    listed = images(state, shared_size=True)
    # getLayerRefs: every image's chain, except untagged images with children.
    used: set[str] = set()
    for image_id, image in state.images.items():
        if not state.references.get(image_id) and state.children.get(image_id):
            continue
        if image.diff_ids:
            chain = state.layers.get(create_chain_id(image.diff_ids))
            while chain is not None:
                used.add(chain.chain_id)
                chain = chain.parent
    total = sum(state.layers[chain].diff_size for chain in used)
    return {
        "ActiveCount": sum(1 for s in listed if s["Containers"] > 0),
        "Reclaimable": sum(s["Size"] - s["SharedSize"] for s in listed if s["Containers"] == 0),
        "TotalCount": len(listed),
        "TotalSize": total,
        "Items": listed,
        "Containers": len(state.containers),
        "Running": sum(1 for c in state.containers if c.state == "running"),
    }


def summaries_fingerprint(summaries: Iterable[dict[str, Any]]) -> str:
    """A digest of summaries in ID order: equal answers, whatever the order of ties."""
    ordered = sorted(summaries, key=lambda s: str(s["Id"]))
    return hashlib.sha256(json.dumps(ordered, sort_keys=True).encode()).hexdigest()[:16]

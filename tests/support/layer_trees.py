"""Comparing filesystem trees built from layer tars (catalog.domain.changeset), for the squash
invariant of docs/layers-and-squash.md §3.2: apply(B + [S]) == apply(B + R)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from catalog.domain.changeset import Content, ContentReader, Tree, apply_layers, squash_layers
from catalog.domain.digest import sha256_digest
from catalog.storage.archive.formats import read_archive
from catalog.storage.archive.source import open_archive
from catalog.storage.compression import open_decompressed

TYPE_NAMES = {
    tarfile.REGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


@dataclass(frozen=True)
class TreeView:
    """Everything a tree says, contents by sha256: entries by path, and the hardlink
    groups (paths sharing an inode, groups of two or more)."""

    entries: dict[str, tuple[object, ...]]
    groups: frozenset[frozenset[str]]

    def content(self, path: str) -> str | None:
        return self.entries[path][4]  # type: ignore[return-value]

    def kind(self, path: str) -> str:
        return self.entries[path][0]  # type: ignore[return-value]

    def mode(self, path: str) -> int:
        return self.entries[path][1]  # type: ignore[return-value]

    def target(self, path: str) -> str:
        return self.entries[path][5]  # type: ignore[return-value]


def view(tree: Tree, open_layer: Callable[[str], BinaryIO]) -> TreeView:
    entries: dict[str, tuple[object, ...]] = {}
    digests: dict[Content, str] = {}
    with ContentReader(open_layer) as reader:
        for path, inode in tree.nodes.items():
            digest = None
            if inode.content is not None:
                digest = digests.get(inode.content)
                if digest is None:
                    hasher = hashlib.sha256()
                    for chunk in reader.chunks(inode.content):
                        hasher.update(chunk)
                    digest = digests[inode.content] = hasher.hexdigest()
            entries[path] = (
                TYPE_NAMES[inode.type],
                inode.mode,
                inode.uid,
                inode.gid,
                digest,
                inode.linkname,
                inode.records,
                inode.devmajor,
                inode.devminor,
                inode.mtime,
                inode.uname,
                inode.gname,
            )
    groups = frozenset(frozenset(paths) for paths in tree.groups().values() if len(paths) > 1)
    return TreeView(entries=entries, groups=groups)


class LayerSet:
    """Layer tars in memory, by key (their diff ID), opened as seekable streams."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, tar: bytes) -> str:
        key = sha256_digest(tar)
        self.blobs[key] = tar
        return key

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.blobs[key])

    def tree(self, keys: Sequence[str]) -> Tree:
        return apply_layers(keys, self.open)

    def view(self, keys: Sequence[str]) -> TreeView:
        return view(self.tree(keys), self.open)


@dataclass(frozen=True)
class Entry:
    """One entry of a squashed layer, as read back."""

    name: str
    type: bytes
    linkname: str
    data: bytes
    mode: int
    pax: dict[str, str]

    @property
    def whiteout(self) -> bool:
        return self.name.rsplit("/", 1)[-1].startswith(".wh.")


@dataclass(frozen=True)
class Squash:
    """A squash and what it gives: the layer S, its entries, and the two trees."""

    layer: bytes
    entries: list[Entry]
    expected: TreeView  # apply(B + R + above)
    actual: TreeView  # apply(B + [S] + above)

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def entry(self, name: str) -> Entry:
        (found,) = [entry for entry in self.entries if entry.name == name]
        return found


def read_entries(layer: bytes) -> list[Entry]:
    entries = []
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:", encoding="utf-8") as tar:
        for member in tar:
            data = b""
            if member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None
                data = extracted.read()
            entries.append(
                Entry(
                    name=member.name,
                    type=member.type,
                    linkname=member.linkname,
                    data=data,
                    mode=member.mode,
                    pax=dict(member.pax_headers),
                )
            )
    return entries


def squash(base: Sequence[bytes], squashed: Sequence[bytes], above: Sequence[bytes] = ()) -> Squash:
    """Squash `squashed` on `base`, check the invariant (with `above` applied on top of
    both) and that writing again gives the same bytes; return what it gave."""
    layers = LayerSet()
    b = [layers.add(tar) for tar in base]
    r = [layers.add(tar) for tar in squashed]
    a = [layers.add(tar) for tar in above]
    out = io.BytesIO()
    written = squash_layers(b, r, layers.open, out)
    layer = out.getvalue()
    assert written.size == len(layer)
    again = io.BytesIO()
    squash_layers(b, r, layers.open, again)
    assert again.getvalue() == layer, "squashing is not deterministic"
    s = layers.add(layer)
    expected = layers.view([*b, *r, *a])
    actual = layers.view([*b, s, *a])
    assert actual == expected, diff_views(expected, actual)
    entries = read_entries(layer)
    check_layer_shape(entries, base_is_empty=not base)
    return Squash(layer=layer, entries=entries, expected=expected, actual=actual)


def check_layer_shape(entries: Sequence[Entry], *, base_is_empty: bool) -> None:
    """What every squashed layer must look like (docs/layers-and-squash.md §3.4)."""
    names = [entry.name.rstrip("/") for entry in entries]
    assert len(names) == len(set(names)), "duplicate entries"
    seen: set[str] = set()
    targets: set[str] = set()
    for entry in entries:
        name = entry.name.rstrip("/")
        parent, _, base = name.rpartition("/")
        # Directories come before their children.
        assert not parent or parent in seen or parent not in names, f"{name} before {parent}"
        if entry.whiteout:
            assert not base_is_empty, f"whiteout {name} in a full flatten"
            assert base != ".wh..wh..opq"
            target = (parent + "/" if parent else "") + base[len(".wh.") :]
            assert target not in names, f"{name} and {target} in one layer"
            targets.add(target)
        if entry.type == tarfile.LNKTYPE:
            assert entry.linkname in seen, f"hardlink {name} before its target"
        seen.add(name)
    # No whiteout below another whiteout's target.
    for target in targets:
        parent = target.rpartition("/")[0]
        while parent:
            assert parent not in targets, f"whiteout below whiteout of {parent}"
            parent = parent.rpartition("/")[0]


def diff_views(expected: TreeView, actual: TreeView) -> str:
    lines = []
    for path in sorted(set(expected.entries) | set(actual.entries)):
        want, got = expected.entries.get(path), actual.entries.get(path)
        if want != got:
            lines.append(f"{path}: expected {want}, got {got}")
    if expected.groups != actual.groups:
        lines.append(f"groups: expected {set(expected.groups)}, got {set(actual.groups)}")
    return "\n".join(lines[:40])


def archive_layers(path: Path, temporary_dir: Path) -> list[list[bytes]]:
    """The uncompressed layer tars of each image of an image archive, bottom first."""
    temporary_dir.mkdir(parents=True, exist_ok=True)
    result = []
    with open_archive(path, temporary_dir=temporary_dir) as archive:
        for image in read_archive(archive).images:
            layers = []
            for source in image.layers:
                with archive.open(source.path) as stream:
                    decompressed, _, _ = open_decompressed(stream)
                    layers.append(decompressed.read())
            result.append(layers)
    return result

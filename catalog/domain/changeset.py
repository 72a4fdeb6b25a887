"""Layer changesets: applying layer tars to an index of entries, and squashing a range of
layers into one, as a diff of two snapshots (docs/layers-and-squash.md §2, §3).

Pure: no SQLAlchemy, no Typer, and nothing is ever extracted to the host
(docs/layers-and-squash.md §2.1).

The index. A `Tree` maps each path (normalized with `normalize_entry_name`: `./a/`, `/a`
and `a` are one path; the root itself is never an entry) to an `Inode`: its type, mode,
owner, mtime, size, symlink target, device numbers, PAX records (xattrs) and, for a
regular file, a `Content` reference: which layer tar and where its bytes start in it
(`TarInfo.offset_data`). Contents are never read while applying, so memory grows with
the number of entries, never with file sizes. Paths that share one `Inode` object are a
hardlink group.

Applying a layer (`Tree.apply_layer`) reads it once as a tar stream (`r|`), checking every
entry with `check_entry`, with tar extraction's semantics as the OCI layer specification
and moby define them (docs/layers-and-squash.md §2):

* entries in order, the last of duplicates winning; a directory over a directory replaces
  only its attributes; any other entry replaces the path, a whole subtree included;
* missing parents are implied: directories 0755, owned 0:0, mtime 0 (moby MkdirAll);
* `.wh.<name>` deletes `<name>` and its subtree from *lower* layers. A whiteout that
  follows an entry of its own layer at or below its target is rejected as ambiguous:
  the OCI layer specification keeps that entry, moby deletes it (`[f, .wh.f]` in one
  layer, docs/layers-and-squash.md §2.9);
  `[.wh.f, f]` is fine (the whiteout, then the new `f`);
* `<dir>/.wh..wh..opq` hides everything below `<dir>` from lower layers, wherever it is
  in its layer: this layer's own entries (and the directories leading to them) stay. A
  lower directory kept only as the parent of this layer's entries, with no entry of its
  own, becomes an implied directory, so the result does not depend on where the marker
  is in the layer;
* top-level `.wh..wh.*` names are AUFS metadata and are skipped, except the opaque marker
  of the root; regular files under `.wh..wh.plnk/` are kept aside only so that hardlinks
  into that directory become copies of them, as moby resolves them;
* a hardlink names a path that must exist (re-rooted if absolute) and not be a directory;
  it joins that path's inode (link(2): the inode keeps its own attributes, the link
  header's are ignored). Overwriting or deleting one path of a group later leaves the
  others with the old inode;
* paths are taken lexically: an entry, whiteout or opaque marker below a symlink is
  rejected (moby would write through the link; ggcr would not: ambiguous,
  docs/layers-and-squash.md §2.8), and
  one below a regular file is rejected as extraction would fail;
* root entries (`./`, `/`) must be directories and are ignored, as moby skips `.`.

Squashing (`squash_layers`): with `before = apply(B)` and `after = apply(B + R)`, the new
layer S holds (docs/layers-and-squash.md §3.2):

* every path of `after` that is new or changed; a directory whose attributes are equal in
  both is unchanged, any other path is changed unless it is the very same inode;
* every path of a hardlink group one of whose paths is written, so groups come out whole
  (stronger than materialising a link whose target lives only in B: the base's paths of
  the group are written again, with the same content, and the group survives);
* a whiteout for each topmost path of `before` missing from `after`, unless its parent is
  a non-directory in `after` (the replacement removes the subtree already); so no
  whiteouts at all when B is empty, and never `x` and `.wh.x` in one layer.

The tar. Entries go depth first: in each directory its whiteouts first, then its entries,
each sorted by the bytes of its name; a directory before its children. The first path of
a hardlink group is written in full, the others as hardlinks to it. Headers are PAX
(tarfile's encoder, UTF-8 with surrogate escapes so that binary xattrs and names keep
their bytes). Records tarfile itself maps to header fields, `atime`/`ctime` (moby drops
them) and PAX global headers (moby ignores them) are not kept; all other records,
`SCHILY.xattr.*` included, are written back byte for byte. The archive ends with two zero
blocks and no further padding, as Go's archive/tar writes it, so an empty S is moby's
empty layer, `sha256:5f70bf18…`.

Mtime policy, for reproducible diff IDs: each entry keeps the mtime of the layer entry it
came from; implied directories and whiteouts get mtime 0. Nothing depends on the clock,
so the same layers always give the same bytes. Contents are copied in chunks from the
stored layer tars (seek to the offset, read at most `CHUNK_SIZE` at a time).
"""

from __future__ import annotations

import dataclasses
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from catalog.domain.layertar import (
    OPAQUE_WHITEOUT,
    WHITEOUT_PREFIX,
    check_entry,
    normalize_entry_name,
)
from catalog.errors import InvalidArchive

__all__ = [
    "CHUNK_SIZE",
    "Change",
    "Content",
    "ContentReader",
    "Inode",
    "LayerOpener",
    "Output",
    "SquashedLayer",
    "Tree",
    "apply_layers",
    "plan_changes",
    "squash_layers",
    "write_changes",
]

CHUNK_SIZE = 1 << 20
ENCODING = "utf-8"
ERRORS = "surrogateescape"
AUFS_META_PREFIX = WHITEOUT_PREFIX + WHITEOUT_PREFIX  # ".wh..wh."
AUFS_LINK_DIR = AUFS_META_PREFIX + "plnk"
IMPLIED_DIRECTORY_MODE = 0o755
# PAX records that tarfile turns into header fields (so they are written back from those
# fields), plus times moby drops and tarfile's own charset marker.
_FIELD_RECORDS = frozenset(
    {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime"}
    | {"atime", "ctime", "hdrcharset"}
)
_REGULAR_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})


class Output(Protocol):
    """Where a layer tar is written: a binary file, a `BlobWriter`."""

    def write(self, data: bytes, /) -> object: ...


# Opens the uncompressed tar of a layer (by the key it was applied under) for reading;
# seekable when contents are to be copied from it.
LayerOpener = Callable[[str], BinaryIO]


@dataclass(frozen=True, slots=True)
class Content:
    """Where a regular file's bytes are: `size` bytes at `offset` in layer `layer`."""

    layer: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True, eq=False)
class Inode:
    """What one or more paths (a hardlink group) are. Compared by identity; `attributes`
    compares by value."""

    type: bytes  # tarfile type: REGTYPE, DIRTYPE, SYMTYPE, CHRTYPE, BLKTYPE or FIFOTYPE
    mode: int
    uid: int
    gid: int
    uname: str = ""
    gname: str = ""
    mtime: int | float = 0
    linkname: str = ""  # a symlink's target, verbatim
    devmajor: int = 0
    devminor: int = 0
    records: tuple[tuple[str, str], ...] = ()  # PAX records kept (xattrs ...), sorted
    content: Content | None = None

    @property
    def is_dir(self) -> bool:
        return self.type == tarfile.DIRTYPE

    @property
    def size(self) -> int:
        return self.content.size if self.content is not None else 0

    def attributes(self) -> tuple[object, ...]:
        return (
            self.type,
            self.mode,
            self.uid,
            self.gid,
            self.uname,
            self.gname,
            self.mtime,
            self.linkname,
            self.devmajor,
            self.devminor,
            self.records,
            self.content,
        )

    @property
    def xattrs(self) -> dict[str, bytes]:
        """`SCHILY.xattr.*` records, by attribute name, as bytes."""
        prefix = "SCHILY.xattr."
        return {
            key[len(prefix) :]: value.encode(ENCODING, ERRORS)
            for key, value in self.records
            if key.startswith(prefix)
        }


def _implied_directory() -> Inode:
    return Inode(type=tarfile.DIRTYPE, mode=IMPLIED_DIRECTORY_MODE, uid=0, gid=0)


def _parent(path: str) -> str:
    return posixpath.dirname(path)


def _ancestors(path: str) -> Iterator[str]:
    """`a/b/c` -> `a/b`, `a` (the root "" not included)."""
    parent = _parent(path)
    while parent:
        yield parent
        parent = _parent(parent)


def _kind(inode: Inode) -> str:
    return {
        tarfile.DIRTYPE: "a directory",
        tarfile.SYMTYPE: "a symlink",
        tarfile.CHRTYPE: "a character device",
        tarfile.BLKTYPE: "a block device",
        tarfile.FIFOTYPE: "a FIFO",
    }.get(inode.type, "a file")


@dataclass
class _LayerState:
    """What one layer has done so far (for whiteouts, opaque markers and AUFS links)."""

    paths: set[str] = field(default_factory=set)  # entries of this layer
    ancestors: set[str] = field(default_factory=set)  # directories above them
    aufs_links: dict[str, Inode] = field(default_factory=dict)


class Tree:
    """A filesystem as an index: path -> Inode, and each directory's children."""

    def __init__(self) -> None:
        self.nodes: dict[str, Inode] = {}
        self._children: dict[str, set[str]] = {"": set()}

    def copy(self) -> Tree:
        other = Tree()
        other.nodes = dict(self.nodes)
        other._children = {path: set(names) for path, names in self._children.items()}
        return other

    def __contains__(self, path: object) -> bool:
        return path in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, path: str) -> Inode | None:
        return self.nodes.get(path)

    def children(self, path: str) -> set[str]:
        """The paths directly below directory `path` ("" is the root)."""
        return self._children.get(path, set())

    def groups(self) -> dict[int, list[str]]:
        """Paths by inode (`id(inode)`), for every non-directory path."""
        result: dict[int, list[str]] = {}
        for path, inode in self.nodes.items():
            if not inode.is_dir:
                result.setdefault(id(inode), []).append(path)
        return result

    # --- Changing the index ---

    def _set(self, path: str, inode: Inode) -> None:
        previous = self.nodes.get(path)
        if previous is not None and previous.is_dir and not inode.is_dir:
            self._remove_below(path)
        self.nodes[path] = inode
        self._children[_parent(path)].add(path)
        if inode.is_dir:
            self._children.setdefault(path, set())

    def _remove(self, path: str) -> None:
        if path not in self.nodes:
            return
        self._remove_below(path)
        del self.nodes[path]
        self._children[_parent(path)].discard(path)

    def _remove_below(self, path: str) -> None:
        """Drop everything below `path` (whose own node the caller replaces or drops)."""
        stack = list(self._children.pop(path, ()))
        while stack:
            current = stack.pop()
            del self.nodes[current]
            stack.extend(self._children.pop(current, ()))

    def _make_parents(self, path: str, name: str, state: _LayerState) -> None:
        """Check (or imply) the directories above `path`, an entry named `name`."""
        ancestors = list(_ancestors(path))
        state.ancestors.update(ancestors)
        missing: list[str] = []
        for ancestor in ancestors:
            inode = self.nodes.get(ancestor)
            if inode is None:
                missing.append(ancestor)
                continue
            if inode.type == tarfile.SYMTYPE:
                raise InvalidArchive(
                    f"invalid layer: entry {name!r} is below {ancestor!r}, a symlink: "
                    "writing through a symlink is ambiguous"
                )
            if not inode.is_dir:
                raise InvalidArchive(
                    f"invalid layer: entry {name!r} is below {ancestor!r}, which is "
                    f"{_kind(inode)}, not a directory"
                )
            break
        for ancestor in reversed(missing):
            self._set(ancestor, _implied_directory())

    def _symlink_at_or_above(self, directory: str, name: str) -> None:
        """Refuse whiteout `name` when the nearest existing one of `directory` and its
        ancestors is a symlink: moby would delete through it, ggcr would not."""
        for path in (directory, *_ancestors(directory)) if directory else ():
            inode = self.nodes.get(path)
            if inode is None:
                continue
            if inode.type == tarfile.SYMTYPE:
                raise InvalidArchive(
                    f"invalid layer: whiteout {name!r} is below {path!r}, a symlink: "
                    "deleting through a symlink is ambiguous"
                )
            return

    # --- Applying layers ---

    def apply_layer(self, key: str, stream: BinaryIO) -> None:
        """Apply the uncompressed layer tar `stream` (read once, in order); contents are
        referenced under `key`. InvalidArchive for a bad or ambiguous entry."""
        state = _LayerState()
        try:
            with tarfile.open(fileobj=stream, mode="r|", encoding=ENCODING, errors=ERRORS) as tar:
                while (member := tar.next()) is not None:
                    # tarfile keeps every member it has read; a layer may have millions.
                    del tar.members[:]  # type: ignore[attr-defined]  # not in typeshed
                    self._apply_entry(key, member, tar.pax_headers, state)
        except tarfile.ReadError as exc:
            if str(exc) != "empty file":  # a 0-byte legacy layer.tar is an empty layer
                raise InvalidArchive(f"invalid layer {key}: not a valid tar: {exc}") from None
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidArchive(f"invalid layer {key}: truncated or corrupt: {exc}") from None

    def _apply_entry(
        self,
        key: str,
        member: tarfile.TarInfo,
        global_records: Mapping[str, str],
        state: _LayerState,
    ) -> None:
        path = check_entry(member)
        name = member.name
        if member.sparse is not None:
            raise InvalidArchive(f"invalid layer: sparse file {name!r} is not supported")
        if not path:
            if not member.isdir():
                raise InvalidArchive(f"invalid layer: root entry {name!r} is not a directory")
            return
        base = posixpath.basename(path)

        if path.startswith(AUFS_META_PREFIX) and path != OPAQUE_WHITEOUT:
            # AUFS metadata: skipped; its hardlink directory's files kept aside for links.
            if path.startswith(AUFS_LINK_DIR + "/") and member.isreg():
                state.aufs_links[base] = self._inode(key, member, global_records)
            return
        if base == OPAQUE_WHITEOUT:
            self._apply_opaque(_parent(path), name, state)
            return
        if base.startswith(WHITEOUT_PREFIX):
            target = posixpath.join(_parent(path), base[len(WHITEOUT_PREFIX) :])
            self._apply_whiteout(target, name, state)
            return

        if member.islnk():
            inode = self._link_target(member, state)
        else:
            inode = self._inode(key, member, global_records)
        self._make_parents(path, name, state)
        self._set(path, inode)
        state.paths.add(path)

    def _inode(self, key: str, member: tarfile.TarInfo, global_records: Mapping[str, str]) -> Inode:
        records = tuple(
            sorted(
                (k, v)
                for k, v in member.pax_headers.items()
                if k not in _FIELD_RECORDS and global_records.get(k) != v
            )
        )
        kind = tarfile.REGTYPE if member.type in _REGULAR_TYPES else member.type
        is_device = kind in (tarfile.CHRTYPE, tarfile.BLKTYPE)
        return Inode(
            type=kind,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            uname=member.uname,
            gname=member.gname,
            mtime=member.mtime,
            linkname=member.linkname if kind == tarfile.SYMTYPE else "",
            devmajor=member.devmajor if is_device else 0,
            devminor=member.devminor if is_device else 0,
            records=records,
            content=Content(key, member.offset_data, member.size)
            if kind == tarfile.REGTYPE
            else None,
        )

    def _link_target(self, member: tarfile.TarInfo, state: _LayerState) -> Inode:
        # check_entry has made sure the target stays inside the layer root.
        target = normalize_entry_name(member.linkname)
        if target.startswith(AUFS_LINK_DIR + "/"):
            linked = state.aufs_links.get(posixpath.basename(target))
            if linked is None:
                raise InvalidArchive(
                    f"invalid layer: hardlink {member.name!r} points to {member.linkname!r}, "
                    "which does not exist"
                )
            # moby writes a copy of the AUFS link file at the path: a new inode.
            return dataclasses.replace(linked)
        inode = self.nodes.get(target)
        if inode is None:
            raise InvalidArchive(
                f"invalid layer: hardlink {member.name!r} points to {member.linkname!r}, "
                "which does not exist"
            )
        if inode.is_dir:
            raise InvalidArchive(
                f"invalid layer: hardlink {member.name!r} points to {member.linkname!r}, "
                "which is a directory"
            )
        return inode

    def _apply_whiteout(self, target: str, name: str, state: _LayerState) -> None:
        self._symlink_at_or_above(_parent(target), name)
        if target in state.paths or target in state.ancestors:
            raise InvalidArchive(
                f"invalid layer: whiteout {name!r} follows an entry of the same layer that "
                "it would delete (ambiguous: the OCI spec keeps the entry, moby deletes it)"
            )
        self._remove(target)

    def _apply_opaque(self, directory: str, name: str, state: _LayerState) -> None:
        if directory:
            self._symlink_at_or_above(directory, name)
            inode = self.nodes.get(directory)
            if inode is None or not inode.is_dir:
                return  # nothing below it to hide
        stack = list(self.children(directory))
        while stack:
            path = stack.pop()
            if path in state.paths:
                stack.extend(self.children(path))
            elif path in state.ancestors:
                # A lower directory kept only for this layer's entries below it.
                self.nodes[path] = _implied_directory()
                stack.extend(self.children(path))
            else:
                self._remove(path)


def apply_layers(keys: Iterable[str], open_layer: LayerOpener, tree: Tree | None = None) -> Tree:
    """Apply the layers `keys` (bottom first) to `tree` (a new, empty one by default).

    Each layer is read to its end, past the tar's end-of-archive blocks, so that a stream
    that verifies its digest at the end (`ContentStore.open(verify=True)`) does.
    """
    tree = tree if tree is not None else Tree()
    for key in keys:
        with open_layer(key) as stream:
            try:
                tree.apply_layer(key, stream)
            except InvalidArchive as exc:
                if key in exc.message:
                    raise
                raise InvalidArchive(f"{exc.message} (in layer {key})") from None
            while stream.read(CHUNK_SIZE):
                pass
    return tree


# --- The difference of two trees ---


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a squashed layer: a whiteout of `path`, or `path` as `inode` (as a
    hardlink to `link` when it is not the first path of its group in the layer)."""

    path: str
    inode: Inode | None  # None: a whiteout
    link: str | None = None

    @property
    def is_whiteout(self) -> bool:
        return self.inode is None

    @property
    def name(self) -> str:
        """The entry's name in the tar."""
        if self.inode is None:
            return posixpath.join(
                _parent(self.path), WHITEOUT_PREFIX + posixpath.basename(self.path)
            )
        return self.path + "/" if self.inode.is_dir else self.path


def _order_key(path: str, whiteout: bool) -> tuple[tuple[int, bytes], ...]:
    """Depth first: in each directory whiteouts first, then entries, by name bytes."""
    parts = [part.encode(ENCODING, ERRORS) for part in path.split("/")]
    return (*((1, part) for part in parts[:-1]), (0 if whiteout else 1, parts[-1]))


def _unchanged(before: Inode | None, after: Inode) -> bool:
    if before is after:
        return True
    return (
        before is not None
        and before.is_dir
        and after.is_dir
        and before.attributes() == after.attributes()
    )


def plan_changes(before: Tree, after: Tree) -> list[Change]:
    """The entries of a layer that turns `before` into `after`, in tar order (module doc)."""
    written = {
        path for path, inode in after.nodes.items() if not _unchanged(before.get(path), inode)
    }
    groups = after.groups()
    for path in list(written):
        node = after.nodes[path]
        if not node.is_dir:
            written.update(groups[id(node)])

    whiteouts = []
    for path in before.nodes:
        if path in after.nodes:
            continue
        parent = _parent(path)
        if parent and parent not in after.nodes:
            continue  # a whiteout of an ancestor removes it
        parent_inode = after.nodes.get(parent)
        if parent_inode is not None and not parent_inode.is_dir:
            continue  # the parent's replacement removes it
        whiteouts.append(path)

    keyed = [(_order_key(p, True), Change(p, None)) for p in whiteouts]
    keyed += [(_order_key(p, False), Change(p, after.nodes[p])) for p in written]
    keyed.sort(key=lambda item: item[0])
    changes: list[Change] = []
    first_of_group: dict[int, str] = {}
    for _, change in keyed:
        inode = change.inode
        if inode is not None and not inode.is_dir:
            first = first_of_group.setdefault(id(inode), change.path)
            if first != change.path:
                change = Change(change.path, inode, link=first)
        changes.append(change)
    return changes


# --- Writing a layer ---


class ContentReader:
    """Reads file contents from layer tars by `Content` reference, in chunks; keeps each
    layer's file open until `close()`."""

    def __init__(self, open_layer: LayerOpener) -> None:
        self._open_layer = open_layer
        self._files: dict[str, BinaryIO] = {}

    def chunks(self, content: Content) -> Iterator[bytes]:
        stream = self._files.get(content.layer)
        if stream is None:
            stream = self._files[content.layer] = self._open_layer(content.layer)
        stream.seek(content.offset)
        remaining = content.size
        while remaining:
            chunk = stream.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise InvalidArchive(
                    f"layer {content.layer} ends inside a file's content "
                    f"(offset {content.offset}, {content.size} bytes)"
                )
            remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        files, self._files = self._files, {}
        for stream in files.values():
            stream.close()

    def __enter__(self) -> ContentReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class SquashedLayer:
    """What `write_changes` wrote: the bytes of the tar, the regular files' bytes (the
    layer's diff size, docs/layers-and-squash.md §1.5) and the number of entries."""

    size: int
    diff_size: int
    entries: int
    whiteouts: int


def _header(change: Change) -> tarfile.TarInfo:
    info = tarfile.TarInfo(change.name)
    inode = change.inode
    if inode is None:
        info.type, info.mode, info.mtime = tarfile.REGTYPE, 0, 0
        return info
    info.mode, info.uid, info.gid = inode.mode, inode.uid, inode.gid
    info.uname, info.gname, info.mtime = inode.uname, inode.gname, inode.mtime
    info.pax_headers = dict(inode.records)
    if change.link is not None:
        info.type, info.linkname = tarfile.LNKTYPE, change.link
        return info
    info.type = inode.type
    info.linkname = inode.linkname
    info.devmajor, info.devminor = inode.devmajor, inode.devminor
    info.size = inode.size
    return info


def write_changes(
    changes: Sequence[Change],
    out: Output,
    open_layer: LayerOpener,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SquashedLayer:
    """Write `changes` to `out` as a layer tar (module doc); contents are copied from the
    layers they reference. `progress(done, total)` is called after each entry."""
    size = diff_size = whiteouts = 0
    with ContentReader(open_layer) as reader:
        for done, change in enumerate(changes, start=1):
            info = _header(change)
            header = info.tobuf(tarfile.PAX_FORMAT, ENCODING, ERRORS)
            out.write(header)
            size += len(header)
            inode = change.inode
            if inode is None:
                whiteouts += 1
            elif change.link is None and inode.content is not None and inode.size:
                for chunk in reader.chunks(inode.content):
                    out.write(chunk)
                padding = -inode.size % tarfile.BLOCKSIZE
                out.write(tarfile.NUL * padding)
                size += inode.size + padding
            if inode is not None and change.link is None and inode.type == tarfile.REGTYPE:
                diff_size += inode.size
            if progress is not None:
                progress(done, len(changes))
    end = tarfile.NUL * (2 * tarfile.BLOCKSIZE)
    out.write(end)
    return SquashedLayer(
        size=size + len(end), diff_size=diff_size, entries=len(changes), whiteouts=whiteouts
    )


def squash_layers(
    base: Sequence[str],
    squashed: Sequence[str],
    open_layer: LayerOpener,
    out: Output,
    *,
    progress: Callable[[int, int], None] | None = None,
    open_stream: LayerOpener | None = None,
) -> SquashedLayer:
    """Write to `out` the one layer that, applied on the layers `base`, gives the tree of
    `base` + `squashed` (all bottom first, named by keys). `open_layer` opens a layer to
    copy contents from (seekable); `open_stream`, if given, opens one to read it through
    once while applying it."""
    read = open_stream or open_layer
    before = apply_layers(base, read)
    after = apply_layers(squashed, read, before.copy())
    return write_changes(plan_changes(before, after), out, open_layer, progress=progress)

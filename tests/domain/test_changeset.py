"""catalog.domain.changeset: applying layers to an index and squashing a range into one layer.

Every scenario of docs/layers-and-squash.md §5 that is about the layer (all but 35 and
37, which are about the image and are in operations/test_squash.py) is a test here, named
by its number. `squash()` (tests/support/layer_trees.py) checks the invariant of
docs/layers-and-squash.md §3.2 for each one: apply(B + [S]) == apply(B + R), comparing
paths, types, modes, owners, mtimes, contents, symlink targets, PAX records (xattrs), device
numbers and hardlink groups; and that S is written deterministically, sorted, without
duplicates, with whiteouts only where they are needed.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.builders import directory, hardlink, layer_tar, symlink
from support.files import fixture
from support.layer_trees import LayerSet, Squash, archive_layers, read_entries, squash

from catalog.domain.changeset import Tree, apply_layers, plan_changes, squash_layers
from catalog.domain.imageconfig import EMPTY_LAYER_DIFF_IDS
from catalog.errors import InvalidArchive

MOBY_EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def file(
    data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo()
    info.mode, info.uid, info.gid = mode, uid, gid
    return info, data


def special(kind: bytes, major: int = 0, minor: int = 0, mode: int = 0o600) -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, mode
    return info


def wh(path: str) -> tuple[str, bytes]:
    """The whiteout entry for `path`."""
    parent, _, base = path.rpartition("/")
    return (f"{parent}/.wh.{base}" if parent else f".wh.{base}", b"")


def opq(path: str) -> tuple[str, bytes]:
    """The opaque marker of directory `path` ("." for the root)."""
    return (f"{path}/.wh..wh..opq", b"")


def L(*entries: tuple[str, object]) -> bytes:
    return layer_tar(list(entries))  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_of(result: Squash) -> dict[str, str | None]:
    """The final tree: path -> content sha256 (None for a non-file)."""
    return {path: result.expected.content(path) for path in result.expected.entries}


# --- Basic merging ---


def test_scenario_01_add_across_layers() -> None:
    result = squash([], [L(("a", b"1")), L(("b", b"2"))])
    assert files_of(result) == {"a": sha(b"1"), "b": sha(b"2")}
    assert result.names == ["a", "b"]


def test_scenario_02_overwrite_content() -> None:
    result = squash([], [L(("f", b"1")), L(("f", b"2"))])
    assert [(e.name, e.data) for e in result.entries] == [("f", b"2")]


def test_scenario_03_add_then_delete_inside_the_range() -> None:
    result = squash([], [L(("f", b"1")), L(wh("f"))])
    assert result.entries == []
    assert result.expected.entries == {}
    # No whiteout: `f` is not in B. The empty layer is moby's, byte for byte.
    assert result.layer == bytes(1024)
    assert "sha256:" + sha(result.layer) == MOBY_EMPTY_LAYER


def test_scenario_04_delete_a_base_file() -> None:
    result = squash([L(("f", b"1"))], [L(("g", b"2")), L(wh("f"))])
    assert files_of(result) == {"g": sha(b"2")}
    assert result.names == [".wh.f", "g"]


def test_scenario_05_delete_then_re_add() -> None:
    result = squash([L(("f", b"old"))], [L(wh("f")), L(("f", b"new"))])
    assert [(e.name, e.data) for e in result.entries] == [("f", b"new")]


def test_scenario_06_chmod_only_change() -> None:
    result = squash([L(("f", file(b"c", 0o644)))], [L(("f", file(b"c", 0o755)))])
    assert result.expected.mode("f") == 0o755
    assert result.expected.content("f") == sha(b"c")
    assert [(e.name, e.mode, e.data) for e in result.entries] == [("f", 0o755, b"c")]


def test_scenario_07_directory_whiteout_then_recreate() -> None:
    base = L(("a", directory()), ("a/foo", b"foo"), ("b", directory()), ("b/bar", b"bar"))
    result = squash([base], [L(wh("a")), L(("a", directory()), ("a/baz", b"baz"))])
    assert sorted(result.expected.entries) == ["a", "a/baz", "b", "b/bar"]
    assert ".wh.a" not in result.names  # never `.wh.a` with `a/...` in one layer
    assert result.names == ["a/.wh.foo", "a/baz"]


def test_scenario_07_recreated_with_new_attributes() -> None:
    base = L(("a", directory(0o755)), ("a/foo", b"foo"))
    result = squash([base], [L(wh("a")), L(("a", directory(0o700)), ("a/baz", b"baz"))])
    assert result.names == ["a", "a/.wh.foo", "a/baz"]
    assert result.expected.mode("a") == 0o700


def test_scenario_08_opaque_marker_after_the_entries() -> None:
    base = L(("a", directory()), ("a/b", directory()), ("a/b/c", directory()), ("a/b/c/bar", b"x"))
    squashed = L(
        ("a", directory()),
        ("a/b", directory()),
        ("a/b/c", directory()),
        ("a/b/c/foo", b"y"),
        opq("a"),
    )
    result = squash([base], [squashed])
    assert sorted(result.expected.entries) == ["a", "a/b", "a/b/c", "a/b/c/foo"]
    assert result.names == ["a/b/c/.wh.bar", "a/b/c/foo"]


def test_scenario_08_marker_position_does_not_matter() -> None:
    lower = L(("a", directory(0o700)), ("a/b", directory(0o700)), ("a/b/bar", b"x"))
    layers = LayerSet()
    low = layers.add(lower)
    before = layers.add(L(opq("a"), ("a/b/foo", b"y")))
    after = layers.add(L(("a/b/foo", b"y"), opq("a")))
    one, two = layers.view([low, before]), layers.view([low, after])
    assert sorted(one.entries) == sorted(two.entries) == ["a", "a/b", "a/b/foo"]
    # a/b has no entry of its own in the layer: an implied directory either way.
    assert one.mode("a/b") == two.mode("a/b") == 0o755
    assert one.mode("a") == two.mode("a") == 0o700


def test_scenario_09_opaque_marker_hides_earlier_range_entries() -> None:
    result = squash(
        [L(("d", directory()), ("d/base", b"base"))],
        [L(("d/x", b"x")), L(("d", directory()), opq("d"), ("d/y", b"y"))],
    )
    assert sorted(result.expected.entries) == ["d", "d/y"]
    assert result.names == ["d/.wh.base", "d/y"]


def test_scenario_10_whiteout_of_a_name_that_never_existed() -> None:
    result = squash([L(("a", b"a"))], [L(wh("ghost"))])
    assert sorted(result.expected.entries) == ["a"]
    assert result.entries == []


def test_scenario_11_nested_removals() -> None:
    base = L(("opt", directory()), ("opt/testing", directory()), ("opt/testing/f", b"f"))
    result = squash([base], [L(wh("opt/testing")), L(wh("opt"))])
    assert result.expected.entries == {}
    assert result.names == [".wh.opt"]


def test_scenario_12_directory_replaced_by_a_file() -> None:
    result = squash([L(("d", directory()), ("d/x", b"x"))], [L(("d", b"file"))])
    assert files_of(result) == {"d": sha(b"file")}
    assert result.names == ["d"]


def test_scenario_13_file_replaced_by_a_directory() -> None:
    result = squash([L(("f", b"x"))], [L(("f", directory()), ("f/x", b"x"))])
    assert result.expected.kind("f") == "dir"
    assert result.names == ["f", "f/x"]


def test_scenario_14_file_replaced_by_a_symlink() -> None:
    result = squash(
        [L(("foo.txt", b"foo"))], [L(("bar.txt", b"bar"), ("foo.txt", symlink("bar.txt")))]
    )
    assert result.expected.kind("foo.txt") == "symlink"
    assert result.expected.target("foo.txt") == "bar.txt"
    assert result.names == ["bar.txt", "foo.txt"]


def test_scenario_15_directory_replaced_by_a_symlink() -> None:
    base = L(
        ("dir", directory()),
        ("dir/a", b"a"),
        ("dir/dir", directory()),
        ("dir/dir/file", b"file"),
    )
    squashed = [
        L(("newdir", directory()), ("newdir/file", b"new"), wh("dir/dir")),
        L(("dir/dir", symlink("/newdir"))),
    ]
    result = squash([base], squashed)
    assert sorted(result.expected.entries) == ["dir", "dir/a", "dir/dir", "newdir", "newdir/file"]
    assert result.expected.target("dir/dir") == "/newdir"
    # A whiteout below the symlink would be resolved through it and delete newdir/file.
    assert not any(name.startswith("dir/dir/") for name in result.names)
    assert result.names == ["dir/dir", "newdir", "newdir/file"]


def test_scenario_16_directory_replaced_by_a_symlink_with_older_entries_below() -> None:
    squashed = [
        L(("tmp/dir", directory())),
        L(("tmp/dir/file", b"file")),
        L(("data-template/tmp/dir/file", b"file"), ("tmp/dir", symlink("/data/tmp/dir"))),
    ]
    result = squash([], squashed)
    assert sorted(p for p, e in result.expected.entries.items() if e[0] != "dir") == [
        "data-template/tmp/dir/file",
        "tmp/dir",
    ]
    assert "tmp/dir/file" not in result.names
    assert result.expected.target("tmp/dir") == "/data/tmp/dir"


def test_scenario_16_writing_through_a_symlinked_parent_is_refused() -> None:
    layers = LayerSet()
    keys = [layers.add(L(("tmp/dir", symlink("/data")))), layers.add(L(("tmp/dir/f", b"f")))]
    with pytest.raises(InvalidArchive, match="below 'tmp/dir', a symlink"):
        layers.tree(keys)
    keys[1] = layers.add(L(wh("tmp/dir/f")))
    with pytest.raises(InvalidArchive, match=r"whiteout 'tmp/dir/\.wh\.f' is below 'tmp/dir'"):
        layers.tree(keys)


def test_scenario_17_broken_symlink_kept() -> None:
    result = squash([], [L(("a", b"a")), L(("xxx", symlink("/zzz")))])
    assert result.expected.target("xxx") == "/zzz"
    assert result.names == ["a", "xxx"]


def test_scenario_18_absolute_symlink_targets_kept_verbatim() -> None:
    layer = fixture(
        "moby-moby/tarsum/46af0962ab5afeb5ce6740d4d91652e69206fc991fd5328c1a94d364ad00e457"
        "/layer.tar"
    ).read_bytes()
    result = squash([], [layer])
    assert result.expected.target("dev/core") == "/proc/kcore"
    assert result.entry("dev/core").linkname == "/proc/kcore"
    synthetic = squash([], [L(("lib", symlink("/usr/lib/../lib64//x")))])
    assert synthetic.entry("lib").linkname == "/usr/lib/../lib64//x"


# --- Hardlinks ---


def test_scenario_19_hardlink_inside_one_layer() -> None:
    result = squash([], [L(("a", b"1"), ("l", hardlink("a")))])
    assert [(e.name, e.type, e.linkname) for e in result.entries] == [
        ("a", tarfile.REGTYPE, ""),
        ("l", tarfile.LNKTYPE, "a"),
    ]
    assert result.expected.groups == {frozenset({"a", "l"})}


def test_scenario_20_hardlink_to_an_earlier_range_layer() -> None:
    result = squash([], [L(("a", b"1")), L(("l", hardlink("a")))])
    assert [(e.name, e.type) for e in result.entries] == [
        ("a", tarfile.REGTYPE),
        ("l", tarfile.LNKTYPE),
    ]
    assert result.expected.groups == {frozenset({"a", "l"})}


def test_scenario_21_hardlink_target_deleted_later() -> None:
    result = squash([], [L(("A", b"a"), ("Z", hardlink("A"))), L(wh("A"))])
    assert files_of(result) == {"Z": sha(b"a")}
    assert [(e.name, e.type, e.data) for e in result.entries] == [("Z", tarfile.REGTYPE, b"a")]


def test_scenario_22_relink_across_layers() -> None:
    squashed = [
        L(("file", b"base"), ("link", hardlink("file"))),
        L(("file", b"first"), ("link", hardlink("file"))),
        L(("file", b"second"), ("link", hardlink("file"))),
    ]
    result = squash([], squashed)
    assert files_of(result) == {"file": sha(b"second"), "link": sha(b"second")}
    assert [(e.name, e.type) for e in result.entries] == [
        ("file", tarfile.REGTYPE),
        ("link", tarfile.LNKTYPE),
    ]


def test_scenario_23_hardlink_aliases_with_one_overwritten() -> None:
    squashed = [
        L(("t2", b"123")),
        L(("t1", b"123"), ("t2", hardlink("t1")), ("t3", hardlink("t1"))),
        L(("t1", b"456")),
    ]
    result = squash([], squashed)
    assert files_of(result) == {"t1": sha(b"456"), "t2": sha(b"123"), "t3": sha(b"123")}
    assert result.expected.groups == {frozenset({"t2", "t3"})}


def test_scenario_24_hardlink_in_the_range_to_a_base_file() -> None:
    result = squash([L(("a", b"A"))], [L(("b", b"B")), L(("link", hardlink("a")))])
    assert result.expected.content("link") == sha(b"A")
    # The group is written whole: `a` again (same content), `link` a hardlink to it.
    assert [(e.name, e.type, e.linkname) for e in result.entries] == [
        ("a", tarfile.REGTYPE, ""),
        ("b", tarfile.REGTYPE, ""),
        ("link", tarfile.LNKTYPE, "a"),
    ]
    assert result.expected.groups == {frozenset({"a", "link"})}


def test_scenario_24_base_group_left_alone_when_untouched() -> None:
    result = squash([L(("a", b"A"), ("l", hardlink("a")))], [L(wh("a")), L(("b", b"B"))])
    assert result.names == [".wh.a", "b"]
    assert files_of(result) == {"l": sha(b"A"), "b": sha(b"B")}


@pytest.fixture(scope="module")
def dive_layers(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = fixture("wagoodman-dive/test-docker-image.tar")
    (layers,) = archive_layers(path, tmp_path_factory.mktemp("dive"))
    assert len(layers) == 14
    return layers


def test_scenario_25_busybox_hardlink_farm(dive_layers: list[bytes]) -> None:
    result = squash([], dive_layers[:1])
    bin_paths = [p for p in result.expected.entries if p.startswith("bin/")]
    assert len(bin_paths) == 394
    (farm,) = [group for group in result.expected.groups if "bin/[" in group]
    assert len(farm) == 393  # bin/[ and its 392 links; bin/getconf is apart
    bin_entries = [e for e in result.entries if e.name.startswith("bin/")]
    assert sum(e.type == tarfile.LNKTYPE for e in bin_entries) == 392
    (regular,) = [e for e in bin_entries if e.type == tarfile.REGTYPE and e.name in farm]
    assert all(e.linkname == regular.name for e in bin_entries if e.type == tarfile.LNKTYPE)


# --- Metadata and structure ---


def test_scenario_26_directory_metadata_from_the_newest_layer() -> None:
    base = L(("root", directory(0o700)), ("root/keep", b"k"))
    result = squash([base], [L(("root", directory(0o755)), ("root/x", b"x"))])
    assert result.expected.mode("root") == 0o755
    assert sorted(result.expected.entries) == ["root", "root/keep", "root/x"]
    assert result.names == ["root", "root/x"]


def test_scenario_27_implied_parents() -> None:
    result = squash([], [L(("a/b/c", b"1"))])
    assert result.names == ["a", "a/b", "a/b/c"]
    assert result.expected.mode("a") == result.expected.mode("a/b") == 0o755
    # A parent that B has keeps B's mode: S does not write it.
    kept = squash([L(("a", directory(0o700)))], [L(("a/b/c", b"1"))])
    assert kept.names == ["a/b", "a/b/c"]
    assert kept.expected.mode("a") == 0o700


def test_scenario_28_path_spellings() -> None:
    root = directory(0o755)
    squashed = [
        L(("./", root), ("./etc", directory()), ("./etc/x", b"1")),
        L(("/", directory()), ("/etc/", directory()), ("etc/x", b"2"), ("etc//y/", directory())),
    ]
    result = squash([], squashed)
    assert files_of(result) == {"etc": None, "etc/x": sha(b"2"), "etc/y": None}
    assert result.names == ["etc", "etc/x", "etc/y"]


@pytest.mark.parametrize(
    ("name", "content"), [("collision-0.tar", b"HOWDY\n"), ("collision-1.tar", b"farts\n")]
)
def test_scenario_29_duplicate_entries_in_one_layer(name: str, content: bytes) -> None:
    layer = fixture(f"moby-moby/tarsum/collision/{name}").read_bytes()
    result = squash([], [layer])
    assert [(e.name, e.data) for e in result.entries] == [("file", content)]


def test_scenario_30_whiteout_then_entry_in_one_layer() -> None:
    result = squash([L(("f", b"old"))], [L(wh("f"), ("f", b"new"))])
    assert files_of(result) == {"f": sha(b"new")}
    assert result.names == ["f"]


@pytest.mark.parametrize(
    "layer",
    [
        L(("f", b"new"), wh("f")),
        L(("d/x", b"x"), wh("d")),
        L(("d", directory()), wh("d")),
    ],
    ids=["file", "below", "directory"],
)
def test_scenario_30_entry_then_its_whiteout_is_refused(layer: bytes) -> None:
    """Ambiguous (the OCI layer specification keeps the entry, moby deletes it): refused,
    never guessed."""
    layers = LayerSet()
    keys = [layers.add(L(("f", b"old"), ("d", directory()))), layers.add(layer)]
    with pytest.raises(InvalidArchive, match="follows an entry of the same layer"):
        layers.tree(keys)


def test_scenario_31_whiteout_prefix_only_in_the_basename() -> None:
    result = squash([], [L(("foo.wh.bar", b"1")), L(("a.wh.b", directory()), ("a.wh.b/c", b"2"))])
    assert sorted(result.expected.entries) == ["a.wh.b", "a.wh.b/c", "foo.wh.bar"]
    assert result.names == ["a.wh.b", "a.wh.b/c", "foo.wh.bar"]


@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh...", "d/.wh..", "d/.wh..."])
def test_scenario_32_invalid_whiteouts_are_refused(name: str) -> None:
    layers = LayerSet()
    key = layers.add(L(("d", directory()), (name, b"")))
    with pytest.raises(InvalidArchive, match="invalid whiteout entry"):
        layers.tree([key])


def test_scenario_32_aufs_metadata_is_skipped() -> None:
    squashed = L(
        (".wh..wh.aufs", b""),
        (".wh..wh.orph", directory()),
        (".wh..wh.plnk", directory()),
        (".wh..wh.plnk/1234.5678", file(b"shared", 0o640)),
        ("usr/bin/tool", hardlink(".wh..wh.plnk/1234.5678")),
        ("x", b"x"),
    )
    result = squash([L(("old", b"o"))], [squashed])
    assert sorted(result.expected.entries) == ["old", "usr", "usr/bin", "usr/bin/tool", "x"]
    # A hardlink into the AUFS link directory is a copy of that file (moby).
    assert result.expected.content("usr/bin/tool") == sha(b"shared")
    assert result.expected.mode("usr/bin/tool") == 0o640
    assert not any(".wh..wh." in name for name in result.names)


def test_scenario_33_opaque_marker_at_the_root() -> None:
    base = L(("x", b"x"), ("d", directory()), ("d/y", b"y"))
    result = squash([base], [L(opq("."), ("z", b"z"))])
    assert sorted(result.expected.entries) == ["z"]
    assert result.names == [".wh.d", ".wh.x", "z"]
    older = squash([base], [L(("x", directory()), ("x/1", b"1")), L(opq("."), ("z", b"z"))])
    assert sorted(older.expected.entries) == ["z"]
    assert older.names == [".wh.d", ".wh.x", "z"]


@pytest.mark.parametrize(
    "empty", [bytes(1024), bytes(10240), b""], ids=["1024-zeros", "10240-zeros", "0-bytes"]
)
def test_scenario_34_empty_layers(empty: bytes) -> None:
    result = squash([L(("a", b"a"))], [empty, L(("b", b"b")), empty])
    assert result.names == ["b"]
    only_empty = squash([L(("a", b"a"))], [empty, empty])
    assert only_empty.entries == []
    assert "sha256:" + sha(only_empty.layer) == MOBY_EMPTY_LAYER
    assert MOBY_EMPTY_LAYER in EMPTY_LAYER_DIFF_IDS


def test_scenario_34_empty_fixture_layers(tmp_path: Path) -> None:
    """whiteout_image.tar's third layer (10240 zeros) and emptyLayer.tar's 0-byte
    legacy layer.tar contribute nothing."""
    path = fixture("google-go-containerregistry/mutate/whiteout_image.tar")
    (layers,) = archive_layers(path, tmp_path / "ggcr")
    assert layers[2] == bytes(10240)
    # A legacy v1 archive (no manifest.json): its layer.tar members as they are.
    with tarfile.open(fixture("moby-moby/emptyLayer.tar")) as legacy_archive:
        legacy = [
            legacy_archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in legacy_archive
            if member.name.endswith("/layer.tar")
        ]
    assert b"" in legacy
    legacy_set = LayerSet()
    assert legacy_set.view([legacy_set.add(tar) for tar in legacy]).entries != {}
    layer_set = LayerSet()
    for empty in (layers[2], b""):
        assert layer_set.view([layer_set.add(empty)]).entries == {}
    result = squash(layers[:2], layers[2:])
    assert result.entries == []


def test_scenario_36_full_flatten_of_the_dive_image(dive_layers: list[bytes]) -> None:
    result = squash([], dive_layers)
    assert not any(e.whiteout for e in result.entries)
    tree = result.expected
    assert "root/example" not in tree.entries
    assert len([p for p in tree.entries if p.startswith("bin/")]) == 394
    modes = {
        "root": 0o700,
        "root/.data/saved.again2.txt": 0o644,
        "root/.data/tag.sh": 0o775,
        "root/.data/test.sh": 0o755,
        "root/.saved.txt": 0o644,
        "root/saved.txt": 0o755,
        "somefile.txt": 0o664,
        "tmp": 0o1777,
        "tmp/saved.again1.txt": 0o644,
    }
    assert {path: tree.mode(path) for path in modes} == modes
    text_files = [p for p in modes if p.endswith(".txt")]
    assert {tree.content(p)[:12] for p in text_files} == {"9422b46ac515"}  # type: ignore[index]
    for directory_path in ("etc", "home", "usr/sbin", "var"):
        assert tree.kind(directory_path) == "dir"


@pytest.mark.parametrize("k", range(14))
def test_dive_split(dive_layers: list[bytes], k: int) -> None:
    """§6: squashing layers k..13 for every k; the invariant, and the whiteouts needed."""
    result = squash(dive_layers[:k], dive_layers[k:])
    whiteouts = [e.name for e in result.entries if e.whiteout]
    # Layer 2 makes root/example, layer 9 removes it.
    assert whiteouts == (["root/.wh.example"] if 3 <= k <= 9 else [])


def test_scenario_38_squash_in_the_middle() -> None:
    result = squash([L(("a", b"a"))], [L(("b", b"b")), L(wh("a"))], above=[L(("c", b"c"))])
    assert files_of(result) == {"b": sha(b"b"), "c": sha(b"c")}
    assert result.names == [".wh.a", "b"]


def test_scenario_39_xattrs_and_special_files() -> None:
    layer = fixture("moby-moby/tarsum/xattr/layer.tar").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (member,) = tar.getmembers()
        original = member.pax_headers["SCHILY.xattr.security.capability"]
    result = squash([], [layer])
    (entry,) = result.entries
    assert entry.pax["SCHILY.xattr.security.capability"] == original
    written = LayerSet()
    tree = written.tree([written.add(result.layer)])
    capability = tree.nodes["file"].xattrs["security.capability"]
    assert capability == original.encode("utf-8", "surrogateescape")
    assert capability[4] == 0xC0  # not valid UTF-8: kept byte for byte

    devices = L(
        ("dev", directory()),
        ("dev/null", special(tarfile.CHRTYPE, 1, 3, 0o666)),
        ("dev/sda", special(tarfile.BLKTYPE, 8, 0, 0o660)),
        ("dev/fifo", special(tarfile.FIFOTYPE, mode=0o644)),
        ("dev/wh", special(tarfile.CHRTYPE, 0, 0)),  # overlay's whiteout form: a device here
        ("dev/null2", hardlink("dev/null")),
    )
    result = squash([L(("dev", directory()), ("dev/wh", b"file"))], [devices])
    tree_view = result.expected
    assert tree_view.entries["dev/null"][0] == "char" and tree_view.entries["dev/null"][7:9] == (
        1,
        3,
    )
    assert tree_view.entries["dev/sda"][0] == "block" and tree_view.entries["dev/sda"][7:9] == (
        8,
        0,
    )
    assert tree_view.kind("dev/fifo") == "fifo" and tree_view.mode("dev/fifo") == 0o644
    assert tree_view.kind("dev/wh") == "char"
    assert tree_view.groups == {frozenset({"dev/null", "dev/null2"})}


@pytest.fixture(scope="module")
def dive_variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    variants = {}
    for name in ("uncompressed", "gzip", "zstd", "estargz"):
        path = fixture(f"wagoodman-dive/test-oci-{name}-image.tar")
        (layers,) = archive_layers(path, tmp_path_factory.mktemp(name))
        variants[name] = layers
    return variants


def test_scenario_40_compressed_inputs(dive_variants: dict[str, list[bytes]]) -> None:
    plain = dive_variants["uncompressed"]
    assert dive_variants["gzip"] == dive_variants["zstd"] == plain
    # estargz appends its table of contents after the tar's end: another diff ID...
    assert dive_variants["estargz"] != plain
    results = {name: squash([], layers) for name, layers in dive_variants.items()}
    # ...but the same files, so the same squashed layer.
    assert len({result.layer for result in results.values()}) == 1
    assert [e.name for e in results["estargz"].entries] == ["README.md"]


# --- Properties of the index and the writer ---


def test_apply_reads_no_content_and_output_copies_in_chunks(tmp_path: Path) -> None:
    """A 64 MiB file: applying and squashing allocate a few MiB at most."""
    size = 64 << 20
    path = tmp_path / "big.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("big")
        info.size = size
        zeros = tmp_path / "zeros"
        with zeros.open("wb") as out:
            out.truncate(size)
        with zeros.open("rb") as data:
            tar.addfile(info, data)

    def open_layer(key: str) -> io.BufferedReader:
        return (tmp_path / key).open("rb")

    tracemalloc.start()
    try:
        with (tmp_path / "squashed.tar").open("wb") as out:
            written = squash_layers([], ["big.tar"], open_layer, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written.diff_size == size
    assert peak < 8 << 20, f"peak Python allocations {peak} bytes"
    tree = apply_layers(["squashed.tar"], open_layer)
    assert tree.nodes["big"].size == size


def test_hardlink_to_a_missing_or_directory_target_is_refused() -> None:
    layers = LayerSet()
    with pytest.raises(InvalidArchive, match="points to 'nope', which does not exist"):
        layers.tree([layers.add(L(("l", hardlink("nope"))))])
    with pytest.raises(InvalidArchive, match="which is a directory"):
        layers.tree([layers.add(L(("d", directory()), ("l", hardlink("d"))))])


def test_entry_below_a_file_is_refused() -> None:
    layers = LayerSet()
    with pytest.raises(InvalidArchive, match="below 'f', which is a file, not a directory"):
        layers.tree([layers.add(L(("f", b"f"))), layers.add(L(("f/x", b"x")))])


def test_hostile_names_are_refused() -> None:
    layers = LayerSet()
    for name in ("../evil", "a/../../b"):
        with pytest.raises(InvalidArchive, match="outside the layer root"):
            layers.tree([layers.add(L((name, b"x")))])
    with pytest.raises(InvalidArchive, match="points outside the layer root"):
        layers.tree([layers.add(L(("l", hardlink("../../etc/shadow"))))])


def test_absolute_hardlink_targets_are_re_rooted() -> None:
    """kaniko writes them (§2.6)."""
    result = squash([], [L(("a", b"1"), ("l", hardlink("/a")))])
    assert result.expected.groups == {frozenset({"a", "l"})}


def test_link_header_attributes_are_the_inode_s() -> None:
    info = hardlink("a")
    info.mode, info.uid = 0o777, 42
    layers = LayerSet()
    tree = layers.tree([layers.add(L(("a", file(b"1", 0o600, uid=7)), ("l", info)))])
    assert tree.nodes["l"] is tree.nodes["a"]
    assert (tree.nodes["l"].mode, tree.nodes["l"].uid) == (0o600, 7)


def test_pax_global_headers_are_ignored() -> None:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "git"}
    ) as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        info.pax_headers = {"SCHILY.xattr.user.k": "v"}
        tar.addfile(info, io.BytesIO(b"1"))
    layers = LayerSet()
    tree = layers.tree([layers.add(buffer.getvalue())])
    assert tree.nodes["f"].records == (("SCHILY.xattr.user.k", "v"),)


def test_long_and_non_utf8_names_round_trip() -> None:
    long_name = "d/" + "n" * 200
    odd = "caf\udce9"  # a Latin-1 byte, not UTF-8
    result = squash([], [L((long_name, b"x"), (odd, b"y"))])
    assert sorted(result.expected.entries) == sorted(["d", long_name, odd])


def test_uids_mtimes_and_names_are_kept() -> None:
    info = tarfile.TarInfo()
    info.mode, info.uid, info.gid, info.mtime = 0o640, 1000, 2000, 1_700_000_000.5
    info.uname, info.gname = "app", "staff"
    result = squash([], [L(("f", (info, b"data")))])
    entry = result.expected.entries["f"]
    assert entry[1:4] == (0o640, 1000, 2000)
    assert entry[9:] == (1_700_000_000.5, "app", "staff")


def test_plan_of_identical_trees_is_empty(dive_layers: list[bytes]) -> None:
    layers = LayerSet()
    keys = [layers.add(tar) for tar in dive_layers]
    tree = layers.tree(keys)
    assert plan_changes(tree, tree.copy()) == []
    assert plan_changes(Tree(), Tree()) == []


# --- A property: random layer stacks ---

NAMES = ["a", "b", "a/x", "a/y", "b/x", "a/x/z"]


def _entry(draw: st.DrawFn, name: str, files: list[str]) -> tuple[str, object]:
    kinds = ["file", "file", "dir", "dir", "symlink", "whiteout", "opaque"]
    kinds += ["hardlink"] * 3 if files else []
    kind = draw(st.sampled_from(kinds))
    if kind == "file":
        files.append(name)
        data = draw(st.sampled_from([b"1", b"2", b""]))
        return name, file(data, draw(st.sampled_from([0o644, 0o755])))
    if kind == "dir":
        return name, directory(draw(st.sampled_from([0o755, 0o700])))
    if kind == "symlink":
        return name, symlink(draw(st.sampled_from(["a", "/b", "missing"])))
    if kind == "hardlink":
        files.append(name)
        return name, hardlink(draw(st.sampled_from(files[:-1])))
    if kind == "whiteout":
        return wh(name)
    return opq(name)


@st.composite
def stacks(draw: st.DrawFn) -> tuple[list[bytes], int]:
    layers = []
    files: list[str] = []  # names given a file so far: likely hardlink targets
    for _ in range(draw(st.integers(1, 5))):
        names = draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=5))
        layers.append(L(*[_entry(draw, name, files) for name in names]))
    return layers, draw(st.integers(0, len(layers) - 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(stacks())
def test_property_squash_keeps_the_tree(stack: tuple[list[bytes], int]) -> None:
    layers, split = stack
    check = LayerSet()
    try:
        check.tree([check.add(tar) for tar in layers])
    except InvalidArchive:
        assume(False)  # not a valid stack (a link to nothing, an entry below a file, ...)
    result = squash(layers[:split], layers[split:])
    # The squashed layer is itself a valid layer that applies on B as it is.
    assert read_entries(result.layer) == result.entries

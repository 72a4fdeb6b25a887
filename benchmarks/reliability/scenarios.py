"""The operations the kill and I/O-fault classes try, as scenarios: how to give each one
work in a catalog, its `catalog` command, how to tell it is done, and the same
operation run again in the harness's process (which must succeed); and `Runner`, which
runs commands through the zygote."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete

from benchmarks.reliability.catalogs import (
    ArchiveImage,
    Stopwatch,
    TrialCatalog,
    docker_archive,
    fsck_errors,
    layer_tar,
    leftovers_after_gc,
    sha256,
)
from benchmarks.reliability.zygote import Zygote
from catalog.context import Catalog
from catalog.db.models import Image, ImageReference
from catalog.docker.filters import FilterArgs
from catalog.domain.reference import parse_normalized_named
from catalog.operations.append import append_image
from catalog.operations.gc import collect_garbage
from catalog.operations.load import load_archive
from catalog.operations.removal import prune_images, remove_images
from catalog.operations.squash import squash_image
from catalog.services.kept_facts import rewrite_kept_facts
from catalog.services.listing import list_images
from catalog.services.lookup import find_by_reference
from catalog.services.tag import tag_image

MiB = 1 << 20
CREATED = "2024-01-01T00:00:00Z"


def exists(catalog: Catalog, name: str) -> bool:
    with catalog.database.read() as session:
        return find_by_reference(session, parse_normalized_named(name)) is not None


def image_of(catalog: Catalog, name: str) -> str | None:
    with catalog.database.read() as session:
        return find_by_reference(session, parse_normalized_named(name))


@dataclass
class Scenario:
    """One operation to kill: how to give it work, its command, how to tell it is done."""

    name: str
    argv: list[str]
    prepare: Callable[[Catalog], None]
    done: Callable[[Catalog], bool]
    # The same operation run again, in the harness's process (an operation, as the CLI
    # calls it): it must succeed.
    retry: Callable[[Catalog], object]


class Fixtures:
    """The files and images the scenarios work on, made once per catalog."""

    def __init__(self, made: TrialCatalog, scratch: Path) -> None:
        self.made = made
        self.scratch = scratch
        base_layers = [layer_tar(1, MiB // 2), layer_tar(2, MiB // 2)]
        self.base = ArchiveImage(base_layers, tags=["base:1"], created=CREATED)
        self.child = ArchiveImage(
            [*base_layers, layer_tar(3, MiB), layer_tar(4, MiB)], tags=["child:1"]
        )
        self.loadme = ArchiveImage(
            [layer_tar(10, MiB), layer_tar(11, MiB), layer_tar(12, MiB)], tags=["loadme:1"]
        )
        self.victim = ArchiveImage(
            [*base_layers, layer_tar(20, MiB), layer_tar(21, MiB)], tags=["victim:1"]
        )
        self.dangling = ArchiveImage([layer_tar(30, MiB), layer_tar(31, MiB)])
        self.garbage = ArchiveImage([layer_tar(40, MiB), layer_tar(41, MiB)], tags=["junk:1"])
        self.archives: dict[str, Path] = {}
        for name, image in (
            ("base", self.base),
            ("child", self.child),
            ("loadme", self.loadme),
            ("victim", self.victim),
            ("dangling", self.dangling),
            ("garbage", self.garbage),
        ):
            path = scratch / f"{name}.tar"
            path.write_bytes(docker_archive([image]))
            self.archives[name] = path
        self.layer = scratch / "layer.tar"
        self.layer.write_bytes(layer_tar(50, 2 * MiB))
        with made.open() as catalog:
            self.load(catalog, "base")
            self.load(catalog, "child")

    def load(self, catalog: Catalog, name: str) -> None:
        load_archive(catalog, self.archives[name])

    def scenarios(self) -> list[Scenario]:
        def untag(*names: str) -> Callable[[Catalog], None]:
            def prepare(catalog: Catalog) -> None:
                remove_images(catalog, list(names), force=True)

            return prepare

        def present(name: str, archive: str) -> Callable[[Catalog], None]:
            def prepare(catalog: Catalog) -> None:
                if not exists(catalog, name):
                    self.load(catalog, archive)

            return prepare

        def dangling_present(catalog: Catalog) -> None:
            load_archive(catalog, self.archives["dangling"])

        def no_dangling(catalog: Catalog) -> bool:
            with catalog.database.read() as session:
                return not list_images(
                    session=session, filters=FilterArgs({"dangling": {"true": True}})
                )

        def untag_moved(catalog: Catalog) -> None:
            remove_images(catalog, ["moved:1"], force=True)  # base keeps base:1: an untag

        def moved(catalog: Catalog) -> bool:
            return image_of(catalog, "moved:1") == self.base.id

        def garbage(catalog: Catalog) -> None:
            self.load(catalog, "garbage")
            with catalog.database.write() as session:
                session.execute(
                    delete(ImageReference).where(ImageReference.image_id == self.garbage.id)
                )
                session.execute(delete(Image).where(Image.id == self.garbage.id))
                rewrite_kept_facts(session=session)  # rows deleted by hand: facts too
            past = time.time() - 7200
            for layer in self.garbage.layers:
                os.utime(catalog.store.path(sha256(layer)), (past, past))

        def retry_tag(catalog: Catalog) -> None:
            with catalog.database.write() as session:
                tag_image(session=session, source="base:1", target="moved:1")

        def collected(catalog: Catalog) -> bool:
            return not any(catalog.store.exists(sha256(layer)) for layer in self.garbage.layers)

        return [
            Scenario(
                "load",
                ["load", "-q", "-i", str(self.archives["loadme"])],
                untag("loadme:1"),
                lambda catalog: exists(catalog, "loadme:1"),
                lambda catalog: load_archive(catalog, self.archives["loadme"]),
            ),
            Scenario(
                "squash",
                ["image", "squash", "child:1", "-t", "flat:1"],
                untag("flat:1"),
                lambda catalog: exists(catalog, "flat:1"),
                lambda catalog: squash_image(catalog, "child:1", tags=["flat:1"]),
            ),
            Scenario(
                "rmi",
                ["rmi", "victim:1"],
                present("victim:1", "victim"),
                lambda catalog: not exists(catalog, "victim:1"),
                # Done already if the kill came after the commit: "No such image" then.
                lambda catalog: remove_images(catalog, ["victim:1"], force=True),
            ),
            Scenario(
                "prune",
                ["image", "prune", "-f"],
                dangling_present,
                no_dangling,
                lambda catalog: prune_images(catalog, FilterArgs({"dangling": {"true": True}})),
            ),
            Scenario(
                "tag",
                ["tag", "base:1", "moved:1"],
                untag_moved,
                moved,
                retry_tag,
            ),
            Scenario(
                "append",
                ["image", "append", "base:1", str(self.layer), "-t", "app:1", "--created", CREATED],
                untag("app:1"),
                lambda catalog: exists(catalog, "app:1"),
                lambda catalog: append_image(
                    catalog, "base:1", self.layer, tags=["app:1"], created=CREATED
                ),
            ),
            Scenario("gc", ["gc"], garbage, collected, collect_garbage),
        ]


class Runner:
    """Runs commands through the zygote, optionally killing them after a delay."""

    def __init__(self, made: TrialCatalog, zygote: Zygote, scratch: Path) -> None:
        self.made = made
        self.zygote = zygote
        self.stdout = scratch / "stdout"
        self.stderr = scratch / "stderr"
        self.scratch = scratch

    def run(self, argv: list[str], *, kill_after: float | None = None) -> tuple[int, float]:
        """Run `catalog ARGV...`; (status, seconds). Killed with SIGKILL after
        `kill_after` seconds if still running (status -9 then)."""
        pid = self.zygote.start(
            argv, env=self.made.env(), cwd=self.scratch, stdout=self.stdout, stderr=self.stderr
        )
        watch = Stopwatch()
        if kill_after is not None:
            time.sleep(kill_after)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        status = self.zygote.wait()
        return status, watch.seconds

    def run_traced(self, argv: list[str], strace: list[str]) -> tuple[int, str]:
        """Run `catalog ARGV...` with strace attached before it starts (`strace` are
        strace's options: what to trace, inject, where to write); (status, strace's own
        messages). Attaching to the held child means strace counts the command's system
        calls only, not Python's start-up."""
        pid = self.zygote.start(
            argv,
            env=self.made.env(),
            cwd=self.scratch,
            stdout=self.stdout,
            stderr=self.stderr,
            hold=True,
        )
        tracer = subprocess.Popen(
            ["strace", "-f", "-p", str(pid), *strace],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert tracer.stderr is not None
        messages = []
        for line in tracer.stderr:
            messages.append(line)
            if "attached" in line:
                break
        else:
            os.kill(pid, signal.SIGKILL)
            self.zygote.wait()
            raise RuntimeError(f"strace could not attach: {''.join(messages)}")
        os.kill(pid, signal.SIGUSR1)
        status = self.zygote.wait()
        messages += tracer.stderr.readlines()
        tracer.wait(timeout=60)
        return status, "".join(messages)

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")


def after_trial(
    catalog: Catalog, retry: Callable[[Catalog], object], done: Callable[[Catalog], bool], what: str
) -> list[str]:
    """After a trial: `fsck` clean, the operation run again (`retry`) succeeds and is
    `done`, and `gc --grace 0` leaves nothing a healthy catalog does not hold; the
    problems found, each naming the trial (`what`)."""
    problems = [f"{what}: fsck: {line}" for line in fsck_errors(catalog)]
    try:
        retry(catalog)
    except Exception as exc:  # any failure of the retry is the trial's failure
        problems.append(f"{what}: the retry failed: {type(exc).__name__}: {exc}")
    else:
        if not done(catalog):
            problems.append(f"{what}: the retry succeeded but its effect is missing")
    problems += [f"{what}: left after gc: {line}" for line in leftovers_after_gc(catalog)]
    return problems

"""Blob ownership (issue 12, item 1): a load racing an rmi, a prune or a gc of an image
that shares its layers, in many interleavings; after each, no committed row without its
file, and the load itself succeeded.

The race: the load finds the shared layers' files in the store and skips writing them;
the rival deletes the shared image's rows and its files; the load commits rows naming
files that are gone. Two kinds of interleaving:

* at each fault point of the load (`load:leased`, after each layer stored,
  `load:layers-stored`), the rival runs to completion there, in the same process: every
  place where the window was open, for each rival;
* the load and the rival started together in two threads, each with its own
  connections, the rival after a seeded random delay within the load's duration.
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from collections.abc import Callable

from sqlalchemy import delete

from benchmarks.reliability.catalogs import (
    ArchiveImage,
    Stopwatch,
    TrialCatalog,
    docker_archive,
    fsck_errors,
    layer_tar,
    sha256,
    trial_catalog,
)
from benchmarks.reliability.results import ClassResult, RunSettings
from catalog.context import Catalog
from catalog.db.models import Image, ImageReference
from catalog.docker.filters import FilterArgs
from catalog.faults import set_fault_hook
from catalog.operations.gc import collect_garbage
from catalog.operations.load import load_archive
from catalog.operations.removal import prune_images, remove_images
from catalog.services.kept_facts import rewrite_kept_facts

RIVALS = ("rmi", "prune", "gc")
POINTS = (
    ("load:leased", 1),
    ("load:layer-stored", 1),
    ("load:layer-stored", 2),
    ("load:layer-stored", 3),
    ("load:layers-stored", 1),
)
LAYER_BYTES = 256 << 10
SHARED = [layer_tar(1, LAYER_BYTES), layer_tar(2, LAYER_BYTES)]
VICTIM = ArchiveImage(SHARED, tags=["shared:1"], labels={"victim": "yes"})


class _Trial:
    """One catalog, reset between interleavings: the shared image present, the new one
    absent."""

    def __init__(self, made: TrialCatalog) -> None:
        self.made = made
        self.victim = docker_archive([VICTIM])

    def arrange(self, catalog: Catalog, rival: str) -> None:
        load_archive(catalog, io.BytesIO(self.victim))
        if rival == "gc":
            # The shared image's rows are gone, its layer and blob rows and files left:
            # what gc removes.
            with catalog.database.write() as session:
                session.execute(delete(ImageReference).where(ImageReference.image_id == VICTIM.id))
                session.execute(delete(Image).where(Image.id == VICTIM.id))
                # As the rows were deleted by hand, the kept facts (chains' reference
                # counts) are recomputed by hand too.
                rewrite_kept_facts(session=session)
            past = time.time() - 7200
            for digest in VICTIM_DIFF_IDS:
                os.utime(catalog.store.path(digest), (past, past))

    def reset(self, catalog: Catalog, tag: str) -> None:
        remove_images(catalog, [tag, "shared:1"], force=True)
        collect_garbage(catalog, grace_seconds=0)


VICTIM_DIFF_IDS = [sha256(layer) for layer in SHARED]


def _rival(catalog: Catalog, kind: str) -> Callable[[], None]:
    def run() -> None:
        if kind == "rmi":
            remove_images(catalog, ["shared:1"])
        elif kind == "prune":
            prune_images(
                catalog, FilterArgs({"dangling": {"false": True}, "label": {"victim=yes": True}})
            )
        else:
            collect_garbage(catalog, grace_seconds=0)

    return run


def _archive(number: int) -> bytes:
    own = layer_tar(1000 + number, LAYER_BYTES)
    return docker_archive([ArchiveImage([*SHARED, own], tags=[f"new:{number}"])])


def _check(catalog: Catalog, outcome: BaseException | None, what: str) -> list[str]:
    """What went wrong in one interleaving (one line for each), or nothing."""
    problems = []
    if outcome is not None:
        problems.append(f"{what}: the load failed: {type(outcome).__name__}: {outcome}")
    problems += [f"{what}: fsck: {line}" for line in fsck_errors(catalog)]
    return problems[:1] + [f"  {line}" for line in problems[1:]]


class _AtPoint:
    """A fault hook that runs `work` the `occurrence`-th time `point` is reached."""

    def __init__(self, point: str, occurrence: int, work: Callable[[], None]) -> None:
        self.point, self.occurrence, self.work = point, occurrence, work
        self.seen = 0

    def __call__(self, name: str) -> None:
        if name == self.point:
            self.seen += 1
            if self.seen == self.occurrence:
                self.work()


def _at_points(made: TrialCatalog, trial: _Trial, failures: list[str]) -> int:
    trials = 0
    number = 0
    with made.open() as catalog, made.open() as other:
        for rival in RIVALS:
            for point, occurrence in POINTS:
                number += 1
                trial.arrange(catalog, rival)
                hook = _AtPoint(point, occurrence, _rival(other, rival))
                previous = set_fault_hook(hook)
                outcome: BaseException | None = None
                try:
                    load_archive(catalog, io.BytesIO(_archive(number)))
                except Exception as exc:  # a bug's exception is a failure too, not a crash
                    outcome = exc
                finally:
                    set_fault_hook(previous)
                failures += _check(catalog, outcome, f"{rival} at {point} #{occurrence}")
                trial.reset(catalog, f"new:{number}")
                trials += 1
    return trials


def _threaded(
    made: TrialCatalog, trial: _Trial, count: int, seed: int, failures: list[str]
) -> tuple[int, float]:
    """`count` races of a load and a rival in two threads; the mean load time."""
    chooser = random.Random(seed)  # noqa: S311 - delays reproducible by seed
    durations: list[float] = []
    with made.open() as catalog, made.open() as other:
        # How long a load takes here: the rival starts somewhere within it.
        trial.arrange(catalog, "rmi")
        watch = Stopwatch()
        load_archive(catalog, io.BytesIO(_archive(10_000)))
        span = watch.seconds
        trial.reset(catalog, "new:10000")
        for index in range(count):
            number = 20_000 + index
            rival = RIVALS[index % len(RIVALS)]
            trial.arrange(catalog, rival)
            delay = chooser.uniform(0, span)
            outcome: list[BaseException] = []
            archive = _archive(number)

            def load(archive: bytes = archive, outcome: list[BaseException] = outcome) -> None:
                try:
                    load_archive(catalog, io.BytesIO(archive))
                except Exception as exc:  # a bug's exception is a failure too, not a crash
                    outcome.append(exc)

            loader = threading.Thread(target=load)
            watch = Stopwatch()
            loader.start()
            time.sleep(delay)
            _rival(other, rival)()
            loader.join()
            durations.append(watch.seconds)
            failures += _check(
                catalog,
                outcome[0] if outcome else None,
                f"{rival} after {delay * 1000:.0f} ms (seed {seed}, race {index})",
            )
            trial.reset(catalog, f"new:{number}")
    return count, sum(durations) / max(1, len(durations))


def run(settings: RunSettings) -> list[ClassResult]:
    races = 400 if settings.full else 45
    watch = Stopwatch()
    failures: list[str] = []
    with trial_catalog(settings, "leases") as made:
        trial = _Trial(made)
        pointed = _at_points(made, trial, failures)
        raced, mean = _threaded(made, trial, races, settings.seed, failures)
    details = [
        f"- {pointed} interleavings at the load's fault points ({len(POINTS)} points x rmi,"
        f" prune, gc) and {raced} races in two threads (the rival after a random delay"
        f" within the load; mean race {mean * 1000:.0f} ms).",
        "- Checked after each: the load succeeded and `fsck` finds no error (no row"
        " without its file).",
        *(f"- FAILED: {line}" for line in failures[:20]),
    ]
    return [
        ClassResult(
            "leases: load racing rmi/prune/gc of shared layers",
            settings.backend,
            pointed + raced,
            sum(not line.startswith("  ") for line in failures),
            watch.seconds,
            details,
        )
    ]

"""Fuzzing (issue 12, item 6): the parsers of untrusted input may raise only catalog
errors (CatalogError and its kinds), never another exception.

Hypothesis generates the inputs, shaped like what each parser reads so that the search
gets past the first check: references and shell patterns, the listing's and prune's
filters (evaluated on a real catalog of the backend under test), Docker's timestamps and
durations, image configs, whole image archives (tar members from the formats' own
names, truncated, bit-flipped, compressed) and layer tars (read into the store and into
squash's index, `changeset.Tree`). The bounded form tries a few hundred inputs per
parser; the full form thousands, and then Atheris, coverage-guided, for a bounded time
per parser when it is installed (benchmarks/reliability/atheris_targets.py).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import string
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from benchmarks.reliability.corpus import CONFIG, LAYER, Layout, docker_members, tar
from benchmarks.reliability.hostile import catalog_under_test
from benchmarks.reliability.results import ClassResult, RunSettings
from catalog.docker.filters import filters_from_json, label_checks, parse_filter_flags
from catalog.docker.gotime import parse_docker_timestamp, parse_duration
from catalog.docker.jsontext import decode_json
from catalog.docker.pathmatch import path_match, path_pattern_regex
from catalog.domain.changeset import Tree
from catalog.domain.imageconfig import parse_config
from catalog.domain.reference import (
    familiar_match,
    parse_any_reference,
    parse_docker_ref,
    parse_normalized_named,
    reference_filter_match,
)
from catalog.errors import CatalogError
from catalog.services.listing import LIST_FILTERS, list_images
from catalog.services.prune import PRUNE_FILTERS, prune_candidates
from catalog.storage.archive.formats import read_archive
from catalog.storage.archive.source import open_archive
from catalog.storage.content import ContentStore
from catalog.storage.layers import ingest_layer

# --- what the inputs look like ----------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_documents = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)

REFERENCE_ALPHABET = string.ascii_letters + string.digits + "._-/:@+[]*?\\^" + "é\x00 "
references = (
    st.text(alphabet=REFERENCE_ALPHABET, max_size=80)
    | st.from_regex(
        r"\A([a-z0-9.-]{1,20}(:[0-9]{1,6})?/)?[a-z0-9._/-]{1,40}(:[A-Za-z0-9._-]{0,130})?"
        r"(@sha256:[0-9a-f]{0,70})?\Z"
    )
    | st.text(max_size=40)
)

times = (
    st.from_regex(r"\A[-+]?[0-9]{0,25}(\.[0-9]{0,25})?(ns|us|µs|ms|s|m|h|x)?\Z")
    | st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{1,2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,12})?)?)?)?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
    )
    | st.text(alphabet="0123456789-+:.TZhms ", max_size=30)
    | st.text(max_size=20)
)

filter_values = (
    times
    | references
    | st.sampled_from(["true", "false", "1", "0", "maybe", "", "k=v", "k!=v", "k", "["])
    | st.text(max_size=20)
)
filter_documents = st.dictionaries(
    st.sampled_from([*LIST_FILTERS, *PRUNE_FILTERS, "foo", "Dangling"]) | st.text(max_size=8),
    st.lists(filter_values, max_size=3)
    | st.dictionaries(filter_values, st.booleans() | json_scalars, max_size=3),
    max_size=4,
)
filter_texts = (
    filter_documents.map(json.dumps)
    | json_documents.map(json.dumps)
    | st.text(max_size=60)
    | st.binary(max_size=60).map(lambda b: b.decode("latin-1"))
)


def _replace_somewhere(document: Any, rng: random.Random, value: Any) -> Any:
    """`document` with one value, somewhere inside it, replaced by `value`."""
    if not isinstance(document, dict | list) or not document or rng.random() < 0.3:
        return value
    copy = dict(document) if isinstance(document, dict) else list(document)
    key: Any = rng.choice(list(copy)) if isinstance(copy, dict) else rng.randrange(len(copy))
    copy[key] = _replace_somewhere(copy[key], rng, value)
    return copy


@st.composite
def configs(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        return json.dumps(draw(json_documents)).encode()
    document = json.loads(CONFIG)
    rng = random.Random(draw(st.integers(0, 2**32)))  # noqa: S311 - shapes, not secrets
    for _ in range(draw(st.integers(1, 3))):
        replacement = draw(json_documents | times | st.sampled_from(["windows", "", None]))
        document = _replace_somewhere(document, rng, replacement)
    raw = json.dumps(document).encode()
    if choice == 3:
        raw = raw.replace(b"2024", draw(st.sampled_from([b"9999", b"0000", b"0001", b"x"])))
    return raw


ARCHIVE_NAMES = [
    "manifest.json",
    "index.json",
    "oci-layout",
    "c.json",
    "l0/layer.tar",
    "repositories",
    "blobs/sha256/" + "a" * 64,
    "../x",
    "/abs",
    "l0",
]


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """`data` truncated, bit-flipped, padded or compressed, or as it is."""
    how = draw(st.integers(0, 5))
    if how == 1 and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == 2 and data:
        position = draw(st.integers(0, len(data) - 1))
        flip = draw(st.integers(1, 255))
        return data[:position] + bytes([data[position] ^ flip]) + data[position + 1 :]
    if how == 3:
        return data + draw(st.binary(max_size=600))
    if how == 4:
        return zlib.compress(data) if draw(st.booleans()) else gzip.compress(data)
    return data


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        base = tar(docker_members())
    elif choice == 1:
        base = tar(Layout().members())
    elif choice == 2:
        members = []
        for _ in range(draw(st.integers(0, 5))):
            name = draw(st.sampled_from(ARCHIVE_NAMES) | st.text(max_size=20))
            content = draw(
                st.sampled_from([LAYER, CONFIG])
                | json_documents.map(lambda d: json.dumps(d).encode())
                | st.binary(max_size=100)
            )
            kind = draw(
                st.sampled_from(
                    [tarfile.REGTYPE] * 4 + [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE]
                )
            )
            link = draw(st.sampled_from(ARCHIVE_NAMES) | st.text(max_size=10))
            members.append((name, content, kind, link))
        base = _raw_tar(members)
    else:
        base = draw(st.binary(max_size=400))
    return _mutate(base, draw)


def _raw_tar(members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            if kind == tarfile.REGTYPE:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            else:
                archive.addfile(info)
    return buffer.getvalue()


LAYER_NAMES = [
    "a",
    "a/b",
    "./a",
    "/a",
    "../a",
    "a/../../b",
    ".wh.a",
    "a/.wh.b",
    "a/.wh..wh..opq",
    ".wh..wh.plnk/1",
    "",
    ".",
    "/",
    "x/",
    "a\\b",
]


@st.composite
def layers(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=400))
    entries = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(LAYER_NAMES) | st.text(max_size=15))
        kind = draw(
            st.sampled_from(
                [
                    tarfile.REGTYPE,
                    tarfile.DIRTYPE,
                    tarfile.SYMTYPE,
                    tarfile.LNKTYPE,
                    tarfile.FIFOTYPE,
                    tarfile.CHRTYPE,
                ]
            )
        )
        link = draw(st.sampled_from(LAYER_NAMES) | st.text(max_size=10))
        entries.append((name, draw(st.binary(max_size=30)), kind, link))
    return _mutate(_raw_tar(entries), draw)


# --- the targets ------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]


def tolerate(*works: Callable[[], object]) -> None:
    """Run each of `works`; a CatalogError is an answer, anything else escapes."""
    for work in works:
        with contextlib.suppress(CatalogError):
            work()


def check_reference(text: str) -> None:
    named = parse_normalized_named("registry.example:5000/team/app:1")
    tolerate(
        lambda: parse_normalized_named(text),
        lambda: parse_docker_ref(text),
        lambda: parse_any_reference(text),
        lambda: familiar_match(text, named),
        lambda: reference_filter_match(text, named),
        lambda: path_match(text, text),
        lambda: path_pattern_regex(text),
    )


def check_time(text: str) -> None:
    tolerate(
        *(lambda zone=zone: parse_docker_timestamp(text, NOW.astimezone(zone)) for zone in ZONES),
        lambda: parse_duration(text),
    )


def check_config(raw: bytes) -> None:
    tolerate(lambda: parse_config(raw))


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


def run_target(target: Target, examples: int, seed_value: int) -> tuple[int, list[str]]:
    """Hypothesis over one target: how many inputs it tried, and what escaped."""
    count = 0

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @seed(seed_value)
    @given(target.strategy)
    def trial(value: Any) -> None:
        nonlocal count
        count += 1
        tolerate(lambda: target.check(value))

    try:
        trial()
    except Exception as exc:  # the shrunk input's exception: what this suite looks for
        notes = " ".join(getattr(exc, "__notes__", []))[:300]
        return count, [f"{target.name}: {type(exc).__name__}: {str(exc)[:200]} ({notes})"]
    return count, []


def run(settings: RunSettings) -> list[ClassResult]:
    examples = 3000 if settings.full else 100
    started = time.perf_counter()
    total = 0
    failures: list[str] = []
    details: list[str] = []
    with (
        catalog_under_test(settings, "fuzz") as env,
        tempfile.TemporaryDirectory(dir=settings.workdir) as scratch,
    ):
        store = ContentStore(Path(scratch) / "store")
        spool = Path(scratch) / "spool"

        def evaluate(text: str) -> None:
            args = filters_from_json(text)
            label_checks(args)
            with env.catalog.database.read() as session:
                list_images(session=session, filters=args, all_images=True, shared_size=True)
                prune_candidates(session, args, NOW)

        def check_filters(text: str) -> None:
            tolerate(
                lambda: evaluate(text),
                lambda: parse_filter_flags([text, f"until={text}", f"label={text}"]),
            )

        def read(data: bytes) -> None:
            with open_archive(io.BytesIO(data), temporary_dir=spool) as archive:
                read_archive(archive)

        def check_archive(data: bytes) -> None:
            tolerate(lambda: read(data))

        def check_layer(data: bytes) -> None:
            tolerate(
                lambda: ingest_layer(store, io.BytesIO(data)),
                lambda: Tree().apply_layer("fuzz", io.BytesIO(data)),
            )

        targets = [
            Target("references and patterns", references, check_reference),
            Target("filters (listing and prune, on the catalog)", filter_texts, check_filters),
            Target("times and durations", times, check_time),
            Target(
                "JSON text",
                st.binary(max_size=100) | json_documents.map(json.dumps),
                decode_json_quietly,
            ),
            Target("image configs", configs(), check_config),
            Target("image archives", archives(), check_archive),
            Target("layer tars (store and squash index)", layers(), check_layer),
        ]
        for target in targets:
            tried, escaped = run_target(target, examples, settings.seed)
            total += tried
            failures += escaped
            details.append(f"- {target.name}: {tried} inputs")
    results = [
        ClassResult(
            "fuzzing (Hypothesis)",
            settings.backend,
            total,
            len(failures),
            time.perf_counter() - started,
            [*details, *(f"- FAILED {line}" for line in failures)],
        )
    ]
    if settings.full and settings.database_url is None:  # Atheris needs no database
        results.append(run_atheris(settings))
    return results


def decode_json_quietly(data: bytes | str) -> None:
    tolerate(lambda: decode_json(data))


ATHERIS_TARGETS = ("reference", "time", "filters", "config", "archive", "layer")


def run_atheris(settings: RunSettings, seconds: int = 60) -> ClassResult:
    """Each Atheris target for `seconds`, in a process of its own (libFuzzer exits)."""
    started = time.perf_counter()
    try:
        import atheris  # noqa: F401
    except ImportError:
        return ClassResult(
            "fuzzing (Atheris, coverage-guided)",
            settings.backend,
            0,
            0,
            0.0,
            ["- not run: atheris is not installed (`pip install atheris`)"],
        )
    failures: list[str] = []
    details: list[str] = []
    runs = 0
    for name in ATHERIS_TARGETS:
        corpus = settings.workdir / f"atheris-{name}"
        corpus.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.reliability.atheris_targets",
                name,
                f"-max_total_time={seconds}",
                f"-seed={settings.seed}",
                "-rss_limit_mb=2048",
                str(corpus),
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            timeout=seconds * 3 + 60,
            check=False,
        )
        executed = [line for line in done.stderr.splitlines() if line.startswith("Done ")]
        count = int(executed[-1].split()[1]) if executed else 0
        runs += count
        details.append(f"- {name}: {count} runs in {seconds} s")
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-6:])[:400]
            failures.append(f"{name}: exit {done.returncode}: {tail}")
    return ClassResult(
        "fuzzing (Atheris, coverage-guided)",
        settings.backend,
        runs,
        len(failures),
        time.perf_counter() - started,
        [*details, *(f"- FAILED {line}" for line in failures)],
    )

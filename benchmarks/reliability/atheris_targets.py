"""Atheris (libFuzzer for Python), coverage-guided, over the parsers of untrusted input:
the full form of the fuzzing class runs each target in a process of its own.

    python -m benchmarks.reliability.atheris_targets TARGET [libFuzzer options] [CORPUS]

TARGET is one of reference, time, filters, config, archive, layer. An exception that is
not a CatalogError is a finding: libFuzzer prints it and exits non-zero.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import atheris

# Instrumented for coverage: what is imported inside (imported first, here).
with atheris.instrument_imports():
    from catalog.docker.filters import filters_from_json, label_checks
    from catalog.docker.gotime import parse_docker_timestamp, parse_duration
    from catalog.docker.pathmatch import path_match, path_pattern_regex
    from catalog.domain.changeset import Tree
    from catalog.domain.imageconfig import parse_config
    from catalog.domain.reference import parse_any_reference, parse_normalized_named
    from catalog.storage.archive.formats import read_archive
    from catalog.storage.archive.source import open_archive
    from catalog.storage.content import ContentStore
    from catalog.storage.layers import ingest_layer

# After the instrumented imports, which it would otherwise import first.
from benchmarks.reliability.fuzz import tolerate

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SCRATCH = Path(tempfile.mkdtemp(prefix="catalog-atheris-"))
STORE = ContentStore(SCRATCH / "store")


def _text(data: bytes) -> str:
    text: str = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    return text


def reference(data: bytes) -> None:
    text = _text(data)
    tolerate(
        lambda: parse_normalized_named(text),
        lambda: parse_any_reference(text),
        lambda: path_match(text, text),
        lambda: path_pattern_regex(text),
    )


def time(data: bytes) -> None:
    text = _text(data)
    tolerate(lambda: parse_docker_timestamp(text, NOW), lambda: parse_duration(text))


def filters(data: bytes) -> None:
    text = _text(data)
    tolerate(lambda: label_checks(filters_from_json(text)))


def config(data: bytes) -> None:
    tolerate(lambda: parse_config(data))


def _read(data: bytes) -> None:
    with open_archive(io.BytesIO(data), temporary_dir=SCRATCH / "spool") as opened:
        read_archive(opened)


def archive(data: bytes) -> None:
    tolerate(lambda: _read(data))


def layer(data: bytes) -> None:
    tolerate(
        lambda: ingest_layer(STORE, io.BytesIO(data)),
        lambda: Tree().apply_layer("fuzz", io.BytesIO(data)),
    )


TARGETS: dict[str, Callable[[bytes], None]] = {
    "reference": reference,
    "time": time,
    "filters": filters,
    "config": config,
    "archive": archive,
    "layer": layer,
}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

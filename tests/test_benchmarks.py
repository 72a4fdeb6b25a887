"""The benchmark harness (benchmarks/): the generator's catalogs, and a smoke run at N=200
on the backend under test that must give sane numbers, equal answers from catalog and the
baseline, and a RESULTS.md with every section."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.environment import TEST_DATABASE_URL_ENV, backend

from catalog.context import Catalog
from catalog.db.models import Image, ImageReference
from catalog.docker.filters import FilterArgs
from catalog.domain.digest import chain_ids
from catalog.domain.imageconfig import parse_config
from catalog.services.inspect import inspect_image
from catalog.services.listing import list_images

REPOSITORY = Path(__file__).resolve().parents[1]
# The harness is not part of the installed package: reach it in the source tree, after
# every installed module (so `catalog` stays the installed one).
if str(REPOSITORY) not in sys.path:
    sys.path.append(str(REPOSITORY))

from benchmarks import baseline  # noqa: E402
from benchmarks.generate import generate, plan  # noqa: E402


def rows_of(tables: dict[str, Any], name: str) -> list[tuple[Any, ...]]:
    _table, columns, rows = tables[name]
    return [dict(zip(columns, row, strict=True)) for row in rows]  # type: ignore[misc]


def test_plan_is_deterministic_and_shaped_like_a_real_host() -> None:
    tables, result = plan(600, seed=3)
    again, _ = plan(600, seed=3)
    assert [rows for _, _, rows in tables.values()] == [rows for _, _, rows in again.values()]
    other, _ = plan(600, seed=4)
    assert other["images"][2] != tables["images"][2]

    images = rows_of(tables, "images")
    assert len(images) == 600 == result.images
    by_id = {image["id"]: image for image in images}
    configs = {row["image_id"]: row["config"] for row in rows_of(tables, "image_configs")}
    layers = {row["chain_id"]: row for row in rows_of(tables, "layers")}
    stacks: dict[str, list[str]] = defaultdict(list)
    for row in rows_of(tables, "image_layers"):
        stacks[row["image_id"]].append(row["chain_id"])
    references = Counter(row["image_id"] for row in rows_of(tables, "image_references"))
    children = Counter(image["parent_id"] for image in images if image["parent_id"])
    for image in images:
        config = parse_config(configs[image["id"]])
        # The ID is the config's digest, and the rows say what the config says.
        assert image["id"] == "sha256:" + hashlib.sha256(configs[image["id"]]).hexdigest()
        assert stacks[image["id"]] == chain_ids(config.diff_ids)
        assert 3 <= len(config.diff_ids) <= 15
        assert image["size"] == sum(layers[c]["diff_size"] for c in stacks[image["id"]])
        assert image["top_chain_id"] == stacks[image["id"]][-1]
        for chain in stacks[image["id"]]:
            assert layers[chain]["parent_chain_id"] in (None, *stacks[image["id"]])
        # Parents come before their children (rows go in in this order).
        if image["parent_id"]:
            assert list(by_id).index(image["parent_id"]) < list(by_id).index(image["id"])
    dangling = [i for i in images if not references[i["id"]] and not children[i["id"]]]
    intermediates = [i for i in images if not references[i["id"]] and children[i["id"]]]
    assert 0.08 * 600 <= len(dangling) <= 0.12 * 600
    assert intermediates and all(i["parent_id"] for i in intermediates)
    assert result.intermediates == len(intermediates)
    # Several tags per repository, digests too; skewed families share base chains.
    tags = Counter(r["repository"] for r in rows_of(tables, "image_references") if r["tag"])
    assert max(tags.values()) >= 5
    assert any(r["digest"] for r in rows_of(tables, "image_references"))
    users = Counter(chain for stack in stacks.values() for chain in stack)
    assert max(users.values()) > 0.1 * len(images)
    containers = rows_of(tables, "containers")
    assert len(containers) == 120
    assert len({c["state"] for c in containers}) >= 4
    per_image = Counter(c["image_id"] for c in containers)
    assert max(per_image.values()) >= 3  # popular images have several
    created = sorted(i["created"] for i in images)
    assert (created[-1] - created[0]).days > 365
    labels = Counter(row["key"] for row in rows_of(tables, "image_labels"))
    assert {"maintainer", "com.example.team", "com.example.tier"} <= set(labels)


def test_generated_catalog_reads_back_as_catalog_wrote_it(catalog: Catalog) -> None:
    result = generate(catalog, images=300, seed=5)
    assert result.rows["images"] == 300
    with catalog.database.read() as session:
        assert session.scalar(select(Image.id).limit(1)) is not None
        ours = list_images(session=session, all_images=True, shared_size=True)
        state = baseline.load(session)
        # A synthetic image inspects like a loaded one (its config is its ID's bytes).
        tagged = session.scalars(
            select(ImageReference.image_id).where(ImageReference.tag.isnot(None)).limit(1)
        ).one()
        document = inspect_image(session=session, term=tagged)
        assert document["Id"] == tagged
        for name, filters in result.probes.filters().items():
            selected = list_images(session=session, filters=FilterArgs(filters))
            assert len(selected) < 0.5 * 300, name
            if name in ("before", "since", "until", "dangling", "label"):
                assert selected, name
            theirs = baseline.images(state, FilterArgs(filters))
            assert baseline.summaries_fingerprint(
                s.to_api() for s in selected
            ) == baseline.summaries_fingerprint(theirs), name
    assert len(ours) == 300
    theirs = baseline.images(state, all_images=True, shared_size=True)
    assert baseline.summaries_fingerprint(s.to_api() for s in ours) == (
        baseline.summaries_fingerprint(theirs)
    )
    assert any(s.shared_size > 0 for s in ours)
    assert sum(s.containers for s in ours) == 60


def test_generate_refuses_a_catalog_with_images(catalog: Catalog) -> None:
    generate(catalog, images=40, seed=1)
    with pytest.raises(ValueError, match="empty catalog"):
        generate(catalog, images=40, seed=1)


def results_of(entry: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for item in entry["measurements"]:
        for result in item["results"]:
            found[(result["kind"], result["name"])] = result
    return found


@pytest.mark.slow
def test_smoke_run_gives_sane_numbers_and_every_section(tmp_path: Path) -> None:
    env = dict(os.environ)
    server = os.environ.get(TEST_DATABASE_URL_ENV)
    if server:
        env["CATALOG_BENCH_DATABASE_URL"] = server
    output, raw = tmp_path / "RESULTS.md", tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--smoke",
            "--backends",
            backend(),
            "--output",
            str(output),
            "--json",
            str(raw),
            "--scratch",
            str(tmp_path / "scratch"),
        ],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(raw.read_text())
    assert report["unavailable"] == {}
    [run] = report["runs"]
    assert (run["backend"], run["images"]) == (backend(), 200)
    assert run["generation"]["rows"]["images"] == 200
    assert run["generation"]["containers"] == 40
    results = results_of(run)
    errors = {key: r["error"] for key, r in results.items() if "error" in r}
    assert not errors
    api = {name: r for (kind, name), r in results.items() if kind == "api"}
    # All, -a, seven filters, each with and without shared sizes.
    assert len(api) == 18
    for name, result in api.items():
        assert 0 < result["median"] < 30, name
        assert result["rss_mb"] > 10, name
        # Docker's algorithm over the same rows gives the same answer.
        assert result["fingerprint"] == results[("baseline", name)]["fingerprint"], name
        assert 0 < results[("baseline", name)]["median"] < 30
    assert api["list -a"]["count"] == 200
    assert 0 < api["filter dangling"]["count"] < api["list"]["count"] <= 200
    assert (
        results[("df", "system df")]["fingerprint"]
        == (results[("baseline", "system df")]["fingerprint"])
    )
    assert results[("baseline", "baseline load")]["count"] == 200
    floors = {name: r for (kind, name), r in results.items() if kind == "floor"}
    assert floors["floor images"]["rows"] == 200
    assert floors["floor shared"]["rows"] > floors["floor list"]["rows"] > 200
    reports = [r for (kind, _), r in results.items() if kind == "report"]
    assert reports and all(r["median"] > 0 for r in reports)
    cli = results[("cli", "cli images --format json")]
    assert cli["fingerprint"] == api["list"]["fingerprint"]
    assert cli["median"] > 0 and cli["rss_mb"] > 10
    [throughput] = report["throughput"]
    measured = results_of(throughput)
    assert measured[("load", "load")]["mib_per_s"] > 0
    assert measured[("squash", "squash")]["count"] == 1
    assert measured[("sha256sum", "sha256sum (floor)")]["median"] > 0

    text = output.read_text()
    for heading in (
        "# Benchmark results",
        "## Machine",
        "## Targets",
        "## Synthetic catalogs",
        f"## {backend()}, N=200",
        "### Through the Python API",
        "### Floors",
        "### Through the CLI process",
        "## Load and squash throughput",
    ):
        assert heading in text, heading
    assert "load average" in text
    assert "**DIFFERENT**" not in text

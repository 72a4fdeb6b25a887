"""One process running measurements: `python -m benchmarks.worker --root R --db URL`,
the measurement specs as a JSON list on stdin, the results as a JSON list on stdout.

Each spec is timed with a warm-up run and then repeated (up to `--repeat` times within
`--budget` seconds); the result keeps every time, their median, the answer's size and a
fingerprint of the answer (to check the baseline and catalog agree), and the peak RSS of
the measurement: the process's high-water mark, reset before each spec through
/proc/self/clear_refs where Linux allows, so one worker may run several specs (the smoke
run does) while a full run gives each spec a fresh process.

Kinds of spec: `generate` (build the synthetic catalog), `api` (`list_images`, summaries
as Python objects), `http` (the bytes of an Engine API answer, `GET /images/json` or
`/system/df`, from `catalog serve`'s ASGI application in process: what a client
receives, without the network), `df` (`disk_usage`), `report` (`run_report` of
catalog.services.reports), `floor` (plain SELECTs), `cli` (the `catalog` console script as
a child process: wall time, and its own peak RSS from wait4), `baseline` (Docker's
algorithm: load, then each variant), `write` (one tag, rmi, load or squash, with the kept
facts or without: benchmarks.writes), `load`, `squash` and `sha256sum` (throughput on a
large image).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks import baseline
from catalog.context import Catalog, open_catalog
from catalog.db.models import Container, Image, ImageLabel, ImageLayer, ImageReference, Layer
from catalog.docker.filters import FilterArgs
from catalog.services.listing import DiskUsage, ImageSummary, disk_usage, list_images
from catalog.settings import Location, normalize_database_url

Spec = dict[str, Any]
Result = dict[str, Any]

# Plain SELECTs, no join and no aggregation: the columns each answer is made of.
FLOOR_QUERIES: dict[str, list[Any]] = {
    "images": [select(Image.id, Image.parent_id, Image.created, Image.size)],
    "references": [
        select(
            ImageReference.image_id,
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.digest,
        )
    ],
    "labels": [select(ImageLabel.image_id, ImageLabel.key, ImageLabel.value)],
    "containers": [select(Container.image_id, Container.state)],
    "image_layers": [select(ImageLayer.image_id, ImageLayer.chain_id)],
    "layers": [select(Layer.chain_id, Layer.diff_size)],
}
FLOORS = {
    # A listing: its images' columns, their references, labels and containers.
    "list": ("images", "references", "labels", "containers"),
    # With shared sizes (and system df): every image's chains and the chains' sizes too.
    "shared": ("images", "references", "labels", "containers", "image_layers", "layers"),
    "images": ("images",),
}


# --- memory ------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """VmHWM of this process, else ru_maxrss (KiB on Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- timing ------------------------------------------------------------------------------


def timed(
    run: Callable[[], Any], *, repeat: int, budget: float, warmup: bool = True
) -> tuple[list[float], Any]:
    """Times of `run` after a warm-up (whose time decides how many repetitions fit the
    budget), and the last answer. Each run starts with the previous answer dropped, so
    that the process's peak RSS is one call's, not two answers held at once."""
    answer = None
    first = None
    times: list[float] = []
    if warmup:
        started = time.perf_counter()
        answer = run()
        first = time.perf_counter() - started
        if first > budget / 4:
            # Seconds per run: caches are not what this time is made of; keep it.
            times.append(first)
    count = repeat if first is None else max(1, min(repeat, int(budget / max(first, 1e-6))))
    count -= len(times)
    for _ in range(count):
        answer = None
        started = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - started)
    return times, answer


def summary(times: list[float]) -> dict[str, Any]:
    return {
        "times": times,
        "median": statistics.median(times),
        "min": min(times),
        "repeats": len(times),
    }


# --- what is measured --------------------------------------------------------------------


def _api(catalog: Catalog, spec: Spec) -> Callable[[], list[ImageSummary]]:
    filters = FilterArgs(spec.get("filters") or {})

    def run() -> list[ImageSummary]:
        with catalog.database.read() as session:
            return list_images(
                session=session,
                filters=filters,
                all_images=bool(spec.get("all")),
                shared_size=bool(spec.get("shared")),
            )

    return run


def api_fingerprint(answer: list[ImageSummary]) -> str:
    return baseline.summaries_fingerprint(s.to_api() for s in answer)


def df_fingerprint(document: dict[str, Any]) -> str:
    items = baseline.summaries_fingerprint(document["Items"])
    rest = {k: v for k, v in document.items() if k != "Items"}
    return f"{items}:{json.dumps(rest, sort_keys=True)}"


def _df_usage(catalog: Catalog) -> DiskUsage:
    """`disk_usage` as the Python API gives it (the document is built for the comparison
    only, after the runs: catalog/server/documents.py writes the Engine API's)."""
    with catalog.database.read() as session:
        return disk_usage(session=session)


def usage_document(usage: DiskUsage) -> dict[str, Any]:
    return {
        "ActiveCount": usage.active_count,
        "Reclaimable": usage.reclaimable,
        "TotalCount": len(usage.images),
        "TotalSize": usage.total_size,
        "Items": [image.to_api() for image in usage.images],
        "Containers": usage.containers_total,
        "Running": usage.containers_running,
    }


def report_names() -> list[str]:
    """Every report of catalog.services.reports; none while that module is missing."""
    try:
        from catalog.services.reports import REPORTS
    except ImportError:
        return []
    return list(REPORTS)


def _report(catalog: Catalog, name: str) -> Callable[[], Any]:
    from catalog.services.reports import run_report

    def run() -> Any:
        with catalog.database.read() as session:
            return run_report(session=session, name=name).rows

    return run


def _size_of(answer: Any) -> int | None:
    if isinstance(answer, list | tuple | dict):
        return len(answer)
    for attribute in ("rows", "items", "images", "entries"):
        value = getattr(answer, attribute, None)
        if isinstance(value, list | tuple):
            return len(value)
    return None


def _floor(catalog: Catalog, name: str) -> Callable[[], int]:
    statements = [s for part in FLOORS[name] for s in FLOOR_QUERIES[part]]

    def run() -> int:
        rows = 0
        with catalog.database.read() as session:
            for statement in statements:
                rows += len(session.execute(statement).all())
        return rows

    return run


def _http(catalog: Catalog, spec: Spec, repeat: int, budget: float) -> Result:
    """GET `spec["path"]` from the Engine API application, every byte read and dropped as
    it comes (the peak RSS is the server's, not a client's buffer); then once more, kept
    and parsed, to check the answer."""
    import warnings

    with warnings.catch_warnings():  # starlette would have httpx2 instead of httpx
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from catalog.server.app import EngineApp

    client = TestClient(EngineApp(catalog))
    kept = bytearray()
    keeping = [False]

    def run() -> int:
        size = 0
        with client.stream("GET", spec["path"]) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{spec['path']}: {response.status_code} {response.read()!r}")
            for chunk in response.iter_raw():
                size += len(chunk)
                if keeping[0]:
                    kept.extend(chunk)
        return size

    times, size = timed(run, repeat=repeat, budget=budget)
    result: Result = {**summary(times), "output_bytes": size, "rss_mb": peak_rss_mb()}
    keeping[0] = True
    run()
    client.close()
    document = json.loads(bytes(kept))
    if isinstance(document, list):
        items = document
    else:  # /system/df: the legacy list, or (1.52 verbose) the items of ImageUsage
        items = document.get("Images") or document.get("ImageUsage", {}).get("Items", [])
    result["count"] = len(items)
    result["fingerprint"] = baseline.summaries_fingerprint(items)
    return result


def _write(catalog: Catalog, location: Location, spec: Spec) -> list[Result]:
    """One write with the kept facts and without: two results."""
    from benchmarks import writes

    if spec["op"] == "tag" and "source" not in spec:
        with catalog.database.read() as session:
            spec["source"] = session.scalars(
                select(ImageReference.image_id).where(ImageReference.tag.isnot(None)).limit(1)
            ).one()
    found = writes.measure(catalog, location.root / "writes", spec)
    name = f"write {spec['op']}"
    return [
        {"name": name, **summary(found["kept"])},
        {"name": f"{name} (without kept facts)", **summary(found["bare"])},
    ]


def catalog_command() -> list[str]:
    """The `catalog` console script of this Python, else `python -m catalog`."""
    script = Path(sys.executable).with_name("catalog")
    if script.is_file():
        return [str(script)]
    found = shutil.which("catalog")
    return [found] if found else [sys.executable, "-m", "catalog"]


# Starts the measured command from a small, fresh process and reports its wall time and
# peak RSS. Linux carries a process's peak RSS across fork and exec (`maxrss` of the mm it
# replaced), so a command started straight from this worker would report the worker's own
# RSS (the earlier answers it read) as the command's: 1.2 GB for a 60 MB process at 1M.
_LAUNCHER = """
import os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as file:
    file.write(f"{wall} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall time, peak RSS (MiB) and stdout of a child process (started by _LAUNCHER)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as report,
    ):
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, report.name, *command]
        process = subprocess.run(launcher, stdout=out, stderr=err, env=env, check=False)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[-4:])} exited {process.returncode}: "
                f"{err.read().decode(errors='replace').strip()[-500:]}"
            )
        wall, maxrss = report.read().split()
        return float(wall), int(maxrss) / 1024, out.read().decode()


def _cli(location: Location, spec: Spec, repeat: int, budget: float) -> Result:
    """`catalog ARGS` on the catalog; with `empty`, on a new one of its own (created by
    the warm-up run: the timed ones find it at the current schema)."""
    where = ["--root", str(location.root), "--db"]
    where.append(location.database_url.render_as_string(hide_password=False))
    if spec.get("empty"):
        where = ["--root", tempfile.mkdtemp(prefix="catalog-bench-empty-")]
    command = [*catalog_command(), *where, *spec["args"]]
    env = dict(os.environ)
    walls: list[float] = []
    peaks: list[float] = []
    output = ""
    count = 1
    if repeat > 1:
        first, _, output = run_child(command, env)  # warm-up: OS caches, .pyc files
        count = max(1, min(repeat, int(budget / max(first, 1e-6))))
    for _ in range(count):
        wall, peak, output = run_child(command, env)
        walls.append(wall)
        peaks.append(peak)
    result: Result = {**summary(walls), "rss_mb": max(peaks), "rss_scope": "child process"}
    if spec["args"][:1] in (["images"], ["system"]) and "json" in spec["args"]:
        document = json.loads(output)
        if isinstance(document, list):
            result["count"] = len(document)
            result["fingerprint"] = baseline.summaries_fingerprint(document)
        elif isinstance(document, dict) and "ImageUsage" in document:
            result["count"] = document["ImageUsage"].get("TotalCount", 0)
    result["output_bytes"] = len(output.encode())
    return result


def _baseline(catalog: Catalog, spec: Spec, repeat: int, budget: float) -> list[Result]:
    """Docker's algorithm: the load (the daemon's start-up) once timed on its own, then
    each variant answered from the loaded state."""
    results: list[Result] = []

    def load() -> baseline.DaemonState:
        with catalog.database.read() as session:
            return baseline.load(session)

    times, state = timed(load, repeat=repeat, budget=budget)
    results.append({"name": "baseline load", **summary(times), "count": len(state.images)})
    for variant in spec["variants"]:
        if variant.get("df"):

            def answer_df() -> dict[str, Any]:
                return baseline.disk_usage(state)

            times, document = timed(answer_df, repeat=repeat, budget=budget)
            results.append(
                {
                    "name": variant["name"],
                    **summary(times),
                    "count": document["TotalCount"],
                    "fingerprint": df_fingerprint(document),
                }
            )
            continue
        filters = FilterArgs(variant.get("filters") or {})

        def answer(filters: FilterArgs = filters, variant: Spec = variant) -> list[dict[str, Any]]:
            return baseline.images(
                state,
                filters,
                all_images=bool(variant.get("all")),
                shared_size=bool(variant.get("shared")),
            )

        times, listed = timed(answer, repeat=repeat, budget=budget)
        results.append(
            {
                "name": variant["name"],
                **summary(times),
                "count": len(listed),
                "fingerprint": baseline.summaries_fingerprint(listed),
            }
        )
    return results


def _sha256sum(spec: Spec, repeat: int, budget: float) -> Result:
    files = sorted(str(p) for p in Path(spec["directory"]).glob(spec.get("glob", "*")))
    walls: list[float] = []
    peaks: list[float] = []
    run_child(["sha256sum", *files])  # warm-up: the page cache, as for load
    for _ in range(max(1, repeat)):
        wall, peak, _ = run_child(["sha256sum", *files])
        walls.append(wall)
        peaks.append(peak)
        if sum(walls) > budget:
            break
    return {**summary(walls), "rss_mb": max(peaks), "rss_scope": "child process"}


@contextlib.contextmanager
def profiled(enabled: bool, into: Result) -> Iterator[None]:
    """Run under pyinstrument (when asked and installed), its text summary into `into`."""
    if not enabled:
        yield
        return
    try:
        from pyinstrument import Profiler
    except ModuleNotFoundError:
        into["profile"] = "pyinstrument is not installed (pip install pyinstrument)"
        yield
        return
    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        into["profile"] = profiler.output_text(unicode=False, color=False, show_all=False)


def run_spec(
    spec: Spec, *, location: Location, catalog: Catalog | None, repeat: int, budget: float
) -> list[Result]:
    kind = spec["kind"]
    name = spec.get("name", kind)
    if kind == "generate":
        from benchmarks.generate import generate

        assert catalog is not None
        generated = generate(catalog, images=spec["images"], seed=spec.get("seed", 7))
        return [{"name": name, "generation": generated.to_json(), "median": generated.seconds}]
    if kind == "cli":
        return [{"name": name, **_cli(location, spec, repeat, budget)}]
    if kind == "http":
        assert catalog is not None
        return [{"name": name, **_http(catalog, spec, repeat, budget)}]
    if kind == "write":
        assert catalog is not None
        return _write(catalog, location, spec)
    if kind == "sha256sum":
        return [{"name": name, **_sha256sum(spec, repeat, budget)}]
    if kind in ("load", "squash"):
        from benchmarks import throughput

        assert catalog is not None
        return [{"name": name, **throughput.run(kind, catalog, spec)}]
    assert catalog is not None
    if kind == "baseline":
        return _baseline(catalog, spec, repeat, budget)
    result: Result = {"name": name}
    if kind == "api":
        run: Callable[[], Any] = _api(catalog, spec)
    elif kind == "df":

        def run() -> DiskUsage:
            return _df_usage(catalog)

    elif kind == "floor":
        run = _floor(catalog, spec["floor"])
    elif kind == "report":
        run = _report(catalog, spec["report"])

    else:
        raise ValueError(f"unknown measurement kind {kind!r}")
    times, answer = timed(run, repeat=repeat, budget=budget)
    # The peak of the runs, before the answer is compared (a fingerprint of 100k
    # summaries holds them all as dicts, and their JSON, at once).
    result.update(summary(times), rss_mb=peak_rss_mb())
    if kind == "api":
        result["count"] = len(answer)
        result["fingerprint"] = api_fingerprint(answer)
    elif kind == "df":
        result["count"] = len(answer.images)
        result["fingerprint"] = df_fingerprint(usage_document(answer))
    elif kind == "floor":
        result["rows"] = answer
    else:
        result["count"] = _size_of(answer)
    if spec.get("profile"):
        with profiled(True, result):
            run()
    return [result]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=30.0)
    options = parser.parse_args(argv)
    specs: list[Spec] = json.load(sys.stdin)
    location = Location(root=options.root, database_url=normalize_database_url(options.db))
    needs_catalog = any(spec["kind"] not in ("cli", "sha256sum") for spec in specs)
    catalog = open_catalog(location) if needs_catalog else None
    results: list[Result] = []
    try:
        for spec in specs:
            reset = reset_peak_rss()
            try:
                # Nothing a measurement prints may corrupt the JSON on stdout.
                with contextlib.redirect_stdout(io.StringIO()):
                    found = run_spec(
                        spec,
                        location=location,
                        catalog=catalog,
                        repeat=options.repeat,
                        budget=options.budget,
                    )
            except Exception as exc:
                found = [
                    {
                        "name": spec.get("name", spec["kind"]),
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc(limit=8),
                    }
                ]
            for result in found:
                result.setdefault("rss_mb", peak_rss_mb())
                result.setdefault("rss_scope", "measurement" if reset else "process")
                result.setdefault("kind", spec["kind"])
            results.append({"spec": spec, "results": found})
    finally:
        if catalog is not None:
            catalog.close()
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

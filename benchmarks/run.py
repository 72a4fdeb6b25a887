"""Run every benchmark and write benchmarks/RESULTS.md.

    python -m benchmarks.run                       # 1k, 10k, 100k on SQLite and PostgreSQL
    python -m benchmarks.run --million             # and 1M (on SQLite)
    python -m benchmarks.run --smoke --output DIR/RESULTS.md   # N=200, seconds

PostgreSQL: CATALOG_BENCH_DATABASE_URL names a server where databases may be created;
without it a throwaway cluster is started with .ci/start-postgres (and stopped after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy
from sqlalchemy.engine import URL

from benchmarks import results as render
from benchmarks.backends import (
    BACKENDS,
    BackendUnavailable,
    new_database,
    postgres_server,
    server_version,
)
from benchmarks.generate import Probes
from benchmarks.throughput import make_image
from benchmarks.worker import report_names
from benchmarks.writes import OPERATIONS as WRITES

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
Spec = dict[str, Any]


def listing_variants(probes: Probes) -> list[Spec]:
    """Every listing measured: all, -a and each filter, without and with shared sizes."""
    plain: list[tuple[str, dict[str, list[str]], bool]] = [
        ("list", {}, False),
        ("list -a", {}, True),
    ]
    plain += [(f"filter {name}", filters, False) for name, filters in probes.filters().items()]
    variants = []
    for shared in (False, True):
        for name, filters, all_images in plain:
            variants.append(
                {
                    "name": name + (" --shared-size" if shared else ""),
                    "filters": filters,
                    "all": all_images,
                    "shared": shared,
                }
            )
    return variants


def http_path(variant: Spec) -> str:
    """The Engine API request of a listing variant (the docker CLI's newest version)."""
    query = {}
    if variant.get("all"):
        query["all"] = "1"
    if variant.get("shared"):
        query["shared-size"] = "1"
    if variant.get("filters"):
        query["filters"] = json.dumps(variant["filters"], separators=(",", ":"))
    return "/v1.52/images/json" + ("?" + urlencode(query) if query else "")


def cli_specs() -> list[Spec]:
    def cli(name: str, *args: str, **extra: Any) -> Spec:
        return {"kind": "cli", "name": name, "args": list(args), **extra}

    return [
        cli("cli --version (start-up)", "--version"),
        cli("cli --help (start-up)", "--help"),
        cli("cli images, an empty catalog (start-up)", "images", empty=True),
        cli("cli images", "images"),
        cli("cli images --format json", "images", "--format", "json"),
        cli("cli images -a --format json", "images", "-a", "--format", "json"),
        cli(
            "cli images --shared-size --format json", "images", "--shared-size", "--format", "json"
        ),
        cli("cli system df", "system", "df"),
        cli("cli system df -v", "system", "df", "-v"),
        cli("cli system df --format json", "system", "df", "--format", "json"),
    ]


def write_specs(repeat: int) -> list[Spec]:
    """One write each, with the kept facts and without (benchmarks.writes)."""
    return [{"kind": "write", "name": f"write {op}", "op": op, "repeat": repeat} for op in WRITES]


def measurement_specs(
    probes: Probes, *, with_baseline: bool, html: Path, all_cli: bool = True, writes: int = 0
) -> list[Spec]:
    variants = listing_variants(probes)
    reports = report_names()
    specs: list[Spec] = [{"kind": "api", **variant} for variant in variants]
    specs += [{"kind": "http", "name": f"http {v['name']}", "path": http_path(v)} for v in variants]
    specs.append({"kind": "df", "name": "system df"})
    specs.append({"kind": "http", "name": "http system df", "path": "/v1.52/system/df?verbose=1"})
    specs += [{"kind": "report", "name": f"report {name}", "report": name} for name in reports]
    specs += [
        {"kind": "floor", "name": f"floor {name}", "floor": name}
        for name in ("images", "list", "shared")
    ]
    cli = cli_specs() + [
        {
            "kind": "cli",
            "name": f"cli report {name} --format json",
            "args": ["report", name, "--format", "json"],
        }
        for name in reports
    ]
    if not all_cli:  # the smoke run: one listing through the console script
        cli = [spec for spec in cli if spec["name"] == "cli images --format json"]
    specs += cli
    if reports and all_cli:
        specs.append(
            {"kind": "cli", "name": "cli report --html", "args": ["report", "--html", str(html)]}
        )
    if with_baseline:
        specs.append(
            {
                "kind": "baseline",
                "name": "baseline",
                "variants": [*variants, {"name": "system df", "df": True}],
            }
        )
    if writes:
        specs += write_specs(writes)
    return specs


class Runner:
    def __init__(self, options: argparse.Namespace, scratch: Path) -> None:
        self.options = options
        self.scratch = scratch
        self.log_lines: list[str] = []
        self.runs: list[dict[str, Any]] = []

    def log(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        line = f"[{stamp}] {message}"
        self.log_lines.append(line)
        print(line, file=sys.stderr, flush=True)

    def worker(self, root: Path, url: URL, specs: list[Spec]) -> list[dict[str, Any]]:
        """Run `specs` in one new process; its results (errors included)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPOSITORY), *filter(None, [env.get("PYTHONPATH")])]
        )
        command = [
            sys.executable,
            "-m",
            "benchmarks.worker",
            "--root",
            str(root),
            "--db",
            url.render_as_string(hide_password=False),
            "--repeat",
            str(self.options.repeat),
            "--budget",
            str(self.options.budget),
        ]
        done = subprocess.run(
            command,
            input=json.dumps(specs),
            capture_output=True,
            text=True,
            env=env,
            cwd=REPOSITORY,
            check=False,
        )
        if done.returncode != 0:
            error = done.stderr.strip().splitlines()[-1:] or ["no output"]
            return [
                {"spec": spec, "results": [{"name": spec.get("name"), "error": error[0]}]}
                for spec in specs
            ]
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found

    def measure(self, root: Path, url: URL, specs: list[Spec]) -> list[dict[str, Any]]:
        """Each spec in its own process (per-measurement RSS), or all in one (--shared)."""
        if self.options.shared_process:
            return self.worker(root, url, specs)
        found = []
        for spec in specs:
            found += self.worker(root, url, [spec])
            for result in found[-1]["results"]:
                self.log(f"    {render.one_line(result)}")
        return found

    def one_size(self, backend: str, server: URL | None, size: int) -> dict[str, Any]:
        label = f"{backend[:2]}{size}"
        entry: dict[str, Any] = {"backend": backend, "images": size}
        with new_database(backend, self.scratch, server, label) as url:
            root = self.scratch / f"root-{label}"
            self.log(f"{backend} N={size}: generating")
            generated = self.worker(
                root,
                url,
                [
                    {
                        "kind": "generate",
                        "name": "generate",
                        "images": size,
                        "seed": self.options.seed,
                    }
                ],
            )[0]["results"][0]
            if "error" in generated:
                entry["error"] = f"generation failed: {generated['error']}"
                self.log(entry["error"])
                return entry
            entry["generation"] = generated["generation"]
            entry["generation_rss_mb"] = generated.get("rss_mb")
            self.log(f"{backend} N={size}: generated in {generated['median']:.1f}s")
            probes = Probes(**generated["generation"]["probes"])
            with_baseline = size <= self.options.baseline_max
            listings_only = size == 1_000_000 and self.options.million_listings_only
            specs = measurement_specs(
                probes,
                with_baseline=with_baseline,
                html=self.scratch / f"report-{label}.html",
                all_cli=not self.options.smoke,
                writes=0 if listings_only else self.options.write_repeat,
            )
            if listings_only:  # the 1M targets are the listing's: no reports
                specs = [s for s in specs if "report" not in s["name"]]
                entry["reports_skipped"] = "--million-listings-only"
            if not with_baseline:
                entry["baseline_skipped"] = (
                    f"the baseline runs up to N={self.options.baseline_max} "
                    "(its container scan is O(images x containers))"
                )
            entry["measurements"] = self.measure(root, url, specs)
            if self.options.profile:
                entry["profiles"] = self.profile_misses(root, url, entry, size)
            shutil.rmtree(root, ignore_errors=True)
        return entry

    def profile_misses(
        self, root: Path, url: URL, entry: dict[str, Any], size: int
    ) -> dict[str, str]:
        """pyinstrument profiles of the API measurements that miss a target."""
        if size < self.options.profile_min:
            return {}
        missed = render.missed_measurements(entry, self.runs)
        profiles: dict[str, str] = {}
        for item in entry["measurements"]:
            spec = item["spec"]
            if spec["kind"] not in ("api", "df", "report") or spec.get("name") not in missed:
                continue
            self.log(f"  profiling {spec['name']}")
            done = self.worker(root, url, [{**spec, "profile": True}])
            result = done[0]["results"][0]
            profiles[spec["name"]] = result.get("profile") or result.get("error", "")
        return profiles

    def throughput(self, backend: str, server: URL | None, image: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"backend": backend}
        with new_database(backend, self.scratch, server, f"{backend[:2]}tp") as url:
            root = self.scratch / f"root-{backend}-throughput"
            specs: list[Spec] = [
                {
                    "kind": "sha256sum",
                    "name": "sha256sum (floor)",
                    "directory": str(Path(image["directory"]) / "blobs" / "sha256"),
                    "glob": "*",
                },
                {"kind": "load", "name": "load", **image, "repeat": self.options.throughput_repeat},
                {
                    "kind": "squash",
                    "name": "squash",
                    **image,
                    "repeat": self.options.throughput_repeat,
                },
            ]
            # sha256sum hashes the layers only: the config blob is a few hundred bytes.
            entry["measurements"] = self.measure(root, url, specs)
            shutil.rmtree(root, ignore_errors=True)
        return entry


def machine() -> dict[str, Any]:
    def read(command: list[str]) -> str:
        try:
            return subprocess.run(
                command, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) // (1024 * 1024)} GiB"
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "load_before": os.getloadavg(),
        "uptime_before": read(["uptime"]),
    }


@contextmanager
def scratch_directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    directory = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="Run the catalog benchmarks (issue 7)."
    )
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="image counts, comma-separated"
    )
    parser.add_argument(
        "--million", action="store_true", help="also N=1,000,000 (on --million-backends)"
    )
    parser.add_argument(
        "--million-backends",
        default="sqlite",
        help="the backends N=1,000,000 runs on, comma-separated (default sqlite)",
    )
    parser.add_argument(
        "--million-listings-only",
        action="store_true",
        help="at N=1,000,000 measure the listings, filters, system df and CLI only "
        "(the 1M targets), not the reports (minutes each) or the writes",
    )
    parser.add_argument(
        "--write-repeat", type=int, default=25, help="repetitions of each write measured"
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="sqlite and/or postgresql, comma-separated"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="repetitions per measurement (median)"
    )
    parser.add_argument(
        "--budget", type=float, default=15.0, help="seconds a measurement's repetitions may take"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--baseline-max", type=int, default=100_000, help="largest N the baseline runs at"
    )
    parser.add_argument(
        "--shared-process",
        action="store_true",
        help="run all measurements of a catalog in one process (RSS then per measurement "
        "by resetting the high-water mark)",
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--profile-min", type=int, default=100_000, help="profile missed targets from this N"
    )
    parser.add_argument("--throughput-bytes", type=int, default=1 << 30)
    parser.add_argument("--throughput-layers", type=int, default=10)
    parser.add_argument("--throughput-repeat", type=int, default=3)
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument("--scratch", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument(
        "--output", type=Path, help="default benchmarks/RESULTS.md (smoke: in the temp dir)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="the raw results, default results.json beside --output "
        "(python -m benchmarks.results renders them again)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="N=200, one repetition, one process, 8 MiB image"
    )
    options = parser.parse_args(argv)
    if options.smoke:
        options.sizes = "200"
        options.repeat = 1
        options.budget = 5.0
        options.shared_process = True
        options.profile = False
        options.throughput_bytes = 8 << 20
        options.throughput_layers = 3
        options.throughput_repeat = 1
        options.write_repeat = 2
    if options.output is None:
        smoke_dir = Path(tempfile.gettempdir()) / "catalog-bench-smoke"
        options.output = (smoke_dir if options.smoke else HERE) / "RESULTS.md"
    if options.json is None:
        options.json = options.output.with_name("results.json")
    options.size_list = [int(s) for s in options.sizes.split(",") if s]
    options.million_list = [b.strip() for b in options.million_backends.split(",") if b.strip()]
    if options.million:
        options.size_list.append(1_000_000)
    options.backend_list = [b.strip() for b in options.backends.split(",") if b.strip()]
    for backend in options.backend_list:
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    report: dict[str, Any] = {
        "machine": machine(),
        "options": {
            "sizes": options.size_list,
            "backends": options.backend_list,
            "repeat": options.repeat,
            "budget": options.budget,
            "seed": options.seed,
            "smoke": options.smoke,
            "shared_process": options.shared_process,
            "throughput_bytes": options.throughput_bytes,
            "throughput_layers": options.throughput_layers,
        },
        "runs": [],
        "throughput": [],
        "unavailable": {},
        "versions": {},
    }
    started = time.perf_counter()
    with scratch_directory(options.scratch) as scratch, ExitStack() as stack:
        runner = Runner(options, scratch)
        image = None
        if options.throughput:
            runner.log(f"writing the {options.throughput_bytes >> 20} MiB throughput image")
            image = make_image(
                scratch / "throughput-image",
                total_bytes=options.throughput_bytes,
                layers=options.throughput_layers,
                seed=options.seed,
            )
        for backend in options.backend_list:
            server: URL | None = None
            try:
                if backend == "postgresql":
                    server = stack.enter_context(postgres_server(scratch))
                    report["versions"][backend] = server_version(server)
                else:
                    report["versions"][backend] = server_version(
                        URL.create("sqlite", database=":memory:")
                    )
            except BackendUnavailable as exc:
                report["unavailable"][backend] = str(exc)
                runner.log(f"{backend}: unavailable: {exc}")
                continue
            for size in options.size_list:
                if size == 1_000_000 and backend not in options.million_list:
                    continue
                runner.runs.append(runner.one_size(backend, server, size))
            if image is not None:
                runner.log(f"{backend}: throughput")
                report["throughput"].append(runner.throughput(backend, server, image))
        if image is not None:
            report["throughput_image"] = {
                k: v for k, v in image.items() if k not in ("directory", "layer_files")
            }
    report["runs"] = runner.runs
    report["machine"]["load_after"] = os.getloadavg()
    report["machine"]["seconds"] = time.perf_counter() - started
    report["log"] = runner.log_lines
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=1, default=str))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(render.markdown(report))
    runner.log(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

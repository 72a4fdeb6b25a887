"""RESULTS.md from a run's results: the machine, the targets, and every figure.

Targets (issue 7), judged at N = 100,000 (or the largest N of the run, said so):

- T1 list with shared size through the API <= 1 s;
- T2 list with shared size <= 3x the floor;
- T3 every filtered listing <= 100 ms;
- T4 >= 10x faster than the baseline (Docker's algorithm), each listing and df;
- T5 10k -> 100k grows <= 12x, each API measurement;
- T6 peak RSS of a listing <= 300 MB (API and CLI);
- T7 squash and load of the 1 GiB image <= 3x `sha256sum` of its bytes.

A missed target gets its pyinstrument profile (when the run made one) and the reason
written for it in REASONS, next to the figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

TARGET_SIZE = 100_000
SMALL_SIZE = 10_000
LIST_SECONDS = 1.0
FLOOR_RATIO = 3.0
FILTER_SECONDS = 0.100
BASELINE_RATIO = 10.0
GROWTH = 12.0
RSS_MB = 300.0
THROUGHPUT_RATIO = 3.0
PROFILE_LINES = 45

# Why a target is missed, after reading its profile: keyed by measurement name (any
# backend) or "<backend>:<measurement name>". Written by whoever analysed the run.
REASONS: dict[str, str] = {}

Result = dict[str, Any]


def one_line(result: Result) -> str:
    if "error" in result:
        return f"{result.get('name')}: ERROR {result['error']}"
    median = result.get("median")
    text = f"{result.get('name')}: {_ms(median)}"
    if result.get("count") is not None:
        text += f" ({result['count']} rows)"
    if result.get("rss_mb") is not None:
        text += f", {result['rss_mb']:.0f} MB"
    return text


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def index(entry: dict[str, Any]) -> dict[tuple[str, str], Result]:
    """(kind, name) -> result of one catalog run."""
    found: dict[tuple[str, str], Result] = {}
    for item in entry.get("measurements", []):
        for result in item["results"]:
            kind = result.get("kind") or item["spec"]["kind"]
            found[(kind, str(result.get("name")))] = result
    return found


def _median(result: Result | None) -> float | None:
    if result is None or "error" in result or "missing" in result:
        return None
    value = result.get("median")
    return float(value) if isinstance(value, int | float) else None


def floor_of(name: str) -> str:
    return "floor shared" if ("shared-size" in name or name == "system df") else "floor list"


def listing_names(results: dict[tuple[str, str], Result]) -> list[str]:
    return [name for kind, name in results if kind == "api"]


# --- targets -----------------------------------------------------------------------------


def evaluate(entry: dict[str, Any], smaller: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every target check for one catalog run: id, what, value, limit, passed."""
    results = index(entry)
    checks: list[dict[str, Any]] = []

    def check(target: str, what: str, value: float | None, limit: float, shown: str) -> None:
        checks.append(
            {
                "target": target,
                "what": what,
                "value": value,
                "limit": limit,
                "shown": shown,
                "passed": None if value is None else value <= limit,
            }
        )

    shared = _median(results.get(("api", "list --shared-size")))
    floor = _median(results.get(("floor", "floor shared")))
    check("T1", "list --shared-size", shared, LIST_SECONDS, _ms(shared))
    ratio = shared / floor if shared is not None and floor else None
    check("T2", "list --shared-size", ratio, FLOOR_RATIO, _ratio(ratio) + " floor")
    for name in listing_names(results):
        if name.startswith("filter ") and "shared-size" not in name:
            value = _median(results[("api", name)])
            check("T3", name, value, FILTER_SECONDS, _ms(value))
    for kind, name in [*(("api", n) for n in listing_names(results)), ("df", "system df")]:
        ours = _median(results.get((kind, name)))
        theirs = _median(results.get(("baseline", name)))
        if ours is None or theirs is None:
            continue
        speedup = theirs / ours
        # Stated as "catalog time x 10 <= baseline time": value = 10 / speedup <= 1.
        check("T4", name, BASELINE_RATIO / speedup, 1.0, f"{_ratio(speedup)} faster")
    if smaller is not None:
        before = index(smaller)
        for kind, name in results:
            if kind not in ("api", "df", "report"):
                continue
            now, then = _median(results[(kind, name)]), _median(before.get((kind, name)))
            if now is None or then is None or then <= 0:
                continue
            growth = now / then
            check("T5", name, growth, GROWTH, _ratio(growth))
    for (kind, name), result in results.items():
        if kind == "api" or (kind == "cli" and "images" in name) or kind == "df":
            rss = result.get("rss_mb")
            if isinstance(rss, int | float) and "error" not in result:
                check("T6", name, float(rss), RSS_MB, f"{rss:.0f} MB")
    return checks


def missed_measurements(entry: dict[str, Any], runs: Iterable[dict[str, Any]]) -> set[str]:
    """Names of measurements missing a target in this run (profiled by the runner)."""
    smaller = _smaller_run(entry, runs)
    return {c["what"] for c in evaluate(entry, smaller) if c["passed"] is False}


def _smaller_run(entry: dict[str, Any], runs: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    if entry.get("images") != TARGET_SIZE:
        return None
    for run in runs:
        if run.get("backend") == entry.get("backend") and run.get("images") == SMALL_SIZE:
            return run
    return None


def throughput_checks(entry: dict[str, Any]) -> list[dict[str, Any]]:
    results = index(entry)
    floor = _median(results.get(("sha256sum", "sha256sum (floor)")))
    checks = []
    for name in ("load", "squash"):
        result = results.get((name, name))
        value = _median(result)
        ratio = value / floor if value is not None and floor else None
        shown = _ratio(ratio) + " sha256sum" if ratio is not None else "not measured"
        if result is not None and "missing" in result:
            shown = f"not measured: {result['missing']}"
        checks.append(
            {
                "target": "T7",
                "what": name,
                "value": ratio,
                "limit": THROUGHPUT_RATIO,
                "shown": shown,
                "passed": None if ratio is None else ratio <= THROUGHPUT_RATIO,
            }
        )
    return checks


# --- markdown ----------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _status(passed: bool | None) -> str:
    return {True: "met", False: "**MISSED**", None: "not measured"}[passed]


def _reason(backend: str, name: str) -> str | None:
    return REASONS.get(f"{backend}:{name}") or REASONS.get(name)


def _target_runs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per backend, the run at N=100k, else the largest N measured."""
    chosen: dict[str, dict[str, Any]] = {}
    for run in report["runs"]:
        if "measurements" not in run:
            continue
        current = chosen.get(run["backend"])
        if run["images"] == TARGET_SIZE or (
            current is None
            or (current["images"] != TARGET_SIZE and run["images"] > current["images"])
        ):
            chosen[run["backend"]] = run
    return list(chosen.values())


def _agreement(results: dict[tuple[str, str], Result], kind: str, name: str) -> str:
    ours = results.get((kind, name), {}).get("fingerprint")
    theirs = results.get(("baseline", name), {}).get("fingerprint")
    if ours is None or theirs is None:
        return "-"
    return "same" if ours == theirs else "**DIFFERENT**"


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    options = report["options"]
    out: list[str] = ["# Benchmark results", ""]
    if options.get("smoke"):
        out += ["Smoke run (N=200): structure only, not figures to quote.", ""]
    out += [
        "Written by `python -m benchmarks.run` (see README.md, Benchmarks). Times are medians",
        "of repeated runs after a warm-up; each measurement ran in a process of its own"
        + (" (here: one shared process)" if options.get("shared_process") else "")
        + ", so its peak RSS is its own. Floors, baseline and targets are defined in",
        "benchmarks/results.py and benchmarks/worker.py.",
        "",
        "## Machine",
        "",
    ]
    load_before = ", ".join(f"{x:.2f}" for x in machine.get("load_before", ()))
    load_after = ", ".join(f"{x:.2f}" for x in machine.get("load_after", ()))
    out += _table(
        ["what", "value"],
        [
            ["date", str(machine.get("date"))],
            ["CPU", f"{machine.get('cpu')} ({machine.get('cores')} cores)"],
            ["memory", str(machine.get("memory"))],
            ["system", str(machine.get("system"))],
            ["Python / SQLAlchemy", f"{machine.get('python')} / {machine.get('sqlalchemy')}"],
            *[[f"backend {k}", str(v)] for k, v in report.get("versions", {}).items()],
            ["load average (1, 5, 15 min) before", load_before],
            ["load average after", load_after],
            ["uptime before", str(machine.get("uptime_before"))],
            ["whole run", f"{machine.get('seconds', 0) / 60:.1f} min"],
            [
                "options",
                f"N={','.join(_size(n) for n in options['sizes'])}, repeat<={options['repeat']}, "
                f"budget {options['budget']} s/measurement, seed {options['seed']}",
            ],
        ],
    )
    for backend, why in report.get("unavailable", {}).items():
        out += [f"**{backend} was not measured**: {why}", ""]
    out += _targets_section(report)
    out += _generation_section(report)
    for run in report["runs"]:
        out += _run_section(run)
    out += _growth_section(report)
    out += _throughput_section(report)
    return "\n".join(out).rstrip() + "\n"


def _targets_section(report: dict[str, Any]) -> list[str]:
    out = ["## Targets", ""]
    rows = []
    notes: list[str] = []
    runs = report["runs"]
    for run in _target_runs(report):
        backend = run["backend"]
        smaller = _smaller_run(run, runs)
        label = f"{backend}, N={_size(run['images'])}"
        if run["images"] != TARGET_SIZE:
            label += " (not the target size)"
        checks = evaluate(run, smaller)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for check in checks:
            grouped.setdefault(check["target"], []).append(check)
        for target, items in grouped.items():
            missed = [c for c in items if c["passed"] is False]
            if len(items) == 1:
                c = items[0]
                rows.append([label, target, c["what"], c["shown"], _status(c["passed"])])
            else:
                worst = missed or items
                shown = "; ".join(f"{c['what']}: {c['shown']}" for c in worst[:6])
                if len(worst) > 6:
                    shown += f"; and {len(worst) - 6} more"
                status = (
                    f"**MISSED** ({len(missed)} of {len(items)})"
                    if missed
                    else (f"met ({len(items)} of {len(items)})")
                )
                rows.append([label, target, "missed ones" if missed else "all", shown, status])
            for c in missed if run["images"] >= TARGET_SIZE else []:
                profile = run.get("profiles", {}).get(c["what"])
                reason = _reason(backend, c["what"])
                notes += [f"### {label}: {target} missed by {c['what']} ({c['shown']})", ""]
                notes += [f"Reason: {reason}" if reason else "Reason: not analysed yet.", ""]
                if profile:
                    lines = profile.strip().splitlines()[:PROFILE_LINES]
                    notes += [
                        "Profile (pyinstrument, top of the tree):",
                        "",
                        "```",
                        *lines,
                        "```",
                        "",
                    ]
    for entry in report.get("throughput", []):
        for c in throughput_checks(entry):
            rows.append(
                [entry["backend"], c["target"], c["what"], c["shown"], _status(c["passed"])]
            )
            if c["passed"] is False:
                reason = _reason(entry["backend"], c["what"])
                notes += [f"### {entry['backend']}: T7 missed by {c['what']} ({c['shown']})", ""]
                notes += [f"Reason: {reason}" if reason else "Reason: not analysed yet.", ""]
    out += [
        "T1 list --shared-size <= 1 s (API); T2 <= 3x floor; T3 each filter <= 100 ms; T4 >= 10x",
        "faster than the baseline; T5 10k->100k <= 12x; T6 peak RSS <= 300 MB; T7 squash/load",
        "<= 3x sha256sum.",
        "",
    ]
    out += _table(["run", "target", "measurement", "figure", "status"], rows)
    if notes:
        out += ["### Missed targets: profiles and reasons", "", *notes]
    return out


def _generation_section(report: dict[str, Any]) -> list[str]:
    out = ["## Synthetic catalogs", ""]
    rows = []
    for run in report["runs"]:
        g = run.get("generation")
        if not g:
            rows.append(
                [run["backend"], _size(run["images"]), run.get("error", "-"), "", "", "", ""]
            )
            continue
        r = g["rows"]
        rows.append(
            [
                run["backend"],
                _size(run["images"]),
                f"{_ms(g['seconds'])} (CPU {_ms(g.get('cpu_seconds'))})",
                f"{r['layers']:,} layers, {r['image_layers']:,} image layers, "
                f"{r['image_references']:,} references, {r['image_labels']:,} labels, "
                f"{r['image_history']:,} history",
                f"{g['dangling']:,} dangling, {g['intermediates']:,} intermediate, "
                f"{g['digest_only']:,} digest-only",
                f"{g['containers']:,}",
                f"{run.get('generation_rss_mb') or 0:.0f} MB",
            ]
        )
    out += _table(
        [
            "backend",
            "N",
            "build time (this process's CPU)",
            "rows",
            "kinds of image",
            "containers",
            "generator RSS",
        ],
        rows,
    )
    probes = next(
        (run["generation"]["probes"] for run in report["runs"] if run.get("generation")), None
    )
    if probes:
        out += [
            "Filters measured (values from the data; each selects a few percent): "
            + ", ".join(f"`{k}={v}`" for k, v in probes.items())
            + ", `dangling=true`.",
            "",
        ]
    return out


def _run_section(run: dict[str, Any]) -> list[str]:
    backend, size = run["backend"], run["images"]
    out = [f"## {backend}, N={_size(size)}", ""]
    if "measurements" not in run:
        return [*out, f"Not measured: {run.get('error')}", ""]
    results = index(run)
    floors = {
        name: _median(results.get(("floor", name))) for name in ("floor list", "floor shared")
    }
    rows = []
    for (kind, name), result in results.items():
        if kind not in ("api", "df", "report"):
            continue
        value = _median(result)
        floor = floors.get(floor_of(name)) if kind != "report" else None
        theirs = _median(results.get(("baseline", name)))
        rows.append(
            [
                name if kind != "report" else f"{name}",
                _cell(result),
                str(result.get("count", "-")),
                _ratio(value / floor) if value is not None and floor else "-",
                _ms(theirs),
                _ratio(theirs / value) if theirs is not None and value else "-",
                _agreement(results, kind, name) if kind != "report" else "-",
                _rss(result),
            ]
        )
    out += ["### Through the Python API", ""]
    out += _table(
        [
            "measurement",
            "catalog",
            "rows",
            "catalog/floor",
            "baseline answer",
            "baseline/catalog",
            "answers",
            "peak RSS",
        ],
        rows,
    )
    if not any(kind == "report" for kind, _ in results):
        out += [
            "Reports: not measured; no reports module (catalog.services.reports) exists in this "
            "tree yet.",
            "",
        ]
    load = results.get(("baseline", "baseline load"))
    if load is not None:
        out += [
            f"Baseline load (the daemon's start-up: configs parsed, layers linked, references, "
            f"containers): {_cell(load)}, peak RSS of the baseline process {_rss(load)}.",
            "",
        ]
    elif run.get("baseline_skipped"):
        out += [f"Baseline: not run: {run['baseline_skipped']}.", ""]
    floor_rows = [
        [
            name,
            _cell(result),
            f"{result.get('rows', '-'):,}" if isinstance(result.get("rows"), int) else "-",
        ]
        for (kind, name), result in results.items()
        if kind == "floor"
    ]
    out += ["### Floors (plain SELECTs, no join, no aggregation)", ""]
    out += _table(["floor", "time", "rows read"], floor_rows)
    cli_rows = []
    api_prints = {r.get("fingerprint") for (k, _), r in results.items() if k == "api"}
    for (kind, name), result in results.items():
        if kind != "cli":
            continue
        agrees = "-"
        if result.get("fingerprint"):
            agrees = "same as API" if result["fingerprint"] in api_prints else "**DIFFERENT**"
        cli_rows.append(
            [
                name,
                _cell(result),
                str(result.get("count", "-")),
                f"{result.get('output_bytes', 0):,}",
                agrees,
                _rss(result),
            ]
        )
    out += ["### Through the CLI process (wall time of `catalog ...`, start-up included)", ""]
    out += _table(["command", "wall", "rows", "output bytes", "answer", "peak RSS"], cli_rows)
    errors = [
        f"- {kind} {name}: {result['error']}"
        for (kind, name), result in results.items()
        if "error" in result
    ]
    if errors:
        out += ["Errors:", "", *errors, ""]
    return out


def _cell(result: Result) -> str:
    if "error" in result:
        return "error"
    if "missing" in result:
        return "not measured"
    times = result.get("times") or []
    text = _ms(_median(result))
    if len(times) > 1:
        spread = (
            (max(times) - min(times)) / statistics.median(times) if statistics.median(times) else 0
        )
        text += f" (n={len(times)}, ±{spread * 50:.0f}%)"
    return text


def _rss(result: Result) -> str:
    rss = result.get("rss_mb")
    if not isinstance(rss, int | float):
        return "-"
    scope = result.get("rss_scope", "")
    return f"{rss:.0f} MB" + (" (child)" if scope == "child process" else "")


def _growth_section(report: dict[str, Any]) -> list[str]:
    runs = [run for run in report["runs"] if "measurements" in run]
    sizes = sorted({run["images"] for run in runs})
    if len(sizes) < 2:
        return []
    out = ["## Growth with N (median times through the API)", ""]
    for backend in dict.fromkeys(run["backend"] for run in runs):
        by_size = {run["images"]: index(run) for run in runs if run["backend"] == backend}
        names = [
            key
            for key in next(iter(by_size.values()))
            if key[0] in ("api", "df", "report", "baseline")
        ]
        rows = []
        for key in names:
            cells = [_ms(_median(by_size[n].get(key))) for n in sizes]
            growth = "-"
            small, large = (
                by_size.get(SMALL_SIZE, {}).get(key),
                by_size.get(TARGET_SIZE, {}).get(key),
            )
            if _median(small) and _median(large):
                growth = _ratio(_median(large) / _median(small))  # type: ignore[operator]
            label = key[1] if key[0] != "baseline" else f"baseline: {key[1]}"
            rows.append([label, *cells, growth])
        out += [f"### {backend}", ""]
        out += _table(["measurement", *(f"N={_size(n)}" for n in sizes), "10k->100k"], rows)
    return out


def _throughput_section(report: dict[str, Any]) -> list[str]:
    if not report.get("throughput"):
        return []
    image = report.get("throughput_image", {})
    out = [
        "## Load and squash throughput",
        "",
        f"An unpacked `docker save` directory of {image.get('bytes', 0) / (1 << 20):.0f} MiB "
        f"in {image.get('layers')} uncompressed layers (random and compressible files; each "
        "layer overwrites one file of the layer below and deletes another). Each repetition "
        "loads into an emptied catalog (blobs written and fsynced to the store); squash is timed "
        "on the loaded image. The floor is `sha256sum` of the layer files (page cache warm).",
        "",
    ]
    rows = []
    for entry in report["throughput"]:
        results = index(entry)
        floor = _median(results.get(("sha256sum", "sha256sum (floor)")))
        for (_kind, name), result in results.items():
            value = _median(result)
            rate = image.get("bytes", 0) / (1 << 20) / value if value else None
            rows.append(
                [
                    entry["backend"],
                    name,
                    _cell(result)
                    if "missing" not in result
                    else f"not measured: {result['missing']}",
                    f"{rate:.0f} MiB/s" if rate else "-",
                    _ratio(value / floor) if value and floor else "-",
                    _rss(result),
                ]
            )
    out += _table(["backend", "what", "time", "throughput", "x sha256sum", "peak RSS"], rows)
    return out


def main(argv: list[str] | None = None) -> int:
    """Write RESULTS.md again from a run's JSON (after REASONS were written)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.results", description=main.__doc__)
    here = Path(__file__).resolve().parent
    parser.add_argument("--json", type=Path, default=here / "results.json")
    parser.add_argument("--output", type=Path, default=here / "RESULTS.md")
    options = parser.parse_args(argv)
    options.output.write_text(markdown(json.loads(options.json.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

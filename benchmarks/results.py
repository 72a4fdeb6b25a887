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

# Why a target is missed, written after reading the run's profiles. Keys, most specific
# first: "<backend>:<target>:<measurement>", "<target>:<measurement>",
# "<backend>:<target>:*", "<target>:*".
# Said under Machine, about the conditions of the run recorded in results.json.
RUN_NOTE = (
    "Conditions: this run (16:33-17:26 UTC) shared the 2-core machine with other "
    "engineers' test suites. The load average was 1.0-1.3 for most of it (the run itself "
    "accounts for 1.0) but reached ~2.9 around 17:09, during the PostgreSQL N=100k listings "
    "and CLI measurements, whose times may be inflated; runs earlier the same afternoon at a "
    "load average of 5-6 took about twice as long. Spreads (±) are given per figure. Repeat "
    "`python -m benchmarks.run` on a quiet machine before quoting figures."
)
_FILTER_FIXED_COST = (
    "The selecting query is index-driven (the created index for before/since/until, the "
    "(key, value) label index for label), but every listing also pays fixed costs: the "
    "container counts (a GROUP BY over all containers), the listing's own rule that hides "
    "intermediate images (a `named or leaf` probe per selected image), three more statements "
    "(references, labels, shared sizes by the listed IDs), and about 20 µs of Python per "
    "listed image (rows through SQLAlchemy Core, ImageSummary and Named objects). These "
    "filters list 4-6k images (5% of the catalog); 100 ms holds up to roughly 3k listed images. "
    "With --shared-size the refcount of every chain over all images (a scan of the 930k-entry "
    "image_layers index, as Docker's layerRefs counts over all images) comes on top."
)
_POSTGRES_FILTERS = (
    "On PostgreSQL (EXPLAIN ANALYZE of the before filter at 100k) the selection is a bitmap "
    "scan of the created index, but the planner answers `named or leaf` with hashed subplans "
    "that read all 108k references and 100k parent IDs, and builds the container counts "
    "from all 20k containers: ~80 ms of SQL; the labels of the listed images are then read "
    "by a sequential scan of all 390k label rows filtered by the ID array (~50 ms)."
)
_GROWTH = (
    "10k -> 100k multiplies the catalog by 10 but not every answer by 10: the label filter "
    "lists 301 images at 10k and 6,122 at 100k (labels follow the skewed family sizes), "
    "which accounts for its growth. For full listings, df and the reports the growth is "
    "somewhat above linear (12-18x for 10x the rows); the profiles show no step that is "
    "not linear in rows, so the excess is per-row cost rising with the working set (at "
    "100k the SQLite file is ~1 GB, far beyond SQLite's default 2 MiB page cache and the "
    "CPU caches). Not investigated further in this run."
)
REASONS: dict[str, str] = {
    "T5:*": _GROWTH,
    "T1:list --shared-size": (
        "The answer is ~94k summaries built in Python. The profile's time is in fetching "
        "rows through SQLAlchemy Core (per-row type processing, e.g. parsing `created`), in "
        "the shared-size statement (the refcount of every chain over all images, a full scan "
        "of the image_layers (chain_id, image_id) index, then a sum per image over ~600k "
        "shared image-layer rows), and in building the ImageSummary, Named and label-dict "
        "objects. Touching the same columns once through the same driver and SQLAlchemy "
        "(floor shared) already takes more than a second on this machine, and the listing "
        "stays within ~1.2x of it (T2 met): 1 s at 100k is below the cost of reading these "
        "rows into Python objects here. Going further needs a different contract, not a "
        "better query: a per-chain refcount column maintained by every writer (register, "
        "delete, squash, prune), or answers streamed as rows instead of objects."
    ),
    "T3:filter label!": (
        "label! can only be answered by looking at every image: each of the 100k images is "
        "probed for the absent key (NOT EXISTS on the labels' primary key) and for its names "
        "and children (the default `named or leaf` rule), about 0.4-0.5 s of SQL before any "
        "row comes back; Docker makes the same per-image pass in memory."
    ),
    "T3:filter dangling": (
        "dangling=true is Docker's Heads(): images with no child and no tag, which only an "
        "anti-join over all images answers (NOT EXISTS child, NOT EXISTS tag, for each of the "
        "100k images); it also lists 13k images (13% of the catalog), whose references and "
        "labels are then read and built into summaries."
    ),
    "T3:filter reference": (
        "The glob is matched against four forms of every reference (Go's path.Match turned "
        "into a regular expression: FamiliarString, FamiliarName, TagNameOnly, Name). SQLite "
        "has no regexp operator, so every reference row of every probed image calls a Python "
        "function up to four times (hundreds of thousands of calls); PostgreSQL runs the same "
        "regular expressions in C and is several times faster. A literal prefix of the "
        "pattern could narrow the rows first; not done."
    ),
    **{
        f"postgresql:T3:filter {name}": _FILTER_FIXED_COST + " " + _POSTGRES_FILTERS
        for name in ("label", "before", "since", "until")
    },
    "T3:filter label": _FILTER_FIXED_COST,
    "T3:filter before": _FILTER_FIXED_COST,
    "T3:filter since": _FILTER_FIXED_COST,
    "T3:filter until": _FILTER_FIXED_COST,
    "T4:*": (
        "The baseline answers from structures already in memory: its load (the daemon's "
        "start-up: every config parsed, layers linked), reported apart, takes seconds at 100k, "
        "while catalog reads everything from the database on each call. For full listings "
        "the baseline's container scan (every listed image compares itself with every "
        "container: 94k x 20k = 1.9e9 comparisons, run in C through list.count) dominates and "
        "catalog is about 8x faster; for filtered listings the baseline still walks all 100k "
        "images (re-hashing each chain ID for its size) and catalog is 2-10x faster. Against "
        "Docker itself (Go, the same algorithm) the published numbers of docs/listing.md §11 "
        "are the comparison: over 20 s for `docker images` at 10k images."
    ),
    "T6:*": (
        "Peak RSS grows with the answer: ~94k ImageSummary objects, their Named references "
        "and label dicts (400k label rows whose key and value strings are not shared between "
        "images), plus the fetched rows, about 3.5 KB per listed image over a ~60 MB "
        "interpreter; the CLI adds the JSON text (indented, ~60 MB at 100k). Interning the "
        "repeated label keys, values and repository names, or streaming the summaries and "
        "the JSON, would cut it; not done."
    ),
}

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


def _reason(backend: str, target: str, name: str) -> str | None:
    """The reason written for `target` missed by `name`: for this backend, for both, or
    for every measurement missing that target."""
    for key in (f"{backend}:{target}:{name}", f"{target}:{name}", f"{backend}:{target}:*"):
        if key in REASONS:
            return REASONS[key]
    return REASONS.get(f"{target}:*")


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
    if RUN_NOTE and not options.get("smoke"):
        out += [RUN_NOTE, ""]
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
    shown_profiles: set[tuple[str, str]] = set()
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
            if missed and run["images"] >= TARGET_SIZE:
                notes += _missed_notes(label, backend, target, items, missed, run, shown_profiles)
    for entry in report.get("throughput", []):
        for c in throughput_checks(entry):
            rows.append(
                [entry["backend"], c["target"], c["what"], c["shown"], _status(c["passed"])]
            )
            if c["passed"] is False:
                reason = _reason(entry["backend"], "T7", c["what"])
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


def _missed_notes(
    label: str,
    backend: str,
    target: str,
    items: list[dict[str, Any]],
    missed: list[dict[str, Any]],
    run: dict[str, Any],
    shown_profiles: set[tuple[str, str]],
) -> list[str]:
    """One note per missed target: which measurements, why, and their profiles (each
    measurement's profile shown once per run)."""
    notes = [f"### {label}: {target} missed by {len(missed)} of {len(items)}", ""]
    notes += ["Missed by: " + "; ".join(f"{c['what']} ({c['shown']})" for c in missed) + ".", ""]
    reasons: list[str] = []
    for c in missed:
        reason = _reason(backend, target, c["what"])
        if reason and reason not in reasons:
            reasons.append(reason)
    for reason in reasons or ["not analysed yet."]:
        notes += [f"Reason: {reason}", ""]
    for c in missed:
        profile = run.get("profiles", {}).get(c["what"])
        key = (run["backend"], c["what"])
        if profile and key not in shown_profiles:
            shown_profiles.add(key)
            lines = profile.strip().splitlines()[:PROFILE_LINES]
            notes += [f"Profile of {c['what']} (pyinstrument, top of the tree):", ""]
            notes += ["```", *lines, "```", ""]
    return notes


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
        "on the loaded image. The floor is `sha256sum` of the layer files (page cache warm). "
        "coreutils' sha256sum is not the fastest SHA-256 on every CPU: Python's hashlib "
        "(OpenSSL) may use the CPU's SHA instructions (on the machine of the recorded run, "
        "with sha_ni: about 980 MiB/s against sha256sum's 330 MiB/s), which is how a squash "
        "that reads, hashes and writes the bytes can come in under the floor.",
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

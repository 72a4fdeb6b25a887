"""Pull from a loopback registry: catalog against `skopeo copy`, and a second pull that
shares all but one layer (issue 16).

It builds an image of `--layers` layers (default 8) of `--layer-mib` MiB each (default
128: 1 GiB) of random bytes (so gzip cannot shrink them and every byte travels), and a
second image with the same layers but the last; puts both into a docker-registry
(distribution 2.8) on a free loopback port with `skopeo copy` from an OCI layout; then,
in the same run and alternately:

- `skopeo copy docker://... dir:...` of the first image (skopeo's own floor: download,
  digest check, write);
- `catalog pull` of it into an empty catalog (download, digest check, decompress, tar
  check, diff ID check, store, register);

and then `catalog pull` of the second image into the catalog holding the first, counting
the bytes that travel. It writes benchmarks/REGISTRY.md:

    python -m benchmarks.registry [--layers 8] [--layer-mib 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog.context import open_catalog
from catalog.operations.pull import pull
from catalog.registry.settings import RegistrySettings
from catalog.settings import resolve_location

HERE = Path(__file__).resolve().parent
RESULT = HERE / "REGISTRY.md"
CHUNK = 1 << 20


def _tar_of_random(path: Path, name: str, size: int, seed: int) -> None:
    """A tar holding one file of `size` pseudo-random bytes (incompressible)."""
    import tarfile

    class Random:
        def __init__(self) -> None:
            self.left = size
            self.source = random.Random(seed)  # noqa: S311 - benchmark data, not secrets

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return self.source.randbytes(n)

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        tar.addfile(info, Random())


def _digest_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _put_blob(layout: Path, path: Path) -> tuple[str, int]:
    digest, size = _digest_file(path)
    target = layout / "blobs" / "sha256" / digest[7:]
    if not target.exists():
        shutil.copyfile(path, target)
    return digest, size


def make_layout(work: Path, layers: int, layer_bytes: int) -> Path:
    """An OCI layout with tags `1` (layers 0..n-1) and `2` (layers 0..n-2 plus a new one)."""
    layout = work / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    compressed: list[tuple[str, int, str]] = []
    for seed in [*range(layers), 1000]:
        tar = work / f"layer-{seed}.tar"
        _tar_of_random(tar, f"data/layer-{seed}.bin", layer_bytes, seed)
        diff_id, _ = _digest_file(tar)
        gz = work / f"layer-{seed}.tar.gz"
        with tar.open("rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        tar.unlink()
        digest, size = _put_blob(layout, gz)
        gz.unlink()
        compressed.append((digest, size, diff_id))
    manifests = []
    for tag, chosen in (
        ("1", compressed[:layers]),
        ("2", [*compressed[: layers - 1], compressed[-1]]),
    ):
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2026-01-01T00:00:00Z",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [d for _, _, d in chosen]},
                "history": [{"created_by": f"layer {i}"} for i in range(len(chosen))],
            }
        ).encode()
        config_path = work / f"config-{tag}.json"
        config_path.write_bytes(config)
        config_digest, config_size = _put_blob(layout, config_path)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": config_size,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": d,
                        "size": s,
                    }
                    for d, s, _ in chosen
                ],
            }
        ).encode()
        manifest_path = work / f"manifest-{tag}.json"
        manifest_path.write_bytes(manifest)
        digest, size = _put_blob(layout, manifest_path)
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return layout


@dataclass
class Counter:
    """TransferProgress counting the bytes each layer downloaded."""

    downloaded: dict[str, int] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, text: str, layer: str | None = None) -> None:
        with self.lock:
            self.statuses.append(f"{layer}: {text}" if layer else text)

    def advance(self, layer: str, action: str, current: int, total: int) -> None:
        with self.lock:
            self.downloaded[layer] = max(self.downloaded.get(layer, 0), current)


def timed_skopeo(reference: str, target: Path) -> float:
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://{reference}",
            f"dir:{target}",
        ],
        check=True,
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(target, ignore_errors=True)
    return elapsed


def timed_pull(root: Path, reference: str, *, fresh: bool) -> tuple[float, Counter]:
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    counter = Counter()
    with open_catalog(resolve_location(root)) as catalog:
        started = time.perf_counter()
        pull(catalog, reference, settings=RegistrySettings(), credentials=lambda _: None,
             progress=counter)  # fmt: skip
        elapsed = time.perf_counter() - started
    return elapsed, counter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--layer-mib", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent / "tests"))
    # The tests' registry runner (benchmarks run from a source checkout, as tests do).
    run_registry = importlib.import_module("support.registries").run_registry

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="catalog-bench-registry-") as temporary:
        work = Path(temporary)
        started = time.perf_counter()
        layout = make_layout(work, args.layers, args.layer_mib << 20)
        prepared = time.perf_counter() - started
        with run_registry(work / "registry") as registry:
            for tag in ("1", "2"):
                registry.put(f"oci:{layout}:{tag}", f"bench:{tag}")
            shutil.rmtree(layout)
            first = registry.ref("bench:1")
            skopeo_times, pull_times = [], []
            for _ in range(args.repeat):
                skopeo_times.append(timed_skopeo(first, work / "skopeo-dir"))
                elapsed, _ = timed_pull(work / "catalog", first, fresh=True)
                pull_times.append(elapsed)
            second_time, counter = timed_pull(
                work / "catalog", registry.ref("bench:2"), fresh=False
            )
    total = args.layers * (args.layer_mib << 20)
    skopeo_median = statistics.median(skopeo_times)
    pull_median = statistics.median(pull_times)
    travelled = sum(counter.downloaded.values())
    already = sum(s.endswith(": Already exists") for s in counter.statuses)
    # gzip of random bytes is a little larger than the tar; nothing else may travel.
    only_new = already == args.layers - 1 and travelled < 1.01 * (args.layer_mib << 20) + 65536
    report: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load": (load_before, os.getloadavg()),
    }
    lines = [
        "# Pull from a loopback registry (issue 16)",
        "",
        f"Written by `python -m benchmarks.registry --layers {args.layers} --layer-mib "
        f"{args.layer_mib} --repeat {args.repeat}` on {report['when']}, {report['machine']};"
        f" load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}.",
        "",
        f"The image: {args.layers} layers of {args.layer_mib} MiB of random bytes "
        f"({total / (1 << 30):.2f} GiB, gzip level 1, so every byte travels), in a "
        f"docker-registry 2.8 on 127.0.0.1 over HTTP; built in {prepared:.1f} s. "
        "Each run of each tool starts empty; the runs alternate.",
        "",
        "| what | runs (s) | median (s) | MB/s |",
        "|---|---|---|---|",
        f"| `skopeo copy docker://… dir:…` | {', '.join(f'{t:.2f}' for t in skopeo_times)} "
        f"| {skopeo_median:.2f} | {total / skopeo_median / 1e6:.0f} |",
        f"| `catalog pull` (empty catalog) | {', '.join(f'{t:.2f}' for t in pull_times)} "
        f"| {pull_median:.2f} | {total / pull_median / 1e6:.0f} |",
        "",
        f"**catalog / skopeo: {pull_median / skopeo_median:.2f}x** (target <= 1.2x: "
        f"{'met' if pull_median <= 1.2 * skopeo_median else 'missed'}).",
        "",
        "catalog does more than skopeo here: besides downloading and hashing the compressed "
        "bytes, it decompresses each layer, hashes the uncompressed tar (the diff ID), reads "
        "it entry by entry (hostile-tar checks, diff size) and writes the uncompressed tar, "
        "fsynced, to its store; skopeo writes the compressed blobs as they come.",
        "",
        "## Second pull sharing all layers but one",
        "",
        f"`catalog pull` of the second image into the catalog holding the first: "
        f"{second_time:.2f} s; {already} layers `Already exists`; bytes downloaded: "
        f"{travelled:,} (the new layer is {args.layer_mib << 20:,} bytes of tar, "
        f"its gzip a little more). Target (only the new layer's bytes travel): "
        f"{'met' if only_new else 'missed'}.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

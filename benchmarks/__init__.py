"""Benchmarks: catalog against Docker's algorithm and against the floor (issue 7).

`python -m benchmarks.run` builds synthetic catalogs (`benchmarks.generate`), measures
every listing, report and the CLI in separate processes (`benchmarks.worker`), runs
Docker's graphdriver algorithm in memory over the same data (`benchmarks.baseline`),
times load and squash of a 1 GiB image against `sha256sum` (`benchmarks.throughput`),
and writes `benchmarks/RESULTS.md` (`benchmarks.results`).

Not shipped with the package: run it from a source checkout.
"""

"""Synthetic catalogs from the benchmark harness's generator (benchmarks/generate.py),
for tests that need hundreds of realistic images: shared bases, tags and digests,
intermediate and dangling images, labels, containers."""

from __future__ import annotations

import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
# The harness is not part of the installed package: reach it in the source tree, after
# every installed module (so `catalog` stays the installed one).
if str(REPOSITORY) not in sys.path:
    sys.path.append(str(REPOSITORY))

from benchmarks.generate import GenerationResult, Probes, generate  # noqa: E402

__all__ = ["GenerationResult", "Probes", "generate"]

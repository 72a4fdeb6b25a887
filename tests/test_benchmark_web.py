"""The web view's benchmark harness (benchmarks/web.py), run small on the backend under
test: every page answers, the listing pages hold rows, and WEB.md has every section."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from support import generated
from support.environment import backend


@pytest.mark.slow
def test_the_web_benchmark_runs_small(tmp_path: Path, new_db_url: Callable[..., str]) -> None:
    assert generated.REPOSITORY.is_dir()  # the harness is on sys.path from here on
    from benchmarks import web

    url = make_url(new_db_url())
    timings, made = web.measure_backend(backend(), url, tmp_path, images=150, repeat=1)
    pages = {t.name: t for t in timings if t.kind == "page"}
    services = {t.name: t for t in timings if t.kind == "service"}
    assert pages["first page"].rows == services["first page"].rows == 50
    assert pages["deep page (after the middle image)"].rows == 50
    # Intermediate images are left out, as by `catalog images`.
    assert 100 < pages["200 per page"].rows == services["200 per page"].rows < 150
    assert any("size" in name for name in pages)
    assert {f"report {name}" for name in web.REPORTS} <= set(pages)
    args = argparse.Namespace(images=150, backends=[backend()], repeat=1)
    text = web.markdown(timings, {backend(): made}, args, (0.0, 0.0), "now")
    assert f"## {backend()}, 150 images" in text
    assert text.count("| met |") + text.count("| **missed** |") == len(
        [t for t in pages.values() if t.targeted]
    )

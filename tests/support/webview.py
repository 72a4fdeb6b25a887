"""What the web view's tests share: user data that tries to be HTML, and Debian's
Chromium driven through its chromedriver (Selenium), headless, offline, with its console
and every request it makes recorded, saving a screenshot of each page it is shown.

Screenshots go to $CATALOG_TEST_SCREENSHOTS when set (CI keeps them as artefacts), else
under pytest's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from catalog.domain.digest import sha256_digest
from support.builders import ImageBuilder, image_config, layer_tar
from support.serving import Served

SCREENSHOTS_ENV = "CATALOG_TEST_SCREENSHOTS"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_MISSING = (
    "Chromium and its driver are not installed (install Debian's chromium and chromium-driver)"
)
# Headless, as root, offline: no sandbox (root), and none of the background requests
# Chromium makes to Google's services on its own (this machine has no network).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1280,900",
)

HOSTILE_LABEL = "<script>alert('label')</script>"
HOSTILE_COMMAND = '/bin/sh -c echo "<img src=x onerror=alert(1)>" > /etc/motd'
HOSTILE_AUTHOR = "Mallory <b>&amp;</b> co"


def add_hostile_image(served: Served) -> str:
    """An image whose label value, history command and author are HTML and script."""
    layer = layer_tar({"etc/motd": b"<b>bold</b>"})
    created = datetime(2024, 2, 2, tzinfo=UTC)
    config = image_config(
        [sha256_digest(layer)],
        created=created,
        labels={"note": HOSTILE_LABEL, "<b>key</b>": "x"},
        history=[{"created": "2024-02-02T00:00:00Z", "created_by": HOSTILE_COMMAND}],
        extra={"author": HOSTILE_AUTHOR},
    )
    return ImageBuilder(served.catalog).add([layer], tags=["hostile:1"], config=config)


def screenshots_dir(default: Path) -> Path:
    directory = Path(os.environ.get(SCREENSHOTS_ENV) or default)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Browser:
    """A Chromium window on a served catalog."""

    driver: Any
    base_url: str
    screenshots: Path
    shots: list[Path] = field(default_factory=list)
    # HTTP statuses a test expects pages to answer with (the console reports them).
    expected_statuses: set[int] = field(default_factory=set)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page (the window grown to its height)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(600, min(int(height) + 40, 4000)))
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)
        self.shots.append(path)
        return path

    @property
    def path(self) -> str:
        parts = urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def console(self) -> list[dict[str, Any]]:
        """The console's messages since last asked (warnings and errors)."""
        return [
            entry
            for entry in self.driver.get_log("browser")
            if entry["level"] in ("WARNING", "SEVERE")
        ]

    def requested(self) -> list[str]:
        """Every URL the browser requested since last asked (the DevTools network log)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def foreign_requests(self) -> list[str]:
        """Requests over the network to anywhere but this server (data: URIs stay in the
        page, chrome:// is the browser's own)."""
        return [
            url
            for url in self.requested()
            if urlsplit(url).scheme in ("http", "https", "ws", "wss", "ftp")
            and not url.startswith(self.base_url + "/")
        ]


@contextmanager
def chromium(served: Served, screenshots: Path, *, javascript: bool = True) -> Iterator[Browser]:
    """Chromium on `served`, with a new empty profile, quit afterwards."""
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager: no telemetry
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="catalog-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield Browser(driver, served.base_url, screenshots)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

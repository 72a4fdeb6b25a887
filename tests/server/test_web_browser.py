"""The web view in a real browser: Debian's Chromium, headless, through chromedriver.

Each test opens pages of a served catalog (the fixtures, built images, containers, and
an image whose labels and history are HTML), types in the filter box, clicks toggles,
column headers, page links and links between images, layers and reports, and checks
what is shown against `catalog images`. After each test the browser's console must hold
no warning or error and every request it made must have gone to the server (the
DevTools network log). Every page visited is saved as a screenshot (support.webview).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.environment import need
from support.serving import Served, serve_catalog
from support.webview import (
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_MISSING,
    HOSTILE_AUTHOR,
    HOSTILE_COMMAND,
    HOSTILE_LABEL,
    Browser,
    add_hostile_image,
    chromium,
    screenshots_dir,
)

from catalog.services.reports import REPORTS


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    need(CHROMIUM and CHROMEDRIVER, CHROMIUM_MISSING)
    with serve_catalog(tmp_path_factory.mktemp("served"), unix=False) as running:
        running.ids["hostile"] = add_hostile_image(running)
        yield running


@pytest.fixture(scope="module")
def window(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    shots = screenshots_dir(tmp_path_factory.mktemp("screenshots"))
    with chromium(served, shots) as opened:
        yield opened


@pytest.fixture
def browser(window: Browser) -> Iterator[Browser]:
    """The module's browser; afterwards, its console must be clean and no request may
    have left the server (both drained, so each test answers for its own)."""
    window.console()
    window.requested()
    window.expected_statuses = set()
    yield window
    problems = [
        entry
        for entry in window.console()
        if not any(f"status of {status}" in entry["message"] for status in window.expected_statuses)
    ]
    assert problems == []
    assert window.foreign_requests() == []


def by_css(browser: Browser, selector: str) -> list[object]:
    return list(browser.driver.find_elements("css selector", selector))


def one(browser: Browser, selector: str) -> object:
    return browser.driver.find_element("css selector", selector)


def row_ids(browser: Browser) -> list[str]:
    """The image IDs of the listing's rows, as their links name them."""
    links = by_css(browser, "table.images td.id a")
    return [link.get_attribute("href").rsplit("/", 1)[1] for link in links]  # type: ignore[attr-defined]


def listed(served: Served, *args: str) -> list[str]:
    return list(dict.fromkeys(served.cli("images", "-q", "--no-trunc", *args).output.split()))


def wait_for_new_page(browser: Browser, action: object) -> None:
    """Do `action` (a callable) and wait until the browser shows the page it leads to."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    old = one(browser, "html")

    def left(_driver: object) -> bool:
        """The old page's root is gone. chromedriver says so as a stale element, or,
        caught between the two documents, as "does not belong to the document"."""
        try:
            old.is_enabled()  # type: ignore[attr-defined]
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    action()  # type: ignore[operator]
    WebDriverWait(browser.driver, 15).until(left)
    WebDriverWait(browser.driver, 15).until(
        lambda driver: driver.execute_script("return document.readyState") == "complete"
    )


def click(browser: Browser, selector: str) -> None:
    element = one(browser, selector)
    wait_for_new_page(browser, element.click)  # type: ignore[attr-defined]


def test_the_images_page_with_the_filter_box_and_the_all_toggle(
    served: Served, browser: Browser
) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.open("/")
    assert browser.driver.title == "Images · catalog"
    assert row_ids(browser) == listed(served)
    assert one(browser, "th[aria-sort]").text.startswith("Created")  # type: ignore[attr-defined]
    browser.shot("images")

    box = one(browser, "#filter")
    box.send_keys("dangling=true")  # type: ignore[attr-defined]
    wait_for_new_page(browser, lambda: one(browser, "#filter").send_keys(Keys.ENTER))  # type: ignore[attr-defined]
    assert browser.path == "/?filter=dangling%3Dtrue"
    assert row_ids(browser) == listed(served, "-f", "dangling=true")
    assert one(browser, "#filter").get_attribute("value") == "dangling=true"  # type: ignore[attr-defined]
    browser.shot("images-dangling")

    box = one(browser, "#filter")
    box.clear()  # type: ignore[attr-defined]
    box.send_keys("label=tier")  # type: ignore[attr-defined]
    click(browser, "form.filters button[type=submit]")
    without_all = row_ids(browser)
    assert without_all == listed(served, "-f", "label=tier")
    # The -a toggle takes effect as it is clicked (the page's script submits the form).
    click(browser, "form.filters input[name=all]")
    assert "all=1" in browser.path and "filter=label%3Dtier" in browser.path
    with_all = row_ids(browser)
    assert with_all == listed(served, "-a", "-f", "label=tier")
    assert served.ids["base"] in set(with_all) - set(without_all)  # an intermediate image
    browser.shot("images-all-labelled")


def test_sorting_by_a_column_and_walking_the_pages(served: Served, browser: Browser) -> None:
    browser.open("/?all=1&limit=3")
    click(browser, "th:nth-child(4) a")  # Size
    assert one(browser, "th[aria-sort]").get_attribute("aria-sort") == "descending"  # type: ignore[attr-defined]
    summaries = json.loads(served.cli("images", "-a", "--format", "json").output)
    by_size = sorted(summaries, key=lambda s: s["Id"])
    expected = [s["Id"] for s in sorted(by_size, key=lambda s: s["Size"], reverse=True)]
    pages = [row_ids(browser)]
    browser.shot("images-by-size")
    while by_css(browser, "a[rel=next]"):
        click(browser, "a[rel=next]")
        pages.append(row_ids(browser))
    assert [image for page in pages for image in page] == expected
    assert all(len(page) == 3 for page in pages[:-1])
    browser.shot("images-by-size-last-page")
    for page in reversed(pages[:-1]):
        click(browser, "a[rel=prev]")
        assert row_ids(browser) == page
    assert not by_css(browser, "a[rel=prev]")
    # Clicking the sorted column again reverses it.
    click(browser, "th[aria-sort] a")
    assert one(browser, "th[aria-sort]").get_attribute("aria-sort") == "ascending"  # type: ignore[attr-defined]
    ascending = [s["Id"] for s in sorted(by_size, key=lambda s: s["Size"])]
    assert row_ids(browser) == ascending[:3]


def test_an_image_its_layers_and_the_images_sharing_them(served: Served, browser: Browser) -> None:
    app, base = served.ids["app"], served.ids["base"]
    browser.open("/?filter=reference%3Dapp")
    click(browser, f"a[href='/web/images/{app}']")
    assert browser.path == f"/web/images/{app}"
    assert one(browser, "h1").text.startswith("app:1.0")  # type: ignore[attr-defined]
    tags = [tag.text for tag in by_css(browser, "dl.facts dd .tag")]  # type: ignore[attr-defined]
    assert {"app:1.0", "app:latest", "registry.example.com:5000/org/app:1"} <= set(tags)
    layer_rows = by_css(browser, "#layers tbody tr")
    assert len(layer_rows) == 2
    history = [cell.text for cell in by_css(browser, "#history td.command")]  # type: ignore[attr-defined]
    assert history == ["layer 1", "layer 0"]  # newest first, as docker history
    assert "web" in one(browser, "#containers").text  # type: ignore[attr-defined]
    assert "It would fail" in one(browser, "#delete").text  # type: ignore[attr-defined]
    browser.shot("image-app")

    click(browser, "#layers a[href^='/web/layers/']:not([title])")  # "1 other image"
    assert one(browser, "h2").text == "Used by 2 images"  # type: ignore[attr-defined]
    browser.shot("layer-shared")
    click(browser, f"a[href='/web/images/{base}']")
    children = one(browser, "dl.facts").text  # type: ignore[attr-defined]
    assert "app:1.0" in children  # its child, by name
    removal = one(browser, "#delete").text  # type: ignore[attr-defined]
    assert "It would fail" in removal and "image has dependent child images" in removal
    browser.shot("image-base")


def test_user_data_shows_as_text_and_runs_nothing(served: Served, browser: Browser) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    browser.open(f"/web/images/{served.ids['hostile']}")
    cells = [cell.text for cell in by_css(browser, "table.labels-table td")]  # type: ignore[attr-defined]
    assert HOSTILE_LABEL in cells and "<b>key</b>" in cells
    assert one(browser, "#history td.command").text == HOSTILE_COMMAND  # type: ignore[attr-defined]
    assert HOSTILE_AUTHOR in one(browser, "dl.facts").text  # type: ignore[attr-defined]
    assert browser.driver.execute_script("return document.scripts.length") == 1
    assert not by_css(browser, "img") and not by_css(browser, "b")
    with pytest.raises(NoAlertPresentException):
        browser.driver.switch_to.alert.text  # noqa: B018
    browser.shot("image-hostile")
    browser.open("/?filter=reference%3Dhostile")
    assert HOSTILE_LABEL in one(browser, "td.labels").text  # type: ignore[attr-defined]


def test_the_reports_with_charts_options_and_downloads(served: Served, browser: Browser) -> None:
    from selenium.webdriver.support.select import Select

    browser.open("/web/reports")
    browser.shot("reports")
    for name, report in REPORTS.items():
        browser.open("/web/reports")
        wait_for_new_page(
            browser,
            one(browser, f"a[href='/web/reports/{name}']").click,  # type: ignore[attr-defined]
        )
        assert one(browser, "h1").text.startswith(report.title)  # type: ignore[attr-defined]
        headers = [th.text for th in by_css(browser, "table.report th")]  # type: ignore[attr-defined]
        assert headers == [column.title for column in report.columns]
        for image in by_css(browser, "figure.chart img"):
            # The SVG chart was decoded and drawn.
            assert browser.driver.execute_script("return arguments[0].naturalWidth", image) > 0
        links = [a.get_attribute("href") for a in by_css(browser, "p.downloads a")]  # type: ignore[attr-defined]
        assert links == [f"{served.base_url}/web/reports/{name}.{kind}" for kind in ("csv", "json")]
        browser.shot(f"report-{name}")
    assert by_css(browser, "table.report tbody tr")
    browser.open("/web/reports/growth")
    assert by_css(browser, "figure.chart img")
    wait_for_new_page(
        browser, lambda: Select(one(browser, "select[name=period]")).select_by_value("month")
    )
    assert browser.path == "/web/reports/growth?period=month"
    links = [a.get_attribute("href") for a in by_css(browser, "p.downloads a")]  # type: ignore[attr-defined]
    assert links[0].endswith("/web/reports/growth.csv?period=month")
    browser.shot("report-growth-by-month")


def test_errors_are_pages_that_say_why(served: Served, browser: Browser) -> None:
    browser.expected_statuses = {400, 404}
    browser.open("/?filter=colour%3Dred")
    assert one(browser, "p.error").text == "Error: invalid filter 'colour'"  # type: ignore[attr-defined]
    assert one(browser, "#filter").get_attribute("value") == "colour=red"  # type: ignore[attr-defined]
    browser.shot("images-bad-filter")
    browser.open("/web/images/nosuch")
    assert one(browser, "p.error").text == "No such image: nosuch:latest"  # type: ignore[attr-defined]


def test_the_pages_work_without_javascript(
    served: Served, window: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with chromium(served, window.screenshots, javascript=False) as browser:
        browser.open("/")
        assert row_ids(browser) == listed(served)
        box = one(browser, "#filter")
        box.send_keys("label=tier")  # type: ignore[attr-defined]
        one(browser, "form.filters input[name=all]").click()  # type: ignore[attr-defined]
        # No script: the toggle waits for the Filter button.
        assert browser.path == "/"
        click(browser, "form.filters button[type=submit]")
        assert row_ids(browser) == listed(served, "-a", "-f", "label=tier")
        browser.shot("nojs-images-filtered")
        browser.open("/web/reports/growth")
        from selenium.webdriver.support.select import Select

        Select(one(browser, "select[name=period]")).select_by_value("month")
        click(browser, "form.options button[type=submit]")
        assert browser.path == "/web/reports/growth?period=month"
        browser.shot("nojs-report-growth")
        assert browser.console() == []
        assert browser.foreign_requests() == []


def test_the_checks_see_a_console_error_a_blocked_asset_and_a_stray_request(
    window: Browser,
) -> None:
    """The after-test checks are not blind: a planted console error, an image from
    elsewhere (which the Content-Security-Policy blocks, saying so on the console) and a
    request to another address (loopback, another port) are all seen."""
    window.console()
    window.requested()
    window.open("/")
    window.driver.execute_script(
        "console.error('planted error');"
        "const image = document.createElement('img');"
        "image.src = 'http://127.0.0.2:9/planted.png';"
        "document.body.append(image);"
    )
    messages = " ".join(entry["message"] for entry in window.console())
    assert "planted error" in messages
    assert "Content Security Policy" in messages and "planted.png" in messages
    window.driver.get("http://127.0.0.2:9/elsewhere")
    assert "http://127.0.0.2:9/elsewhere" in window.foreign_requests()
    window.console()
    window.open("/")

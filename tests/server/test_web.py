"""The web view over HTTP (httpx): every page, what it lists against the CLI, escaping of
user data, the same-origin policy and security headers, downloads, errors, and the
Engine API's paths untouched beside it. The browser tests are test_web_browser.py."""

from __future__ import annotations

import html
import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from markupsafe import escape
from support.environment import console_script
from support.serving import Served, first_answer, serve_catalog
from support.webview import HOSTILE_AUTHOR, HOSTILE_COMMAND, HOSTILE_LABEL, add_hostile_image

from catalog.domain.digest import short_id
from catalog.server.web.app import serves
from catalog.server.web.forms import parse_filter_box
from catalog.server.web.policy import CONTENT_SECURITY_POLICY, host_allowed
from catalog.services.reports import REPORTS

HTML = "text/html; charset=utf-8"
ROW_ID = re.compile(r'<td class="id"><a href="/web/images/(sha256:[0-9a-f]{64})"')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_catalog(tmp_path_factory.mktemp("served"), unix=False) as running:
        running.ids["hostile"] = add_hostile_image(running)
        yield running


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        yield client


def page(http: httpx.Client, path: str, status: int = 200) -> str:
    response = http.get(path)
    assert response.status_code == status, (path, response.text)
    assert response.headers["content-type"] == HTML
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    return response.text


def listed_ids(served: Served, *args: str) -> list[str]:
    return served.cli("images", "-q", "--no-trunc", *args).output.split()


def unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# --- pure parts ---------------------------------------------------------------------------


def test_the_filter_box_reads_as_the_cli_flags() -> None:
    args = parse_filter_box("dangling=false  label=tier=web 'label=note=two words' app:*")
    assert args.to_dict() == {
        "dangling": ["false"],
        "label": ["tier=web", "note=two words"],
        "reference": ["app:*"],
    }
    assert not parse_filter_box("   ")
    with pytest.raises(Exception, match="No closing quotation"):
        parse_filter_box("label='x")


def test_host_rules_for_addresses_names_and_sockets() -> None:
    def scope(host: str | None, server: tuple[str, int | None] | None) -> dict[str, object]:
        headers = [(b"host", host.encode())] if host is not None else []
        return {"type": "http", "scheme": "http", "headers": headers, "server": server}

    loopback, lan, v6 = ("127.0.0.1", 2375), ("192.0.2.7", 2375), ("::1", 2375)
    assert host_allowed(scope("localhost:2375", loopback), ())
    assert not host_allowed(scope("localhost:2375", lan), ())  # localhost is not that host
    assert host_allowed(scope("192.0.2.7:2375", lan), ())
    assert host_allowed(scope("catalog.lan:2375", lan), {"catalog.lan"})  # serve --host
    assert not host_allowed(scope("catalog.lan:2375", lan), ())
    assert host_allowed(scope("[::1]:2375", v6), ())
    assert not host_allowed(scope("[::1]:2376", v6), ())
    assert host_allowed(scope("127.0.0.1", ("127.0.0.1", 80)), ())  # the default port
    assert not host_allowed(scope(None, loopback), ())
    assert host_allowed(scope("anything", None), ())  # a unix socket
    assert host_allowed(scope("anything", ("/run/catalog.sock", None)), ())


def test_which_paths_are_the_web_views() -> None:
    assert serves("/") and serves("/web") and serves("/web/images/x")
    for api in ("/_ping", "/images/json", "/v1.44/images/json", "/catalog/info", "/webhook"):
        assert not serves(api), api


# --- the images page ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "flags"),
    [
        ("", []),
        ("dangling=true", ["-f", "dangling=true"]),
        ("dangling=false", ["-f", "dangling=false"]),
        ("label=tier", ["-f", "label=tier"]),
        ("label!=tier", ["-f", "label!=tier"]),
        ("reference=app", ["-f", "reference=app"]),
        ("app", ["app"]),
        ("before=db:15", ["-f", "before=db:15"]),
        ("since=app:1.0 label=team=a", ["-f", "since=app:1.0", "-f", "label=team=a"]),
        ("until=2023-07-01", ["-f", "until=2023-07-01"]),
    ],
)
@pytest.mark.parametrize("all_images", [False, True])
def test_the_images_page_lists_what_catalog_images_lists(
    served: Served, http: httpx.Client, box: str, flags: list[str], all_images: bool
) -> None:
    query = {"filter": box, **({"all": "1"} if all_images else {})}
    text = page(http, "/?" + urlencode(query))
    expected = unique(listed_ids(served, *flags, *(["-a"] if all_images else [])))
    assert ROW_ID.findall(text) == expected
    # The box shows the filter as typed; the toggle as set.
    assert f'value="{html.escape(box)}"' in text
    assert ('name="all" value="1" checked' in text) == all_images


def test_the_images_page_shows_sizes_names_containers_and_labels(
    served: Served, http: httpx.Client
) -> None:
    text = page(http, "/?" + urlencode({"filter": "reference=app"}))
    [row] = re.findall(r"<tr>\s*<td class=\"id\">.*?</tr>", text, re.DOTALL)
    json_rows = served.cli("images", "app", "--format", "json", "--shared-size").output
    assert short_id(served.ids["app"]) in row
    for name in ("app:1.0", "app:latest"):
        assert f'<span class="tag">{name}</span>' in row
    # As the listing: with a reference filter, only the names it matched.
    assert "registry.example.com:5000/org/app:1" not in row
    assert '<span class="label">team=a</span>' in row
    # 613 bytes, 313 of them in the base's layer, which the base image shares.
    assert '"SharedSize":313' in json_rows and '"Size":613' in json_rows
    assert re.search(r'title="613 bytes">613B<', row)
    assert re.search(r'title="313 bytes">313B<', row)
    assert re.search(r'title="300 bytes">300B<', row)
    assert '<td class="num">1</td>' in row  # one container


def test_sorting_and_pages_follow_the_links(served: Served, http: httpx.Client) -> None:
    everything = unique(listed_ids(served, "-a"))
    for sort in ("size", "id", "created"):
        seen: list[str] = []
        path: str | None = "/?" + urlencode({"all": "1", "sort": sort, "limit": "3"})
        pages = 0
        while path is not None:
            text = page(http, path)
            rows = ROW_ID.findall(text)
            assert 1 <= len(rows) <= 3
            seen += rows
            pages += 1
            after = re.search(r'<a rel="next" href="([^"]+)"', text)
            path = html.unescape(after.group(1)) if after else None
        assert sorted(seen) == sorted(everything), sort
        assert len(seen) == len(set(seen))
        assert pages == -(-len(everything) // 3)
        if sort == "created":
            assert seen == everything  # the listing's own order
        if sort == "id":
            assert seen == sorted(everything)
    # The header of the sorted column says so, and its link reverses it.
    text = page(http, "/?sort=size")
    assert 'aria-sort="descending"' in text
    assert 'href="/?sort=size&amp;order=asc"' in text


def test_bad_filters_and_options_say_why_on_the_page(served: Served, http: httpx.Client) -> None:
    text = page(http, "/?" + urlencode({"filter": "colour=red"}), 400)
    assert "Error: invalid filter &#39;colour&#39;" in text
    assert 'value="colour=red"' in text  # the form keeps what was typed
    text = page(http, "/?" + urlencode({"filter": "before=nosuch"}), 404)
    assert "No such image: nosuch:latest" in text
    text = page(http, "/?" + urlencode({"filter": "dangling=maybe"}), 400)
    assert "invalid filter &#39;dangling=[maybe]&#39;" in text  # Docker's text
    assert "invalid sort" in page(http, "/?sort=name", 400)
    assert "invalid limit" in page(http, "/?limit=0", 400)
    assert "No such image" in page(http, "/?after=sha256:" + "0" * 64, 404)


# --- an image, a layer ----------------------------------------------------------------------


def test_the_image_page_shows_what_inspect_and_history_say(
    served: Served, http: httpx.Client
) -> None:
    app, base = served.ids["app"], served.ids["base"]
    text = page(http, f"/web/images/{app}")
    assert f'<dd class="id">{app}</dd>' in text
    for name in ("app:1.0", "app:latest", "registry.example.com:5000/org/app:1"):
        assert f'<span class="tag">{name}</span>' in text
    assert f'href="/web/images/{base}"' in text  # the parent
    assert "linux/amd64" in text
    layers = re.findall(r'<a href="/web/layers/(sha256:[0-9a-f]{64})" title=', text)
    inspect = http.get(f"/images/{app}/json").json()
    assert len(layers) == len(inspect["RootFS"]["Layers"]) == 2
    assert "1 other image</a>" in text and "no other image" in text
    history = http.get(f"/images/{app}/history").json()
    for item in history:
        assert f"<code>{html.escape(item['CreatedBy'])}</code>" in text
    assert "<td>web</td>" in text and "running" in text  # its container
    # A running container: rmi cannot even be forced.
    assert "It would fail" in text and "image is being used by running container" in text
    # Reached by name too.
    assert f'<dd class="id">{app}</dd>' in page(http, "/web/images/app:1.0")
    assert "No such image: nosuch:latest" in page(http, "/web/images/nosuch", 404)


def test_what_rmi_would_free_is_shown(served: Served, http: httpx.Client) -> None:
    text = page(http, f"/web/images/{served.ids['digest_only']}")
    assert 'It would free <strong title="50 bytes">50B</strong>' in text
    assert f"Deleted: {served.ids['digest_only']}" in text
    assert "Untagged: digested@sha256:" in text


def test_the_layer_page_lists_the_images_using_it(served: Served, http: httpx.Client) -> None:
    app, base = served.ids["app"], served.ids["base"]
    text = page(http, f"/web/images/{app}")
    bottom = re.findall(r'<a href="/web/layers/(sha256:[0-9a-f]{64})" title=', text)[0]
    text = page(http, f"/web/layers/{bottom}")
    assert "Used by 2 images" in text
    assert set(re.findall(r'href="/web/images/(sha256:[0-9a-f]{64})"', text)) == {app, base}
    assert "No such layer" in page(http, "/web/layers/sha256:" + "0" * 64, 404)


# --- reports ----------------------------------------------------------------------------------


def test_every_report_has_its_page_chart_table_and_downloads(
    served: Served, http: httpx.Client
) -> None:
    index = page(http, "/web/reports")
    for name, report in REPORTS.items():
        assert f'href="/web/reports/{name}"' in index
        text = page(http, f"/web/reports/{name}")
        assert html.escape(report.title) in text
        for column in report.columns:
            assert f">{column.title}</th>" in text
        rows = json.loads(served.cli("report", name, "--format", "json").output)
        has_chart = name in ("usage-by-repository", "growth", "layer-sharing") and rows
        assert ('src="data:image/svg+xml;base64,' in text) == bool(has_chart), name
        assert text.count("<tr><td") + text.count("<tr>\n") >= 1
        assert ("Nothing to report." in text) == (not rows), name
        for kind in ("csv", "json"):
            assert f'href="/web/reports/{name}.{kind}"' in text
            download = http.get(f"/web/reports/{name}.{kind}")
            assert download.status_code == 200
            assert download.headers["content-disposition"] == (
                f'attachment; filename="{name}.{kind}"'
            )
            if name not in ("reclaimable", "stale-tags"):  # relative to now: may move
                assert download.text == served.cli("report", name, "--format", kind).output


def test_report_options_are_form_fields_kept_in_the_links(
    served: Served, http: httpx.Client
) -> None:
    text = page(http, "/web/reports/growth?period=month")
    assert '<option value="month" selected>' in text
    assert 'href="/web/reports/growth.csv?period=month"' in text
    csv = http.get("/web/reports/growth.csv?period=month").text
    assert csv == served.cli("report", "growth", "--period", "month", "--format", "csv").output
    text = page(http, "/web/reports/stale-tags?older_than=&max_tags=2")
    assert 'name="max_tags" value="2"' in text
    assert 'href="/web/reports/stale-tags.json?max_tags=2"' in text
    assert "invalid max_tags value" in page(http, "/web/reports/stale-tags?max_tags=x", 400)
    assert "invalid older_than value" in page(http, "/web/reports/reclaimable?older_than=soon", 400)
    assert "takes no period option" in page(http, "/web/reports/reclaimable?period=week", 400)
    assert "no such report" in page(http, "/web/reports/nosuch", 404)
    assert http.get("/web/reports/growth.xml").status_code == 404


# --- user data is text --------------------------------------------------------------------


def test_user_data_is_escaped_everywhere(served: Served, http: httpx.Client) -> None:
    hostile = served.ids["hostile"]
    for path in (
        "/?" + urlencode({"filter": "reference=hostile"}),
        f"/web/images/{hostile}",
        "/?" + urlencode({"filter": "<script>alert(0)</script>"}),
        "/web/reports/growth?period=%3Cscript%3E",
    ):
        text = http.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert "<b>" not in text, path
        # The only scripts are the view's own file.
        assert re.findall(r"<script[^>]*>", text) == [
            '<script src="/web/static/catalog.js" defer>'
        ], path
    text = page(http, f"/web/images/{hostile}")
    for value in (HOSTILE_LABEL, HOSTILE_COMMAND, HOSTILE_AUTHOR, "<b>key</b>"):
        assert str(escape(value)) in text, value


# --- served safely ---------------------------------------------------------------------------


def test_only_get_and_head(http: httpx.Client, served: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/", f"/web/images/{served.ids['app']}", "/web/reports/growth"):
            response = http.request(method, path)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == "GET, HEAD"
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""


def test_the_host_must_be_this_server(http: httpx.Client, served: Served) -> None:
    port = served.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert http.get("/", headers={"Host": host}).status_code == 200, host
    for host in (
        f"evil.example:{port}",  # DNS rebinding: a name made to resolve to 127.0.0.1
        f"127.0.0.2:{port}",
        f"127.0.0.1:{port + 1}",
        "127.0.0.1",
        f"user@127.0.0.1:{port}",
        "",
    ):
        response = http.get("/", headers={"Host": host})
        assert response.status_code == 421, host
    # The Engine API keeps its own rules (catalog.server.middleware): a foreign name is
    # refused there too, with Docker's JSON error rather than the web view's page.
    refused = http.get("/_ping", headers={"Host": f"evil.example:{port}"})
    assert refused.status_code == 403
    assert "message" in refused.json()


def test_cross_site_requests_are_refused_but_links_followed(
    http: httpx.Client, served: Served
) -> None:
    own = served.base_url
    assert http.get("/", headers={"Origin": own}).status_code == 200
    assert http.get("/", headers={"Origin": "http://evil.example"}).status_code == 403
    embedded = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
    assert http.get("/web/static/catalog.css", headers=embedded).status_code == 403
    followed = {
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    assert http.get("/", headers=followed).status_code == 200


def test_every_answer_carries_the_security_headers(http: httpx.Client) -> None:
    for path, status in (
        ("/", 200),
        ("/web/static/catalog.css", 200),
        ("/web/static/catalog.js", 200),
        ("/web/nosuch", 404),
        ("/web/static/nosuch.css", 404),
    ):
        response = http.get(path)
        assert response.status_code == status, path
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
    assert http.get("/web/static/catalog.css").headers["content-type"].startswith("text/css")
    assert "javascript" in http.get("/web/static/catalog.js").headers["content-type"]


def test_pages_name_nothing_outside_the_server(served: Served, http: httpx.Client) -> None:
    paths = ["/", f"/web/images/{served.ids['app']}", "/web/reports"]
    paths += [f"/web/reports/{name}" for name in REPORTS]
    for path in paths:
        text = page(http, path)
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', text):
            assert url.startswith(("/", "#", "data:image/svg+xml;base64,")), (path, url)
    css = http.get("/web/static/catalog.css").text
    assert "url(" not in css and "@import" not in css


def test_the_engine_api_paths_are_as_they_were(http: httpx.Client) -> None:
    assert http.get("/_ping").text == "OK"
    assert http.get("/images/json").headers["content-type"] == "application/json"
    assert http.get("/v1.44/images/json").status_code == 200
    assert http.get("/catalog/info").status_code == 200
    assert http.get("/v1.44/").json() == {"message": "page not found"}
    assert http.get("/nosuch").json() == {"message": "page not found"}


def test_a_long_report_shows_its_first_rows_and_its_totals(
    served: Served, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.server.web import pages

    monkeypatch.setattr(pages, "MAX_REPORT_ROWS", 3)
    rows = json.loads(served.cli("report", "reclaimable", "--format", "json").output)
    assert len(rows) > 5
    text = page(http, "/web/reports/reclaimable")
    body = text.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 3 + 2  # three images, then `all dangling` and `all`
    assert "<td>all dangling</td>" in body and "<td>all</td>" in body
    assert f"The table shows the first 3 of {len(rows)} rows, and the totals" in text
    assert len(json.loads(http.get("/web/reports/reclaimable.json").text)) == len(rows)


def test_the_console_script_says_where_the_web_view_is(tmp_path: Path, db_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sock = tmp_path / "d.sock"
    process = subprocess.Popen(
        [console_script(), "--root", str(tmp_path / "root"), "--db", db_url, "serve",
         "--port", str(port), "--unix", str(sock), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        response = first_answer(process, f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        assert "<h1>Images</h1>" in response.text and "No images match." in response.text
        # Over the unix socket too (no browser reaches it, so no address to check).
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, base_url="http://anything") as client:
            assert client.get("/web/reports").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert f"Web view (read-only) at http://127.0.0.1:{port}/" in stderr

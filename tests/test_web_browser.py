"""The web view in a real browser (issue 16): headless Chromium (Debian's ``chromium``, driven by
playwright through ``executable_path``: no browser download) against ``aggregator serve`` on
127.0.0.1 over the fixture archive (tests/webfixtures.py). A user searches and opens a result,
reads a revision's diff, pages through a feed; an item carrying script, event-handler and
``javascript:`` payloads renders inert, checked in the page (no dialog, the flag its payloads
would set stays unset). Screenshots are kept as artefacts: under pytest's temporary folder
(``…/artefacts``, the path is printed) or ``$AGGREGATOR_ARTEFACTS``.

Without playwright or chromium these tests skip, saying which is missing; with
``AGGREGATOR_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.store import Store
from tests import webfixtures as wf

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("AGGREGATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Scans the page for anything that could run: script elements, on* attributes, javascript: URLs.
LIVE_CODE = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    if (el.tagName === 'SCRIPT') found.push('script element');
    for (const attr of el.attributes) {
      if (/^on/i.test(attr.name)) found.push(el.tagName + ' ' + attr.name);
      if (/^\\s*javascript:/i.test(attr.value)) found.push(el.tagName + ' ' + attr.name + ' js');
    }
  }
  return found;
}"""


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or $AGGREGATOR_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("AGGREGATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (AGGREGATOR_REQUIRE_BROWSER=1): {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox"])  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    folder = Path(os.environ.get("AGGREGATOR_ARTEFACTS") or
                  tmp_path_factory.getbasetemp() / "artefacts")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"browser test screenshots: {folder}"
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line)
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    """``aggregator serve`` on 127.0.0.1 (a port the system picks) over the fixture archive."""
    database = f"sqlite:///{tmp_path_factory.mktemp('web') / 'archive.db'}"
    with Store.open(database) as store:
        ids = wf.build(store)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--database", database, "serve", "--listen",
         "127.0.0.1:0"], stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    try:
        assert " at http://127.0.0.1:" in line, line
        yield line.split(" at ", 1)[1].split(" ", 1)[0], ids
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def page(browser: Any, artefacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page that records every dialog and console message; its screenshot is kept."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.dialogs = []
    opened.console = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("console", lambda message: opened.console.append(message.text))
    yield opened
    opened.screenshot(path=str(artefacts / f"{request.node.name}.png"), full_page=True)
    context.close()


def test_page_through_a_feed(page: Any, site: tuple[str, dict[str, int]]) -> None:
    base, _ids = site
    page.goto(base)
    page.click("text=News Example")
    assert page.locator("ol.items > li").count() == 50
    page.click("a[rel=next]")
    assert page.url.endswith("/feed/1?page=2")
    items = page.locator("ol.items > li a")
    assert items.count() == wf.NEWS_ITEMS + 1 - 50
    assert items.last.inner_text() == "Story 1"
    page.click("a[rel=prev]")
    assert page.locator("ol.items > li").count() == 50


def test_read_a_revision_diff(page: Any, site: tuple[str, dict[str, int]],
                              artefacts: Path) -> None:  # fmt: skip
    base, _ids = site
    page.goto(base + "feed/1?page=2")
    page.click("ol.items a:text-is(\"Story 1\")")
    assert page.inner_text("#item-title") == "Story 1"
    assert "The council met on Tuesday." in page.inner_text("#article")
    page.screenshot(path=str(artefacts / "item-story-1.png"), full_page=True)
    page.click("text=revision 2")
    text_diff = page.locator("#field-text table.diff")
    assert text_diff.locator("tr.del del").inner_text() == "Monday"
    assert text_diff.locator("tr.add ins").inner_text() == "Tuesday"
    assert page.locator("#field-title").inner_text().endswith("unchanged")


def test_a_hostile_item_renders_inert(page: Any, site: tuple[str, dict[str, int]]) -> None:
    base, ids = site
    for path in (f"item/{ids['hostile']}", "feed/1", ""):
        page.goto(base + path, wait_until="load")
        page.wait_for_timeout(300)  # let any timer or late event handler fire
        assert page.evaluate("() => window.__xss") is None, path
        assert page.dialogs == [], path
        assert page.evaluate(LIVE_CODE) == [], path
    page.goto(base + f"item/{ids['hostile']}", wait_until="load")
    assert page.inner_text("#item-title") == wf.HOSTILE_TITLE  # shown as text, whole
    page.click("text=click me")  # the link lost its javascript: href
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__xss") is None and page.dialogs == []


def test_the_probe_sees_a_script_that_runs(page: Any) -> None:
    """The checks above would notice: the same payloads, unescaped, do set the flag."""
    page.set_content(wf.HOSTILE_HTML + '<script>alert("ran")</script>')
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is not None
    assert page.dialogs == ["ran"]
    assert page.evaluate(LIVE_CODE) != []


def test_search_and_open_a_result(page: Any, site: tuple[str, dict[str, int]],
                                  artefacts: Path) -> None:  # fmt: skip
    base, ids = site
    page.goto(base)
    page.fill("header input[name=q]", "депутат*")  # in both summaries: Депутаты, Депутаттар
    page.press("header input[name=q]", "Enter")
    page.wait_for_load_state()
    assert "/search?q=" in page.url
    hits = page.locator("ol.hits > li > a")
    assert sorted(hits.all_inner_texts()) == sorted([wf.KAZAKH_TITLE, wf.RUSSIAN_TITLE])
    assert page.locator("ol.hits mark").count() >= 2
    page.select_option("select[name=feed]", wf.OTHER)
    page.fill("form.search input[name=q]", "талқылады")
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("ol.hits > li > a").all_inner_texts() == [wf.KAZAKH_TITLE]
    page.screenshot(path=str(artefacts / "search-kazakh.png"), full_page=True)
    page.click(f"ol.hits a:text-is(\"{wf.KAZAKH_TITLE}\")")
    assert page.url.endswith(f"/item/{ids['kazakh']}")
    assert page.inner_text("#item-title") == wf.KAZAKH_TITLE

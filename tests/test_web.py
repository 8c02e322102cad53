"""The web view (issue 16) over a fixture archive with known answers, on SQLite and PostgreSQL:
what each page shows, that stored HTML and hostile titles render inert, the headers every answer
carries, the token and host rules, and that the view cannot write.

The browser half (pages rendered by Chromium, scripts checked not to run) is
tests/test_web_browser.py.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

with warnings.catch_warnings():  # starlette 1.x would have httpx2 here; httpx serves as well
    warnings.simplefilter("ignore", UserWarning)  # StarletteDeprecationWarning is one
    from starlette.testclient import TestClient

from aggregator.web.app import CSP, create_app
from storage.errors import StorageError
from storage.store import Store
from tests import webfixtures as wf

NOW = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


@pytest.fixture
def archive(store_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    """The fixture archive on ``store_url``, written and closed: the view opens it read-only."""
    with Store.open(store_url) as writer:
        ids = wf.build(writer)
    yield store_url, ids


@pytest.fixture
def view(archive: tuple[str, dict[str, int]]) -> Iterator[tuple[TestClient, dict[str, int]]]:
    url, ids = archive
    with Store.open(url, read_only=True) as store:
        app = create_app(store, clock=lambda: NOW)
        with TestClient(app) as client:
            yield client, ids


def test_the_feeds_page_shows_each_feed_with_its_health(view: tuple[TestClient, dict]) -> None:
    client, _ids = view
    page = client.get("/")
    assert page.status_code == 200
    assert "News Example" in page.text and "Other Example" in page.text
    assert "interval" in page.text  # why the next poll is then (the fixture's reason)
    assert "/feeds/tag/kz.atom" in page.text and "/feeds/tag/other.json" in page.text


def test_a_feed_pages_through_its_items_newest_first(view: tuple[TestClient, dict]) -> None:
    client, _ids = view
    first = client.get("/feed/1")
    titles = re.findall(r'<a href="/item/\d+">([^<]*)</a>', first.text)
    assert len(titles) == 50
    assert titles[1:4] == ["Story 60", "Story 59", "Story 58"]
    assert 'rel="next" href="/feed/1?page=2"' in first.text
    second = client.get("/feed/1?page=2")
    rest = re.findall(r'<a href="/item/\d+">([^<]*)</a>', second.text)
    assert len(rest) == wf.NEWS_ITEMS + 1 - 50 and rest[-1] == "Story 1"
    assert 'rel="prev" href="/feed/1?page=1"' in second.text and 'rel="next"' not in second.text
    assert client.get("/feed/1?page=0").status_code == 400
    assert client.get("/feed/1?page=abc").status_code == 400
    assert client.get("/feed/999").status_code == 404


def test_an_item_shows_its_article_sightings_revisions_and_captures(
    view: tuple[TestClient, dict],
) -> None:
    client, ids = view
    page = client.get(f"/item/{ids['story1']}").text
    assert "<p>The council met on Tuesday.</p>" in page  # the article's (clean) HTML
    assert wf.NEWS in page and wf.OTHER in page  # two sightings
    assert f'href="/item/{ids["story1"]}/revision/2"' in page
    captures = re.findall(r'href="/capture/(\d+)"', page)
    assert len(captures) == 2


def test_a_revision_reads_as_a_diff_of_the_words_that_changed(
    view: tuple[TestClient, dict],
) -> None:
    client, ids = view
    page = client.get(f"/item/{ids['story1']}/revision/2").text
    assert "The council met on <del>Monday</del>." in page
    assert "The council met on <ins>Tuesday</ins>." in page
    assert page.count('<tr class="same">') == 2
    first = client.get(f"/item/{ids['story1']}/revision/1").text
    assert "the first version stored" in first
    assert client.get(f"/item/{ids['story1']}/revision/9").status_code == 404


def test_a_raw_capture_is_plain_text_never_a_live_page(view: tuple[TestClient, dict]) -> None:
    client, ids = view
    page = client.get(f"/item/{ids['story1']}").text
    first = re.findall(r'href="/capture/(\d+)"', page)[0]
    raw = client.get(f"/capture/{first}")
    assert raw.content == b"<p>v1</p>"
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in raw.headers["content-security-policy"]


def test_hostile_markup_is_escaped_or_removed(view: tuple[TestClient, dict]) -> None:
    """The title is text (escaped); summary, content and article HTML pass the sanitizer; so
    no script element, no event handler, no javascript: URL reaches a page."""
    client, ids = view
    for path in (f"/item/{ids['hostile']}", "/feed/1", "/"):
        page = client.get(path).text
        body = page.split("<main>", 1)[1]
        assert "<script" not in body.lower(), path
        assert not re.search(r"<[^>]+\son\w+\s*=", body, re.IGNORECASE), path
        assert "javascript:" not in body.lower(), path
        assert "<iframe" not in body and "<svg" not in body and "<form" not in body.replace(
            '<form class="quick"', ""), path
    item = client.get(f"/item/{ids['hostile']}").text
    assert "Hostile &lt;script&gt;window.__xss=" in item  # shown, as text


def test_every_answer_carries_the_strict_headers(view: tuple[TestClient, dict]) -> None:
    client, ids = view
    for path in ("/", f"/item/{ids['story1']}", "/nope", "/feeds/all.atom", "/static/style.css"):
        answer = client.get(path)
        assert answer.headers["content-security-policy"].startswith("default-src 'none'"), path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in CSP and "'unsafe-inline'" not in CSP
    assert "frame-ancestors 'none'" in CSP


def test_the_view_answers_get_only_and_cannot_write(
    view: tuple[TestClient, dict], archive: tuple[str, dict[str, int]]
) -> None:
    client, _ids = view
    assert client.post("/").status_code == 405
    assert client.delete("/item/1").status_code == 405
    with Store.open(archive[0], read_only=True) as store:
        with pytest.raises(StorageError, match="read-only"):
            store.sync_feeds([], NOW)
        from sqlalchemy import text

        with pytest.raises(Exception, match=r"(?i)read.?only"), store.db.read() as conn:
            conn.execute(text("DELETE FROM items"))
        assert len(store.browse.newest(None, 1000)) == wf.NEWS_ITEMS + 3


def test_a_token_is_required_once_set(archive: tuple[str, dict[str, int]]) -> None:
    token = "s3cret-token-0123456789"
    with Store.open(archive[0], read_only=True) as store:
        client = TestClient(create_app(store, token=token))
        refused = client.get("/")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["content-security-policy"] == CSP
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/", headers={"Authorization": f"Basic {token}"}).status_code == 401
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_on_loopback_only_loopback_host_names_are_answered(
    archive: tuple[str, dict[str, int]],
) -> None:
    """A page elsewhere that rebinds its name to 127.0.0.1 sends its own Host: refused."""
    with Store.open(archive[0], read_only=True) as store:
        app = create_app(store, hosts=["127.0.0.1", "localhost"])
        assert TestClient(app, base_url="http://127.0.0.1:8322").get("/").status_code == 200
        assert TestClient(app, base_url="http://evil.example").get("/").status_code == 400


def test_a_view_of_an_archive_not_at_head_refuses_rather_than_upgrades(
    archive: tuple[str, dict[str, int]],
) -> None:
    from sqlalchemy import text

    from storage.engine import Database

    def set_version(version: str) -> None:
        db = Database(archive[0])
        with db.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
        db.dispose()

    db = Database(archive[0])
    with db.read() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    db.dispose()
    set_version("0007")
    with pytest.raises(StorageError, match="read-only view cannot upgrade"):
        Store.open(archive[0], read_only=True)
    set_version(head)
    with Store.open(archive[0], read_only=True) as store:
        assert store.browse.tags() == ["kz", "news", "other"]


def test_search_finds_pages_and_filters(view: tuple[TestClient, dict]) -> None:
    client, ids = view
    found = client.get("/search", params={"q": "бюджет*"})
    assert found.status_code == 200
    links = re.findall(r'<li><a href="/item/(\d+)">', found.text)
    assert sorted(int(i) for i in links) == sorted([ids["russian"], ids["kazakh"]])
    marked = client.get("/search", params={"q": "депутат*"}).text
    assert marked.count("<mark>Депутат") == 2  # Депутаты, Депутаттар: the prefix marked
    many = client.get("/search", params={"q": "story", "tag": "news"})
    assert "60 items match" in many.text  # Story 1 … Story 60
    assert len(re.findall(r'<li><a href="/item/', many.text)) == 20
    assert 'rel="next" href="/search?q=story&amp;tag=news&amp;page=2"' in many.text
    last = client.get("/search", params={"q": "story", "tag": "news", "page": 3})
    assert 'rel="next"' not in last.text and 'rel="prev"' in last.text
    other = client.get("/search", params={"q": "story", "feed": wf.OTHER})
    assert re.findall(r'<li><a href="/item/(\d+)">', other.text) == [str(ids["story1"])]
    none = client.get("/search", params={"q": "story", "until": "2020-01-01"})
    assert "0 items match" in none.text


def test_beyond_the_count_limit_pages_go_on_while_they_are_full(
    view: tuple[TestClient, dict], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Store.search`` stops counting past ``COUNT_LIMIT`` (total None): the page says "more
    than" and offers a next page as long as the pages are full."""
    import storage.search

    client, _ids = view
    monkeypatch.setattr(storage.search, "COUNT_LIMIT", 30)
    first = client.get("/search", params={"q": "story", "tag": "news"}).text
    assert "More than 30 items match" in first and 'rel="next"' in first
    last = client.get("/search", params={"q": "story", "tag": "news", "page": 3}).text
    assert len(re.findall(r'<li><a href="/item/', last)) == 20 and 'rel="next"' in last
    after = client.get("/search", params={"q": "story", "tag": "news", "page": 4}).text
    assert re.findall(r'<li><a href="/item/', after) == [] and 'rel="next"' not in after


def test_ipv6_loopback_and_head_requests(archive: tuple[str, dict[str, int]]) -> None:
    with Store.open(archive[0], read_only=True) as store:
        app = create_app(store, hosts=["127.0.0.1", "localhost", "[::1]"])
        client = TestClient(app, base_url="http://[::1]:8322")
        assert client.get("/").status_code == 200
        head = client.head("/feed/1")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-security-policy"] == CSP


def test_a_bad_search_says_why_on_the_page(view: tuple[TestClient, dict]) -> None:
    client, _ids = view
    unclosed = client.get("/search", params={"q": '"budget'})
    assert unclosed.status_code == 400 and 'id="problem"' in unclosed.text
    bad_time = client.get("/search", params={"q": "budget", "since": "yesterday-ish"})
    assert bad_time.status_code == 400
    assert "since: &#39;yesterday-ish&#39; is neither" in bad_time.text
    hostile = client.get("/search", params={"q": '<script>alert(1)</script>"'})
    assert "<script>alert" not in hostile.text

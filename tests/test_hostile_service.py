"""Every bad input of DESIGN.md through the real poll path: one ``OneShot.poll_once``, local server.

The HTTP client and the parser have their own hostile tests; this one checks the end-to-end promise:
in a single poll of a healthy feed beside one feed per hostile case, each hostile feed ends in a
clear recorded state (status, an error that starts with its stage and names the URL, the next poll
and why), the whole poll takes bounded time and memory, and the healthy feed's items are stored.
The SSRF guard is ON: only 127.0.0.1 is allowed, so a redirect to 127.0.0.2 or 10.0.0.1 is refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import re
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from aggregator.config.settings import Settings
from aggregator.fetch.netguard import ALLOW_HINT
from aggregator.runtime.oneshot import OneShot
from aggregator.runtime.worker import Totals
from storage.records import ExportFilter, FeedState
from storage.store import Store
from tests.feedfixtures import item, rss
from tests.httpserver import (
    TestServer,
    accept_and_hang,
    endless_chunked,
    lying_content_length,
    slowloris,
)

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("event_loops")]  # both loops

MIB = 2**20
TIMEOUT = 2.0  # the total deadline per request
CAP = MIB  # the body cap; the bombs inflate to 64 times that
BOMB = 64 * MIB
INTERVAL = 30.0  # short, so that a 120 s Retry-After outweighs the first back-off (60 s)
WEEK = 7 * 86400.0  # the clamp on any server-requested delay
BILLION_LAUGHS = "<!DOCTYPE rss [<!ENTITY lol \"lol\">" + "".join(
    f'<!ENTITY lol{k} "{("&lol" + (str(k - 1) if k > 1 else "") + ";") * 10}">'
    for k in range(1, 10)
) + "]>"
HTML = b"<!doctype html><html><head><title>Home</title></head><body><p>Hi</p></body></html>"


@dataclass(frozen=True)
class Case:
    """What one hostile feed must leave behind in the feeds table."""

    path: str
    status: str  # last_status
    error: str | None  # a regex searched in last_error (which must also name the URL)
    reason: str  # a regex searched in next_reason
    http_status: int | None = None


BACKOFF = r"^backing off after 1 error$"
FIRST = r"^configured interval"
CASES: dict[str, Case] = {
    "healthy": Case("/healthy.xml", "ok", None, FIRST, 200),
    "gzip bomb": Case("/gzip-bomb.xml", "error", r"^fetch: body exceeds 1 MiB cap for ", BACKOFF),
    "deflate bomb": Case("/deflate-bomb.xml", "error", r"^fetch: body exceeds 1 MiB cap for ",
                         BACKOFF),
    "lying length": Case("/lying.xml", "error", r"^fetch: network error \(.*\) for ", BACKOFF),
    "endless chunked": Case("/chunked.xml", "error", r"^fetch: body exceeds 1 MiB cap for ",
                            BACKOFF),
    "slowloris": Case("/slowloris.xml", "error", r"^fetch: total deadline of 2s exceeded for ",
                      BACKOFF),
    "accept and hang": Case("/hang.xml", "error",
                            r"^fetch: (total deadline of 2s exceeded|read timeout) for ", BACKOFF),
    "redirect loop": Case("/loop-a.xml", "error", r"^fetch: redirect loop at \S+/loop-a\.xml for ",
                          BACKOFF),
    "too many redirects": Case("/hop/0.xml", "error",
                               r"^fetch: too many redirects \(more than 5\) for ", BACKOFF),
    "redirect to file": Case("/to-file.xml", "error",
                             r"^fetch: redirect to unsupported scheme 'file' for ", BACKOFF),
    "redirect to 127.0.0.2": Case("/to-loopback.xml", "error",
                                  r"^fetch: blocked address 127\.0\.0\.2 \(.*\) for "
                                  r"http://127\.0\.0\.2:\d+/secret\.xml \(redirected from ",
                                  BACKOFF),
    "redirect to 10.0.0.1": Case("/to-private.xml", "error",
                                 r"^fetch: blocked address 10\.0\.0\.1 \(.*\) for "
                                 r"http://10\.0\.0\.1/feed\.xml \(redirected from ", BACKOFF),
    "429 in seconds": Case("/429-seconds.xml", "error", r"^fetch: HTTP 429 for ",
                           r"^Retry-After from 429$", 429),
    "503 as a date": Case("/503-date.xml", "error", r"^fetch: HTTP 503 for ",
                          r"^Retry-After from 503$", 503),
    "429 absurd": Case("/429-absurd.xml", "error", r"^fetch: HTTP 429 for ",
                       r"^Retry-After from 429$", 429),
    "304": Case("/conditional.xml", "not_modified", None, FIRST, 304),
    "304 unasked": Case("/unasked-304.xml", "not_modified", None, FIRST, 304),
    "410": Case("/gone.xml", "gone", r"^fetch: HTTP 410 for ", r"^gone \(410\): polling stopped$",
                410),
    "HTML as a feed": Case("/html.xml", "error",
                           r"^parse: not a feed \(an HTML page, advertising no feed\) for ",
                           BACKOFF, 200),
    "billion laughs": Case("/laughs.xml", "ok", None, FIRST, 200),
    "XXE to a file": Case("/xxe-file.xml", "ok", None, FIRST, 200),
    "XXE to a URL": Case("/xxe-url.xml", "ok", None, FIRST, 200),
    "truncated": Case("/truncated.xml", "ok", None, FIRST, 200),
    "same guid": Case("/same-guid.xml", "ok", None, FIRST, 200),
    "no guids": Case("/no-guids.xml", "ok", None, FIRST, 200),
    "64 KB titles": Case("/long-titles.xml", "ok", None, FIRST, 200),
    "future dates": Case("/future.xml", "ok", None, FIRST, 200),
}


@cache
def bombs() -> tuple[bytes, bytes]:
    """64 MiB of zeros, gzip and zlib: a few dozen KiB each."""
    zeros = b"\0" * BOMB
    return gzip.compress(zeros, 9), zlib.compress(zeros, 9)


def feed(items: str, prolog: str = "") -> dict[str, Any]:
    return {"body": rss(items, prolog=prolog), "headers": {"Content-Type": "application/rss+xml"}}


def numbered(n: int, **kw: Any) -> str:
    return "".join(item(k, link=f"https://example.org/{k}", **kw) for k in range(n))


def script(server: TestServer, tmp_path: Path) -> None:
    """Every route the hostile feeds need, all on 127.0.0.1."""
    gz, zz = bombs()
    rss_type = {"Content-Type": "application/rss+xml"}
    server.route("/healthy.xml", **feed("".join(item(k, guid=f"h{k}") for k in range(3))))
    server.route("/gzip-bomb.xml", body=gz, headers={**rss_type, "Content-Encoding": "gzip"})
    server.route("/deflate-bomb.xml", body=zz, headers={**rss_type, "Content-Encoding": "deflate"})
    server.raw("/lying.xml", lying_content_length(1_000_000, b"<rss><channel>"))
    server.raw("/chunked.xml", endless_chunked())
    server.raw("/slowloris.xml", slowloris(interval=0.2))
    server.raw("/hang.xml", accept_and_hang)
    server.redirect("/loop-a.xml", "/loop-b.xml", status=302)
    server.redirect("/loop-b.xml", "/loop-a.xml", status=302)
    for k in range(7):
        server.redirect(f"/hop/{k}.xml", f"/hop/{k + 1}.xml", status=302)
    server.route("/hop/7.xml", **feed(item(1, guid="never")))
    server.redirect("/to-file.xml", "file:///etc/passwd")
    server.route("/secret.xml", **feed(item(1, guid="secret")))
    server.redirect("/to-loopback.xml", server.url("/secret.xml", host="127.0.0.2"), status=302)
    server.redirect("/to-private.xml", "http://10.0.0.1/feed.xml", status=302)
    script_throttles(server)
    server.route("/conditional.xml", etag='"v1"', **feed(item(1, guid="c1")))
    server.route("/unasked-304.xml", status=304)
    server.route("/gone.xml", status=410, body=b"gone")
    server.route("/html.xml", body=HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    script_documents(server, tmp_path)


def script_throttles(server: TestServer) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    server.route("/429-seconds.xml", status=429, headers={"Retry-After": "120"})
    server.route("/503-date.xml", status=503, headers={"Retry-After": later})
    server.route("/429-absurd.xml", status=429, headers={"Retry-After": "99999999999"})


def script_documents(server: TestServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-31415")
    server.route("/xxe-target", body=b'<!ENTITY xxe "FETCHED-BY-XXE">',
                 headers={"Content-Type": "text/xml"})
    target = server.url("/xxe-target")
    server.route("/laughs.xml", **feed(item("&lol9;", guid="l1"), BILLION_LAUGHS))
    server.route("/xxe-file.xml", **feed(item("&xxe;", guid="x1", description="&xxe;"),
                                         f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'))
    server.route("/xxe-url.xml", **feed(item("&xxe;", guid="u1", description="&xxe;"),
                                        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{target}">]>'))
    whole = rss("".join(item(k, guid=f"t{k}", description="Body " * 20) for k in range(4)))
    server.route("/truncated.xml", body=whole[: whole.index(b"<guid>t2</guid>") + 30])
    server.route("/same-guid.xml", **feed(numbered(5, guid="same")))
    server.route("/no-guids.xml", **feed(numbered(4)))
    server.route("/long-titles.xml", **feed("".join(
        f"<item><title>{'T' * 65536}</title><guid>long{k}</guid></item>" for k in range(3))))
    future = email.utils.format_datetime(datetime.now(UTC) + timedelta(days=365), usegmt=True)
    server.route("/future.xml", **feed(item(1, guid="f1", pubDate=future)))


def settings_for(urls: list[str]) -> Settings:
    """The guard ON, with only 127.0.0.1 allowed; small timeout and body cap."""
    return Settings.model_validate({
        "http": {"allow_private_networks": False, "allowed_networks": ["127.0.0.1/32"],
                 "timeout": TIMEOUT, "connect_timeout": TIMEOUT, "max_body_size": CAP,
                 "per_host_delay": 0, "per_host_concurrency": 16, "respect_robots": False},
        "service": {"concurrency": 64},
        "defaults": {"interval": INTERVAL, "min_interval": 10, "fetch_articles": False},
        "feeds": [{"url": url} for url in urls],
    })


def poll(settings: Settings, store: Store) -> Totals:
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
    return asyncio.run(OneShot(settings, store).poll_once())


def measured(fn: Callable[[], Totals]) -> tuple[Totals, float, int]:
    """(result, seconds, peak bytes of Python allocations in every thread)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = fn()
        return result, time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def polled(http_server: TestServer, store: Store, tmp_path: Path) -> dict[str, Any]:
    """The one poll of every case (after a first poll that gives /conditional.xml its ETag)."""
    script(http_server, tmp_path)
    urls = {name: http_server.url(case.path) for name, case in CASES.items()}
    poll(settings_for([urls["304"]]), store)
    settings = settings_for(list(urls.values()))
    totals, seconds, peak = measured(lambda: poll(settings, store))
    states = {name: store.get_feed(url) for name, url in urls.items()}
    return {"urls": urls, "totals": totals, "seconds": seconds, "peak": peak, "states": states}


def items_of(store: Store, url: str) -> list[dict[str, Any]]:
    return list(store.iter_items(ExportFilter(feed_url=url)))


def seconds_until_next(state: FeedState) -> float:
    assert state.last_polled is not None
    return (state.next_check - state.last_polled).total_seconds()


def test_one_poll_records_every_hostile_feed_in_bounded_time_and_memory(
    polled: dict[str, Any], http_server: TestServer, store: Store
) -> None:
    wrong = [f"{name}: {_got(polled['states'][name])}" for name, case in CASES.items()
             if not _matches(case, polled["states"][name], polled["urls"][name])]
    assert not wrong, "\n".join(wrong)
    totals: Totals = polled["totals"]
    assert (totals.ok, totals.not_modified, totals.failed) == (9, 2, 16)
    # Two feeds hit the 2 s deadline; all run at once, so the poll costs about one deadline,
    # not the sum of them (27 feeds x 2 s).
    assert polled["seconds"] < 3 * TIMEOUT, polled["seconds"]
    assert polled["peak"] < BOMB / 4, f"peak {polled['peak'] / MIB:.1f} MiB"
    healthy = items_of(store, polled["urls"]["healthy"])
    assert sorted(i["guid"] for i in healthy) == ["h0", "h1", "h2"]
    assert http_server.hits("/secret.xml") == 0  # 127.0.0.2 listens, but the guard refused it
    assert http_server.hits("/hop/5.xml") == 1 and http_server.hits("/hop/6.xml") == 0


def _got(state: FeedState | None) -> object:
    if state is None:
        return None
    return (state.last_status, state.last_error, state.next_reason, state.last_http_status,
            state.error_count)


def _matches(case: Case, state: FeedState | None, url: str) -> bool:
    if state is None or state.last_status != case.status:
        return False
    if not re.search(case.reason, state.next_reason):
        return False
    if case.http_status is not None and state.last_http_status != case.http_status:
        return False
    error = state.last_error
    if case.error is None:
        return error is None and state.error_count == 0
    # The error names the feed's URL (a redirect's names the hop, then the feed).
    named = error is not None and (
        error.removesuffix(ALLOW_HINT).endswith((url, f"(redirected from {url})")))
    counted = state.error_count == (0 if case.status == "gone" else 1)
    return named and counted and re.search(case.error, error or "") is not None


def test_odd_documents_are_stored_safely(polled: dict[str, Any], store: Store,
                                         http_server: TestServer) -> None:
    urls = polled["urls"]
    assert [i["guid"] for i in items_of(store, urls["billion laughs"])] == ["l1"]
    for name in ("billion laughs", "XXE to a file", "XXE to a URL"):
        text = repr(items_of(store, urls[name]))
        assert "lollol" not in text and "TOP-SECRET" not in text and "FETCHED" not in text, name
    assert http_server.hits("/xxe-target") == 0
    same = items_of(store, urls["same guid"])
    assert sorted(i["url"] for i in same) == [f"https://example.org/{k}" for k in range(5)]
    assert not polled["states"]["same guid"].link_keys  # issue 10: only the repeats are keyed apart
    none = items_of(store, urls["no guids"])
    assert sorted(i["url"] for i in none) == [f"https://example.org/{k}" for k in range(4)]
    assert [i["guid"] for i in items_of(store, urls["truncated"])] == ["t0", "t1"]  # t2 is cut
    long = items_of(store, urls["64 KB titles"])
    assert len(long) == 3 and all(0 < len(i["title"]) <= 2000 for i in long)
    future = items_of(store, urls["future dates"])
    assert [i["guid"] for i in future] == ["f1"] and future[0]["published"] is None


def test_server_delays_are_honored_clamped_and_gone_is_final(
    polled: dict[str, Any], store: Store
) -> None:
    states = polled["states"]
    jitter = 1.25
    assert 120 <= seconds_until_next(states["429 in seconds"]) <= 120 * jitter
    assert 290 <= seconds_until_next(states["503 as a date"]) <= 300 * jitter
    assert WEEK <= seconds_until_next(states["429 absurd"]) <= WEEK * jitter
    throttled = states["429 in seconds"]
    assert throttled.last_polled is not None
    early = store.claim_due(throttled.last_polled + timedelta(seconds=119), 1000, "w1", 60)
    assert throttled.url not in {f.url for f in early}
    due = store.claim_due(throttled.last_polled + timedelta(seconds=151), 1000, "w2", 60)
    assert throttled.url in {f.url for f in due}
    assert states["410"].gone
    far = store.claim_due(datetime.now(UTC) + timedelta(days=3650), 1000, "w3", 60)
    assert states["410"].url not in {f.url for f in far}
    assert states["429 absurd"].url in {f.url for f in far}  # clamped: parked a week, not forever

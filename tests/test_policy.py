"""The polling policy, table-driven on hand-built observations (jitter off unless said)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from aggregator.schedule.freshness import freshness_lifetime, retry_after
from aggregator.schedule.policy import (
    REDIRECT_REPEATS,
    Decision,
    Observation,
    next_poll,
    should_poll_unconditionally,
)
from storage.records import FeedState
from tests.policyfixtures import NOW, POLICY, URL, failed, ok, state

pytestmark = pytest.mark.timeout(20)
DAY, WEEK = 86400.0, 7 * 86400.0
HTTP_NOW = "Wed, 01 May 2024 12:00:00 GMT"


def decide(obs: Observation, feed: FeedState | None = None, seed: int = 0) -> Decision:
    return next_poll(NOW, feed or state(), obs, POLICY, random.Random(seed))


def delay(decision: Decision) -> float:
    return (decision.next_check - NOW).total_seconds()


@pytest.mark.parametrize(
    ("obs", "feed", "seconds", "reason"),
    [
        (ok(items_per_day=4), None, 21600, "adaptive: ~4 items/day"),
        (ok(items_per_day=1000), None, 300, "adaptive: ~1000 items/day"),  # min_interval
        (ok(items_per_day=0.01), None, DAY, "adaptive: ~0.01 items/day"),  # max_interval
        (ok(items_per_day=None), state(interval=1200), 1200, "configured interval (no history"),
        (ok(items_per_day=0), state(interval=1200), 2400, "adaptive: no new items lately"),
        (ok(items_per_day=0), state(interval=80000), DAY, "adaptive: no new items lately"),
        (ok(items_per_day=48, ttl=7200), None, 7200, "RSS ttl"),
        (
            ok(items_per_day=48, headers={"cache-control": "max-age=3600"}),
            None,
            3600,
            "server asks: Cache-Control max-age",
        ),
        (
            ok(headers={"expires": "Wed, 01 May 2024 14:00:00 GMT", "date": HTTP_NOW}),
            None,
            7200,
            "server asks: Expires",
        ),
        (ok(headers={"cache-control": "max-age=999999999"}), None, WEEK, "Cache-Control max-age"),
        (ok(ttl=1e12), None, WEEK, "RSS ttl"),  # a server cannot park a feed for good
        (ok(items_per_day=4, ttl=60), None, 21600, "adaptive: ~4 items/day"),  # ttl below ours
        (ok(headers={"retry-after": "9000"}), None, 900, "configured interval"),  # only 429/503
        (ok(headers={"cache-control": "no-cache, max-age=9000"}), None, 900, "configured"),
        (failed(500), None, 1800, "backing off after 1 error"),
        (failed(None), state(error_count=2), 7200, "backing off after 3 errors"),
        (failed(500), state(error_count=50), DAY, "backing off after 51 errors"),
        (failed(500), state(error_count=10**6), DAY, "backing off after 1000001 errors"),
        (failed(500, headers={"cache-control": "max-age=50000"}), None, 1800, "backing off"),
        (failed(429, headers={"retry-after": "3600"}), None, 3600, "Retry-After from 429"),
        (failed(429, headers={"retry-after": "60"}), None, 1800, "backing off after 1 error"),
        (
            failed(503, headers={"retry-after": "Wed, 01 May 2024 15:00:00 GMT"}),
            None,
            10800,
            "Retry-After from 503",
        ),
        (failed(429, headers={"retry-after": "99999999999"}), None, WEEK, "Retry-After from 429"),
        (failed(429), None, 1800, "backing off after 1 error"),  # no header: plain backoff
    ],
)
def test_next_poll_table(
    obs: Observation, feed: FeedState | None, seconds: float, reason: str
) -> None:
    decision = decide(obs, feed)
    assert delay(decision) == pytest.approx(seconds)
    assert reason in decision.reason
    assert not decision.gone


def test_adaptive_interval_is_stored_and_backoff_does_not_inflate_it() -> None:
    assert decide(ok(items_per_day=4)).interval == 21600
    backing_off = decide(failed(500), state(interval=1200, error_count=4))
    assert backing_off.interval == 1200 and backing_off.error_count == 5


def test_success_resets_the_error_count() -> None:
    assert decide(ok(), state(error_count=7)).error_count == 0


def test_gone_stops_polling_with_a_reason() -> None:
    decision = decide(failed(410), state(error_count=2))
    assert decision.gone and decision.reason == "gone (410): polling stopped"
    assert decision.error_count == 2
    assert delay(decision) >= DAY


def test_errors_never_disable_a_feed() -> None:
    for errors in (0, 1, 10, 100, 10**9):
        decision = decide(failed(None), state(error_count=errors))
        assert 0 < delay(decision) <= POLICY.max_backoff and not decision.gone


def test_jitter_is_between_zero_and_a_quarter() -> None:
    policy = replace(POLICY, jitter=0.25)
    delays = {
        (
            next_poll(NOW, state(), ok(), policy, random.Random(seed)).next_check - NOW
        ).total_seconds()
        for seed in range(200)
    }
    assert min(delays) >= 900 and max(delays) <= 900 * 1.25
    assert max(delays) - min(delays) > 100  # it actually spreads feeds apart


def test_permanent_redirect_is_trusted_only_after_it_repeats() -> None:
    target = "https://example.org/new-feed.xml"
    feed = state()
    for poll in range(1, REDIRECT_REPEATS + 1):
        decision = decide(ok(permanent_redirect_to=target), feed)
        feed = replace(
            feed, redirect_url=decision.redirect_url, redirect_count=decision.redirect_count
        )
        if poll < REDIRECT_REPEATS:
            assert decision.new_url is None and decision.redirect_count == poll
            assert decision.redirect_url == target
    assert decision.new_url == target and "moved permanently" in decision.reason
    assert decision.redirect_url is None and decision.redirect_count == 0


def test_redirect_streak_breaks_on_another_target_or_none() -> None:
    seen_twice = state(redirect_url="https://a.example/f", redirect_count=2)
    other = decide(ok(permanent_redirect_to="https://b.example/f"), seen_twice)
    assert (other.redirect_url, other.redirect_count, other.new_url) == (
        "https://b.example/f",
        1,
        None,
    )
    gone = decide(ok(), seen_twice)
    assert (gone.redirect_url, gone.redirect_count) == (None, 0)


def test_redirect_streak_survives_an_error_poll() -> None:
    seen_twice = state(redirect_url="https://a.example/f", redirect_count=2)
    decision = decide(failed(None), seen_twice)
    assert (decision.redirect_url, decision.redirect_count, decision.new_url) == (
        "https://a.example/f",
        2,
        None,
    )


def test_redirect_to_the_same_url_is_ignored() -> None:
    decision = decide(ok(permanent_redirect_to=URL), state(redirect_count=2, redirect_url=URL))
    assert decision.new_url is None and decision.redirect_count == 0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("1.5", 1.5),
        ("99999999999999999999999", WEEK),
        ("Wed, 01 May 2024 13:00:00 GMT", 3600.0),
        ("Wednesday, 01-May-24 13:00:00 GMT", 3600.0),  # obsolete RFC 850 form (RFC 9110 §5.6.7)
        ("Wed May  1 13:00:00 2024", 3600.0),  # asctime form, read as GMT
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # already past
        ("Fri, 01 May 2099 13:00:00 GMT", WEEK),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after(value: str, seconds: float | None) -> None:
    assert retry_after({"retry-after": value}, NOW) == seconds


def test_retry_after_absent_and_header_case() -> None:
    assert retry_after({}, NOW) is None
    assert retry_after({"Retry-After": "10"}, NOW) == 10


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"cache-control": "max-age=60"}, 60.0),
        ({"cache-control": 'public, Max-Age="120"'}, 120.0),
        ({"Cache-Control": "max-age=60, must-revalidate"}, 60.0),
        ({"cache-control": "s-maxage=500"}, None),  # shared caches only
        ({"cache-control": "no-cache, max-age=60"}, None),
        ({"cache-control": "no-store"}, None),
        ({"cache-control": "max-age=abc"}, None),
        ({"cache-control": "max-age=-1"}, None),
        ({"cache-control": "max-age=60", "expires": "Wed, 01 May 2024 20:00:00 GMT"}, 60.0),
        ({"expires": "Wed, 01 May 2024 13:00:00 GMT", "date": HTTP_NOW}, 3600.0),
        (
            {"expires": "Wed, 01 May 2024 13:00:00 GMT", "date": "Wed, 01 May 2024 12:30:00 GMT"},
            1800.0,
        ),  # the server's own Date, not our clock
        ({"expires": "Wed, 01 May 2024 13:00:00 GMT"}, 3600.0),  # no Date: our clock
        ({"expires": "0"}, 0.0),  # RFC 9111 §5.3: invalid means already expired
        ({"expires": "Wed, 01 May 2024 11:00:00 GMT", "date": HTTP_NOW}, 0.0),
        ({}, None),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], seconds: float | None) -> None:
    assert freshness_lifetime(headers, NOW) == seconds


@pytest.mark.parametrize(
    ("feed", "expected"),
    [
        (state(), True),  # no validators: every fetch is unconditional anyway
        (state(etag='"v1"'), True),  # never fetched unconditionally
        (state(etag='"v1"', last_unconditional=NOW - timedelta(days=1)), False),
        (state(last_modified=HTTP_NOW, last_unconditional=NOW - timedelta(days=7)), True),
        (state(etag='"v1"', last_unconditional=NOW - timedelta(days=6, hours=23)), False),
    ],
)
def test_should_poll_unconditionally(feed: FeedState, expected: bool) -> None:
    assert should_poll_unconditionally(NOW, feed, POLICY) is expected

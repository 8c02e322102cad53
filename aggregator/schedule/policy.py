"""Decides when a feed is polled next and says why; pure: no I/O, no clock, no globals.

DESIGN.md "Polling policy": adaptive interval from the feed's history, never sooner than the
server asks (RSS ttl, Cache-Control max-age, Expires, Retry-After on 429/503), exponential
backoff on errors that never disables a feed, 410 stops polling, a permanent redirect is
trusted only once it repeats, and jitter so that feeds never synchronize.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aggregator.schedule.freshness import MAX_SERVER_DELAY, freshness_lifetime, retry_after
from storage.records import FeedState

__all__ = [
    "Decision",
    "Observation",
    "PollPolicy",
    "freshness_lifetime",
    "next_poll",
    "retry_after",
    "should_poll_unconditionally",
]

REDIRECT_REPEATS = 3  # polls in a row that must see the same permanent redirect
MIN_DELAY = 1.0  # seconds: next_check is always strictly after now
_MAX_EXPONENT = 40  # 2**40 intervals is past any cap; bounds the float arithmetic


@dataclass(frozen=True, slots=True)
class PollPolicy:
    interval: float  # the configured (preferred) interval, seconds
    min_interval: float
    max_interval: float
    max_backoff: float = 86400.0
    jitter: float = 0.25  # up to this fraction is added to every delay
    unconditional_every: float = 7 * 86400.0  # seconds between fetches without validators


@dataclass(frozen=True, slots=True)
class Observation:
    """What one poll saw."""

    http_status: int | None  # None: transport error, no response
    error: bool
    new_items: int = 0
    items_per_day: float | None = None  # from the store's history; None: no history yet
    ttl: float | None = None  # RSS <ttl>, seconds
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    permanent_redirect_to: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    next_check: datetime
    interval: float  # the adaptive interval to store (backoff does not inflate it)
    reason: str
    error_count: int
    gone: bool
    redirect_url: str | None
    redirect_count: int
    new_url: str | None


def next_poll(
    now: datetime, state: FeedState, obs: Observation, policy: PollPolicy, rng: random.Random
) -> Decision:
    """The next check time, the interval to store and a human reason, for one feed's poll."""
    interval = _clamp(state.interval, policy.min_interval, policy.max_interval)
    if obs.http_status == 410:
        delay = max(policy.max_interval, policy.max_backoff)
        gone = (interval, delay, "gone (410): polling stopped")
        return _decide(now, state, obs, policy, rng, gone, state.error_count)
    if obs.error:
        errors = state.error_count + 1
        delay = min(interval * 2.0 ** min(errors, _MAX_EXPONENT), policy.max_backoff)
        plural = "s" if errors > 1 else ""
        chosen = _server_floor(
            now, obs, policy, (delay, f"backing off after {errors} error{plural}")
        )
        return _decide(now, state, obs, policy, rng, (interval, *chosen), errors)
    interval, reason = _adaptive(state, obs, policy, interval)
    chosen = _server_floor(now, obs, policy, (interval, reason))
    return _decide(now, state, obs, policy, rng, (interval, *chosen))


def should_poll_unconditionally(now: datetime, state: FeedState, policy: PollPolicy) -> bool:
    """Drop the validators now and then: some servers answer 304 on stale ETags forever.

    True when there are no validators (the request is unconditional anyway) or the last
    unconditional fetch is unknown or older than ``policy.unconditional_every``.
    """
    if not state.etag and not state.last_modified:
        return True
    last = state.last_unconditional
    return last is None or (now - last).total_seconds() >= policy.unconditional_every


def _adaptive(
    state: FeedState, obs: Observation, policy: PollPolicy, current: float
) -> tuple[float, str]:
    """Aim at about one new item per poll: 86400 / items_per_day, within the feed's bounds."""
    rate = obs.items_per_day
    if rate is None:
        return current, "configured interval (no history yet)"
    if rate <= 0:
        slower = _clamp(current * 2, policy.min_interval, policy.max_interval)
        return slower, "adaptive: no new items lately"
    target = _clamp(86400.0 / rate, policy.min_interval, policy.max_interval)
    shown = f"{rate:.0f}" if rate >= 1 else f"{rate:.2g}"
    return target, f"adaptive: ~{shown} items/day"


def _server_floor(
    now: datetime, obs: Observation, policy: PollPolicy, ours: tuple[float, str]
) -> tuple[float, str]:
    """Never sooner than the server asks; each ask clamped so no server can park a feed."""
    delay, reason = ours
    ceiling = max(policy.max_interval, MAX_SERVER_DELAY)
    asks: list[tuple[float | None, str]] = []
    if obs.http_status in (429, 503):
        asks.append((retry_after(obs.headers, now), f"Retry-After from {obs.http_status}"))
    if not obs.error:
        asks.append((obs.ttl, "RSS ttl"))
        asks.append(_lifetime_ask(obs.headers, now))
    for seconds, why in asks:
        if seconds is not None and min(seconds, ceiling) > delay:
            delay, reason = min(seconds, ceiling), why
    return delay, reason


def _lifetime_ask(headers: Mapping[str, str], now: datetime) -> tuple[float | None, str]:
    lifetime = freshness_lifetime(headers, now)
    has_max_age = "max-age" in (headers.get("cache-control") or "").lower()
    source = "Cache-Control max-age" if has_max_age else "Expires"
    return lifetime, f"server asks: {source}"


def _decide(
    now: datetime,
    state: FeedState,
    obs: Observation,
    policy: PollPolicy,
    rng: random.Random,
    chosen: tuple[float, float, str],
    errors: int = 0,
) -> Decision:
    interval, delay, reason = chosen
    redirect_url, redirect_count, new_url = _redirect(state, obs)
    if new_url:
        reason = f"{reason}; moved permanently to {new_url}"
    jittered = max(delay, MIN_DELAY) * (1.0 + rng.uniform(0.0, max(policy.jitter, 0.0)))
    return Decision(
        next_check=now + timedelta(seconds=jittered),
        interval=interval,
        reason=reason,
        error_count=errors,
        gone=obs.http_status == 410,
        redirect_url=redirect_url,
        redirect_count=redirect_count,
        new_url=new_url,
    )


def _redirect(state: FeedState, obs: Observation) -> tuple[str | None, int, str | None]:
    """(redirect_url, redirect_count, new_url): a move is trusted on its third poll in a row.

    A failed poll neither advances nor breaks the streak: the new home may be down briefly.
    """
    if obs.error:
        return state.redirect_url, state.redirect_count, None
    target = obs.permanent_redirect_to
    if not target or target == state.url:
        return None, 0, None
    count = state.redirect_count + 1 if target == state.redirect_url else 1
    if count >= REDIRECT_REPEATS:
        return None, 0, target
    return target, count, None


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), max(low, high))

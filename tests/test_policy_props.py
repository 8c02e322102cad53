"""Invariants of next_poll over arbitrary states, observations and policies (Hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.schedule.freshness import MAX_SERVER_DELAY
from aggregator.schedule.policy import Observation, PollPolicy, next_poll
from storage.records import FeedState
from tests.policyfixtures import NOW, failed, state

pytestmark = pytest.mark.timeout(60)

seconds = st.floats(min_value=0, max_value=10 * 86400, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> PollPolicy:
    low = draw(st.floats(min_value=0, max_value=3600))
    high = draw(st.floats(min_value=low, max_value=30 * 86400))
    return PollPolicy(
        interval=draw(st.floats(min_value=low, max_value=high)),
        min_interval=low,
        max_interval=high,
        max_backoff=draw(st.floats(min_value=60, max_value=7 * 86400)),
        jitter=draw(st.floats(min_value=0, max_value=0.5)),
    )


header_values = st.one_of(
    st.integers(-(10**6), 10**12).map(str),
    st.sampled_from(["Wed, 01 May 2024 15:00:00 GMT", "0", "no-store", "max-age=60", "junk"]),
    st.text(max_size=30),
)
headers = st.dictionaries(
    st.sampled_from(["retry-after", "cache-control", "expires", "date"]), header_values
)
observations = st.builds(
    Observation,
    http_status=st.one_of(st.none(), st.sampled_from([200, 304, 404, 410, 429, 500, 503])),
    error=st.booleans(),
    new_items=st.integers(0, 10**6),
    items_per_day=st.one_of(st.none(), st.floats(min_value=0, max_value=10**7)),
    ttl=st.one_of(st.none(), st.floats(min_value=0, max_value=10**12)),
    headers=headers,
    permanent_redirect_to=st.one_of(st.none(), st.sampled_from(["https://a.example/f"])),
)
states = st.builds(
    state,
    interval=st.floats(min_value=0, max_value=10**9),
    error_count=st.integers(0, 10**6),
    redirect_url=st.one_of(st.none(), st.just("https://a.example/f")),
    redirect_count=st.integers(0, 5),
)


@given(states, observations, policies(), st.integers())
def test_next_check_is_after_now_and_bounded(
    feed: FeedState, obs: Observation, policy: PollPolicy, seed: int
) -> None:
    decision = next_poll(NOW, feed, obs, policy, random.Random(seed))
    assert decision.next_check > NOW
    ceiling = max(policy.max_interval, policy.max_backoff, MAX_SERVER_DELAY, 1.0)
    assert decision.next_check <= NOW + timedelta(seconds=ceiling * (1 + policy.jitter) + 1)
    assert decision.reason.strip()
    assert policy.min_interval <= decision.interval <= max(policy.min_interval, policy.max_interval)
    assert decision.gone == (obs.http_status == 410)


@given(states, policies(), st.integers(0, 200))
def test_backoff_is_monotonic_and_capped(feed: FeedState, policy: PollPolicy, errors: int) -> None:
    steady = replace(policy, jitter=0.0)

    def wait(count: int) -> float:
        decision = next_poll(
            NOW, replace(feed, error_count=count), failed(None), steady, random.Random(0)
        )
        return (decision.next_check - NOW).total_seconds()

    assert wait(errors) <= wait(errors + 1)
    assert wait(errors) <= max(policy.max_backoff, 1.0) + 1e-6


@given(states, policies(), st.integers(0, 10**7), st.sampled_from([429, 503]), st.integers())
def test_retry_after_is_respected(
    feed: FeedState, policy: PollPolicy, asked: int, status: int, seed: int
) -> None:
    obs = failed(status, headers={"retry-after": str(asked)})
    decision = next_poll(NOW, feed, obs, policy, random.Random(seed))
    # retry_after() itself clamps absurd values to a week
    assert decision.next_check >= NOW + timedelta(seconds=min(asked, MAX_SERVER_DELAY))


@given(states, observations, policies(), st.integers())
def test_the_decision_is_a_pure_function_of_its_inputs(
    feed: FeedState, obs: Observation, policy: PollPolicy, seed: int
) -> None:
    first = next_poll(NOW, feed, obs, policy, random.Random(seed))
    assert first == next_poll(NOW, feed, obs, policy, random.Random(seed))

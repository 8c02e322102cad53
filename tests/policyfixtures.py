"""Builders for the polling-policy tests: a feed state, an observation, a policy, a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aggregator.schedule.policy import Observation, PollPolicy
from storage.records import FeedState

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
URL = "https://example.org/feed.xml"
POLICY = PollPolicy(interval=900, min_interval=300, max_interval=86400, jitter=0.0)


def state(**changes: Any) -> FeedState:
    base = FeedState(
        id=1, url=URL, title=None, tags=(), interval=900.0, next_check=NOW, next_reason="new"
    )
    return replace(base, **changes)


def ok(**changes: Any) -> Observation:
    return replace(Observation(http_status=200, error=False), **changes)


def failed(status: int | None = 500, **changes: Any) -> Observation:
    return replace(Observation(http_status=status, error=True), **changes)

"""The operator's line per poll: the same words at each level, and none when the level drops it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.runtime.logs import log_poll
from storage.records import STATUS_ERROR, STATUS_NOT_MODIFIED, PollResult, PollSummary

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def result(status: str, error: str | None = None) -> PollResult:
    return PollResult(feed_id=1, lease_owner="me", polled_at=NOW, status=status,
                      next_check=NOW + timedelta(minutes=15, seconds=3), next_reason="interval",
                      interval=900.0, error_count=0, http_status=304 if not error else 500,
                      error=error)  # fmt: skip


def test_a_304_is_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "aggregator.polls"):
        log_poll("https://a.example/f", result(STATUS_NOT_MODIFIED), PollSummary(), NOW)
    assert caplog.messages == [
        "poll https://a.example/f: nothing new (HTTP 304); next poll in 15m 3s (10:15:03Z)"
    ]


def test_a_dropped_level_logs_nothing_and_a_failure_still_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "aggregator.polls"):
        log_poll("https://a.example/f", result(STATUS_NOT_MODIFIED), PollSummary(), NOW)
        failed = result(STATUS_ERROR, "fetch: HTTP 500 for https://a.example/f")
        log_poll("https://a.example/f", failed, PollSummary(), NOW)
    assert caplog.messages == [
        "poll https://a.example/f failed: fetch: HTTP 500 for https://a.example/f; "
        "next poll in 15m 3s (10:15:03Z): interval"
    ]

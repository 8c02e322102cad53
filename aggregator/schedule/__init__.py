"""Scheduling policy: when a feed is polled next and why, and HTTP freshness; pure."""

from aggregator.schedule.policy import (
    Decision,
    Observation,
    PollPolicy,
    next_poll,
    should_poll_unconditionally,
)

__all__ = ["Decision", "Observation", "PollPolicy", "next_poll", "should_poll_unconditionally"]

"""The network tests run on both event loops the service runs on (``service.event_loop``).

``asyncio.run`` in a test makes its loop through the policy, so the uvloop half swaps the policy
for the test's length; the product itself passes a factory (``aggregator/runtime/eventloop.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

__all__ = ["event_loops"]


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loops(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test once on asyncio's own loop, once on uvloop's (skipped where it is missing)."""
    if request.param == "asyncio":
        yield "asyncio"
        return
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (Windows, PyPy)")
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield "uvloop"
    finally:
        asyncio.set_event_loop_policy(before)

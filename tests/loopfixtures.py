"""The network tests run on both event loops the service runs on (``service.event_loop``).

``asyncio.run`` in a test makes its loop through the policy, so the uvloop half swaps the policy
for the test's length; the product itself passes a factory (``aggregator/runtime/eventloop.py``).
"""

from __future__ import annotations

import asyncio
import platform
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

__all__ = ["event_loops", "uvloop_or_skip"]


def uvloop_or_skip() -> ModuleType:
    """uvloop; a skip only where it is no dependency (Windows, PyPy): elsewhere its absence is a
    broken install, which must fail the run rather than quietly test one loop."""
    if sys.platform == "win32" or platform.python_implementation() != "CPython":
        return pytest.importorskip("uvloop", reason="uvloop does not build here")
    import uvloop

    return uvloop


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loops(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test once on asyncio's own loop, once on uvloop's."""
    if request.param == "asyncio":
        yield "asyncio"
        return
    uvloop = uvloop_or_skip()
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield "uvloop"
    finally:
        asyncio.set_event_loop_policy(before)

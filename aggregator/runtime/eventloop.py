"""The event loop every command runs on: uvloop where it is installed, else asyncio's own.

Why uvloop: once start-up is paid, a poll of unchanged feeds is mostly event-loop work (for each
feed a connection, a request, a 304, the callbacks and timers around them), and uvloop does that
work in C. On 1,000 unchanged feeds on 1,000 hosts it takes 12–15 % off the wall and CPU time
of a whole ``poll --once`` (``benchmarks/README.md``, "Sixth round"). The code above the loop is
plain asyncio (transports, protocols, ``asyncio.timeout``), and the network tests run on both
loops (``tests/loopfixtures.py``).

``service.event_loop`` chooses: ``auto`` (uvloop if importable; it is a dependency wherever it
builds: not on Windows or PyPy), ``uvloop`` (an error when it is missing) or ``asyncio``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aggregator.config.settings import UVLOOP_MISSING, EventLoopChoice
from aggregator.errors import ConfigError

T = TypeVar("T")


def loop_factory(choice: EventLoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the loop for ``choice``; ``uvloop`` without uvloop is a configuration error
    (the settings refuse it first: ``ServiceSettings.event_loop``)."""
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(f"service.event_loop: {UVLOOP_MISSING}") from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """``asyncio.run`` on the chosen loop (Python 3.11's ``asyncio.run`` takes no factory)."""
    try:
        factory = loop_factory(choice)
    except ConfigError:
        main.close()  # never awaited: say nothing of it
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)

"""The running archiver: the poll and article pipeline, group commit, the daemon, the one-shot poll.

It writes through the store it is handed (``storage.seam.StorageType``). ``Daemon`` (``run``) and
``OneShot`` (``poll --once``) load on first use, so importing the package (the CLI does, for its
logging set-up) costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator.runtime.logs import configure_logging

if TYPE_CHECKING:
    from aggregator.runtime.daemon import Daemon
    from aggregator.runtime.oneshot import OneShot

__all__ = ["Daemon", "OneShot", "configure_logging"]


def __getattr__(name: str) -> Any:
    """The runners bring the scheduler, the HTTP client and the pipeline: loaded when asked for."""
    if name == "Daemon":
        from aggregator.runtime.daemon import Daemon

        return Daemon
    if name == "OneShot":
        from aggregator.runtime.oneshot import OneShot

        return OneShot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The running archiver: the poll and article pipeline, group commit, the service and its helpers.

The only package (beside the CLI) that writes through ``storage.store``. ``Service`` loads on first
use, so importing the package (the CLI does, for its logging set-up) costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator.runtime.logs import configure_logging

if TYPE_CHECKING:
    from aggregator.runtime.service import Service

__all__ = ["Service", "configure_logging"]


def __getattr__(name: str) -> Any:
    """``Service`` brings the scheduler, the HTTP client and the pipeline: loaded when asked for."""
    if name == "Service":
        from aggregator.runtime.service import Service

        return Service
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

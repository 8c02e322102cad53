"""The site rules, compiled when the first article page needs them, not when a process starts.

Importing the rule engine (soupsieve) and compiling the shipped presets costs 0.2–0.3 s of CPU
per process: more than a whole unchanged poll of a thousand feeds. A poll that brings no new
item, or runs with article fetching off, never fetches a page and so never pays it (issue 14).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.extract.rules import SiteRules


class LazyRules:
    """``SiteRules.load(sites)`` on the first ``get``, once, whichever thread asks first."""

    def __init__(self, sites: Sequence[dict[str, Any]]) -> None:
        self._sites = tuple(sites)
        self._rules: SiteRules | None = None
        self._lock = threading.Lock()

    def get(self) -> SiteRules:
        with self._lock:
            if self._rules is None:
                from aggregator.extract.rules import SiteRules

                self._rules = SiteRules.load(self._sites)
            return self._rules

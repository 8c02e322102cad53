"""Test-only launcher of the service for crash tests: fast restarts and SIGKILL at a chosen point.

``python -m tests.crashrunner --config FILE run`` imports the service, then waits for one line on
standard input before it calls ``aggregator.cli.commands.main()`` with those arguments, exactly as
``python -m aggregator`` does. The import is paid before the test's clock starts, so a crash test
can restart the service dozens of times in its time budget (standard input closed without a
line: it exits without running anything).

``AGGREGATOR_CRASH_AT=POINT:N`` (read once, at start) makes the process SIGKILL itself inside the
store's write path, seen through SQLAlchemy's engine and pool events (so storage needs no hook):

- ``insert-item``: right after the N-th ``INSERT INTO items`` (mid-transaction: none of it may
  survive);
- ``before-commit``: when the N-th transaction that inserted items is about to COMMIT;
- ``after-commit``: when the N-th such transaction has committed, before ``apply_poll`` returns;
- ``after-claim``: when the N-th claim of due feeds has committed (leases held by a dead process);
- ``after-article-claim``: likewise for the N-th claim of article pages;
- ``after-poll-commit``: when the N-th transaction that wrote poll outcomes has committed (on
  both databases: PostgreSQL inserts items with COPY, which the ``*-item``/``*-commit`` points
  do not see).

It writes ``crashrunner: SIGKILL at POINT #N`` to standard error first, so a test can tally them.
Nothing here is used outside the tests.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

# Imported ahead: the restart then costs no imports.
import aggregator.runtime.daemon
import aggregator.runtime.oneshot  # noqa: F401
from aggregator.cli.commands import main

POINTS = ("insert-item", "before-commit", "after-commit", "after-claim", "after-article-claim",
          "after-poll-commit")
ENV = "AGGREGATOR_CRASH_AT"


class CrashAt:
    """Counts the write path's events and kills the process at the chosen one."""

    def __init__(self, point: str, nth: int) -> None:
        if point not in POINTS or nth < 1:
            raise SystemExit(f"crashrunner: bad {ENV}={point}:{nth} (points: {', '.join(POINTS)})")
        self.point = point
        self.nth = nth
        self.seen: Counter[str] = Counter()

    def hit(self, point: str) -> None:
        self.seen[point] += 1
        if point == self.point and self.seen[point] == self.nth:
            sys.stderr.write(f"crashrunner: SIGKILL at {point} #{self.nth}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        event.listen(Engine, "after_cursor_execute", self._executed)
        event.listen(Engine, "commit", self._commit)
        event.listen(Engine, "rollback", self._rollback)
        event.listen(Pool, "checkin", self._checkin)

    def _executed(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO items "):
            conn.info["wrote"] = "items"
            self.hit("insert-item")
        elif statement.startswith("UPDATE feeds SET lease_owner") and "feeds.id IN" in statement:
            conn.info["wrote"] = "claim"  # a claim; a release or a sweep has another WHERE
        if statement.startswith(("INSERT INTO polls ", "UPDATE feeds SET last_polled")):
            conn.info["polls"] = True  # a poll's history row or its feed's new state (one
            # statement for a batch: PostgreSQL copies the history rows, unseen here)
        elif statement.startswith("INSERT INTO article_leases "):
            conn.info["wrote"] = "article-claim"

    def _commit(self, conn: Any) -> None:
        wrote = conn.info.pop("wrote", None)
        if wrote == "items":
            self.hit("before-commit")
        if wrote is not None:
            conn.info["committed"] = wrote
        if conn.info.pop("polls", False):
            conn.info["committed-polls"] = True

    def _rollback(self, conn: Any) -> None:
        conn.info.pop("wrote", None)
        conn.info.pop("polls", None)

    def _checkin(self, _dbapi_conn: Any, record: Any) -> None:
        committed = record.info.pop("committed", None)
        if record.info.pop("committed-polls", False):
            self.hit("after-poll-commit")
        if committed == "items":
            self.hit("after-commit")
        elif committed == "claim":
            self.hit("after-claim")
        elif committed == "article-claim":
            self.hit("after-article-claim")


def configure(spec: str | None) -> CrashAt | None:
    if not spec:
        return None
    point, _, nth = spec.rpartition(":")
    crash = CrashAt(point, int(nth) if nth.isdigit() else 0)
    crash.install()
    return crash


if __name__ == "__main__":
    configure(os.environ.get(ENV))
    if sys.stdin.readline():
        sys.argv[0] = "aggregator"
        main()

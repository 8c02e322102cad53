"""Logging set-up, the same in the main process and in helper processes (``service.processes``),
and the one line per poll an operator reads (issue 13).

Levels: ``run`` logs at INFO (what an operator wants: polls that brought items or failed, back-off
decisions, start and stop); ``-v`` is VERBOSE, which adds the libraries' chatter (APScheduler's
jobs, Alembic's migrations); ``-vv`` is DEBUG. A helper process gets the root level as a number
and derives the same from it.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from storage.redact import redact_text

if TYPE_CHECKING:
    from storage.records import PollResult, PollSummary

# Libraries that narrate every page they read: their news reaches us as values or errors.
NOISY = ("httpx", "trafilatura", "htmldate", "charset_normalizer")
# Libraries whose INFO lines are about themselves (jobs added, migrations run): -v and up.
CHATTY = ("apscheduler", "alembic")
VERBOSE = logging.INFO - 5  # -v: INFO from everyone, libraries included
# The operator's lines: one per poll that brought items or failed (``poll_line``).
polls = logging.getLogger("aggregator.polls")


def configure_logging(level: int, tag: str | None = None) -> None:
    """Log to stderr at ``level``; ``tag`` names a helper process in each line. The libraries
    above speak only at debug level (``-vv``), the chatty ones from ``-v``."""
    prefix = f"[{tag}] " if tag else ""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    debug = level <= logging.DEBUG
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING if debug else logging.CRITICAL)
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(logging.NOTSET if level < logging.INFO
                                           else logging.WARNING)  # fmt: skip
    # APScheduler logs every tick at INFO; its warnings and errors (a job that raised) stay.
    logging.getLogger("apscheduler.executors").setLevel(
        logging.DEBUG if debug else logging.WARNING)


def log_poll(url: str, result: PollResult, summary: PollSummary, now: datetime) -> None:
    """The operator's line for one poll: INFO when it brought items, WARNING when it failed
    (with the back-off and the next time), DEBUG otherwise (nothing new, 304). Nothing is
    formatted for a line the level drops (most 304s)."""
    level = (logging.WARNING if result.error else
             logging.INFO if summary.new_items or summary.revisions else logging.DEBUG)  # fmt: skip
    if not polls.isEnabledFor(level):
        return
    at = result.next_check.strftime("%H:%M:%S" if result.next_check.date() == now.date()
                                    else "%Y-%m-%d %H:%M:%S")  # fmt: skip
    when = f"next poll {until(result.next_check, now)} ({at}Z)"
    status = f"HTTP {result.http_status}" if result.http_status else "no response"
    if result.error:
        then = "polling stopped" if result.gone else when
        polls.warning("poll %s failed: %s; %s: %s", url, result.error, then, result.next_reason)
    elif summary.new_items or summary.revisions:
        polls.info("poll %s: %d new, %d changed (%s); %s", url, summary.new_items,
                   summary.revisions, status, when)
    else:
        polls.debug("poll %s: nothing new (%s); %s", url, status, when)


def until(when: datetime, now: datetime) -> str:
    """``in 5m``, ``in 1h 13m``, ``now``: how far ahead a time is (two units at most)."""
    left = int((when - now).total_seconds())
    if left <= 0:
        return "now"
    parts: list[str] = []
    for name, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or parts:
            parts.append(f"{left // size}{name}")
            left %= size
    return "in " + " ".join(p for p in parts[:2] if not p.startswith("0"))


class RedactingFilter(logging.Filter):
    """Every URL in a log line loses its password and secret query values (issue 11), whoever
    logged it (our code, a library, a traceback's message): one filter on the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging reports them when it formats the record
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:  # formatted once, here, then reused
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True

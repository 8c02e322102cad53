"""Logging set-up, the same in the main process and in helper processes (``service.processes``)."""

from __future__ import annotations

import logging
import sys

from storage.redact import redact_text

# Libraries that narrate every page they read: their news reaches us as values or errors.
NOISY = ("httpx", "trafilatura", "htmldate", "charset_normalizer")


def configure_logging(level: int, tag: str | None = None) -> None:
    """Log to stderr at ``level``; ``tag`` names a helper process in each line. The libraries
    above speak only at debug level (``-vv``)."""
    prefix = f"[{tag}] " if tag else ""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    debug = level <= logging.DEBUG
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING if debug else logging.CRITICAL)
    # APScheduler logs every tick at INFO; its warnings and errors (a job that raised) stay.
    logging.getLogger("apscheduler.executors").setLevel(
        logging.DEBUG if debug else logging.WARNING)


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

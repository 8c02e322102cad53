"""What a fetch returns, and the pure rules around a request; no I/O, no httpx.

Kept apart from :mod:`aggregator.fetch.http` so that policy code and tests can build and read
responses without a client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "PERMANENT_REDIRECTS",
    "REDIRECT_STATUSES",
    "HttpSettingsLike",
    "Response",
    "request_headers",
    "size_text",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")  # per request: a regex, not a loop per character


class HttpSettingsLike(Protocol):
    """The fields of ``aggregator.config.settings.HttpSettings`` this client reads."""

    @property
    def user_agent(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def max_body_bytes(self) -> int: ...
    @property
    def allow_private_networks(self) -> bool: ...
    @property
    def allowed_networks(self) -> tuple[str, ...] | list[str]: ...
    @property
    def proxy(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Response:
    """One fetch: the last hop's status, headers and decoded, capped body, plus the way there."""

    url: str
    final_url: str
    status: int
    headers: tuple[tuple[str, str], ...]  # lower-case names, repeats kept, in order
    body: bytes
    elapsed: float
    redirects: tuple[str, ...] = ()  # each hop's target, in order; the last one is final_url
    redirect_statuses: tuple[int, ...] = ()  # the status that led to each of ``redirects``

    def header(self, name: str) -> str | None:
        """A header's value; repeats are joined with ", " as RFC 9110 §5.3 allows."""
        key = name.lower()
        values = [v for k, v in self.headers if k == key]
        return ", ".join(values) if values else None

    @property
    def permanent_redirect(self) -> str | None:
        """Where the feed moved, if every hop was permanent (301/308); else None."""
        if self.redirects and all(s in PERMANENT_REDIRECTS for s in self.redirect_statuses):
            return self.final_url
        return None


def request_headers(
    etag: str | None, last_modified: str | None, accept: str | None
) -> dict[str, str]:
    """Validators come from earlier responses (hostile input): unsendable ones are dropped."""
    wanted = {"If-None-Match": etag, "If-Modified-Since": last_modified, "Accept": accept}
    stripped = {k: v.strip(" \t") for k, v in wanted.items() if v}
    return {k: v for k, v in stripped.items() if v and _sendable(v)}


def _sendable(value: str) -> bool:
    """RFC 9110 §5.5: visible ASCII, spaces and tabs; h11 would raise on anything else."""
    return _FIELD_VALUE.fullmatch(value) is not None


def size_text(n: int) -> str:
    """Caps as people write them in the config ("15 MiB"), for error messages."""
    if n >= 2**20 and n % 2**20 == 0:
        return f"{n // 2**20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"

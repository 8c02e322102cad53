"""Identity keys for deduplication: canonical URLs, content fingerprints, hashes. Pure, no I/O.

A canonical URL is a *key*, never fetched, so it may normalize more than a crawler could:
- scheme and host lower-case, IDNA host (2008, as httpx sends it), trailing dot dropped, default
  port dropped, no userinfo;
- ``http`` and ``https`` fold together (feeds still list ``http://`` links to pages whose
  ``rel=canonical`` says ``https://``);
- no fragment; tracking parameters dropped (``utm_*``, ``fbclid``, ``gclid``, ``mc_*`` ...);
- the query is sorted by parameter name (stable, so repeated names keep their order): parameter
  order never selects a different story, and sorting lets ``?a=1&b=2`` meet ``?b=2&a=1``;
- percent-escapes upper-cased, escapes of unreserved characters decoded (``%7E`` is ``~``,
  RFC 3986 §6.2.2.2), unsafe characters escaped, empty path becomes ``/``.
``www.`` is kept (some sites serve different things there) and so is a trailing slash.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import string
from urllib.parse import quote, urlsplit, urlunsplit

import idna  # httpx's own dependency: the IDNA 2008 encoder the fetcher uses

TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "piwik_", "hsa_", "matomo_", "_hs", "oly_", "vero_")
TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
        "twclid", "ttclid", "li_fat_id", "mkt_tok", "_ga", "_gl", "_openstat", "ref_src",
        "ref_url", "spm", "cmpid", "ncid", "sr_share", "at_medium", "at_campaign", "rss", "rss_id",
    }
)  # fmt: skip
DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986 §2.3
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = "/?%:@!$&'()*+,;=-._~"
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
MIN_FINGERPRINT_BODY = 80  # shorter bodies ("Read more") would fold unrelated stories


# The identity functions are pure and each entry's keys are computed twice: once by
# ``Store.prepare_polls`` ahead of the write transaction, then inside it (see that method). The
# caches are bounded: a write batch is at most a few thousand entries.
@functools.lru_cache(maxsize=8192)
def normalize_url(url: str | None, *, drop_tracking: bool = True) -> str | None:
    """The canonical form of an http(s) URL, or None when it is not one (``tag:``, garbage).

    ``drop_tracking=False`` keeps every query parameter: the configuration's duplicate-feed check
    uses it, since on a feed's own URL a name such as ``rss`` may select the feed.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = _host(parts.hostname or "")
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not host:
        return None
    if port is not None and port not in DEFAULT_PORTS.values():
        host = f"{host}:{port}"
    path = _escape(parts.path or "/", _SAFE_PATH)
    return urlunsplit(("https", host, path, _query(parts.query, drop_tracking), ""))


def _host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal: urlsplit removed the brackets
        return f"[{host}]"
    if host.isascii():
        return host
    try:  # IDNA 2008 with UTS 46, as httpx sends it (straße.de is xn--strae-oqa.de, not strasse)
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:  # what IDNA 2008 refuses (symbols such as ☃), IDNA 2003 may still map
        return host.encode("idna").decode("ascii")


def _escape(value: str, safe: str) -> str:
    return quote(_ESCAPE.sub(_unescape_unreserved, value), safe=safe)


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _query(query: str, drop_tracking: bool = True) -> str:
    kept = [_escape(p, _SAFE_QUERY) for p in query.split("&")]
    kept = [p for p in kept if p and not (drop_tracking and _is_tracking(p.split("=", 1)[0]))]
    kept.sort(key=lambda p: p.split("=", 1)[0])  # escaped first, so a second pass sorts alike
    return "&".join(kept)


def _is_tracking(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_NAMES or name.startswith(TRACKING_PREFIXES)


def plain_text(value: str | None) -> str:
    """Markup dropped, entities decoded, whitespace collapsed, case folded: for comparisons."""
    if not value:
        return ""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", value))).strip().casefold()


@functools.lru_cache(maxsize=4096)
def content_fingerprint(title: str | None, body: str | None) -> str | None:
    """A hash that exact copies of a story share (same title and body across outlets), or None.

    None when the body is too short to tell two stories apart.
    """
    text = plain_text(body)
    if len(text) < MIN_FINGERPRINT_BODY:
        return None
    return sha256_text(plain_text(title) + "\n" + text)


@functools.lru_cache(maxsize=4096)
def content_hash(title: str | None, summary: str | None, text: str | None) -> str:
    """What a revision tracks: the title, the summary and the article text."""
    return sha256_text(json.dumps([title, summary, text], ensure_ascii=False))


def item_uid(feed_url: str, key: str) -> str:
    """A stable id for an item, from the first feed and entry key that brought it."""
    return sha256_text(f"{feed_url}\n{key}")[:32]


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def sha256_bytes(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()

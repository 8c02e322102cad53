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

Which entries of one feed document are the same entry is decided here too, once, by
:func:`document_keys`: the parser keys entries with it and the store re-keys with it.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import idna  # httpx's own dependency: the IDNA 2008 encoder the fetcher uses

from storage.records import Enclosure, Entry

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
# The usual link: an ASCII host, a path of characters escaping leaves alone, no "%": urlsplit,
# IDNA and quoting would change nothing but the case of scheme and host (``_simple_parts``).
_SIMPLE_URL = re.compile(
    r"([Hh][Tt][Tt][Pp][Ss]?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?"
    r"(/[A-Za-z0-9/._~!$&'()*+,;=:@-]*)?(?:\?([^#\t\r\n]*))?(?:#[^\t\r\n]*)?"
)
_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False), built once
_json_str = json.encoder.encode_basestring  # a str as json.dumps(ensure_ascii=False) writes it
MIN_FINGERPRINT_BODY = 80  # shorter bodies ("Read more") would fold unrelated stories


# A canonical URL is an indexed key: PostgreSQL refuses an index entry over about 2,700 bytes,
# and a 700-character Cyrillic link escapes to 6,000. Longer keys become a digest of themselves
# (still URL-shaped, and their own normal form).
MAX_KEY_URL = 2_000


# The identity functions are pure and each entry's keys are computed twice: once by
# ``Store.prepare_polls`` ahead of the write transaction, then inside it (see that method). The
# caches hold one write batch (64 polls of up to 32 entries): whatever they hold outlives its
# write, the entries' texts included. At 8,192 and 4,096 entries they held ~7 MB of a first
# pass's peak RSS, and only carried keys from prepare_polls to apply_polls (issue 14).
BATCH_ENTRIES = 2048


@functools.lru_cache(maxsize=BATCH_ENTRIES)
def normalize_url(url: str | None, *, drop_tracking: bool = True) -> str | None:
    """The canonical form of an http(s) URL, or None when it is not one (``tag:``, garbage).

    ``drop_tracking=False`` keeps every query parameter: the configuration's duplicate-feed check
    uses it, since on a feed's own URL a name such as ``rss`` may select the feed.
    """
    if not url:
        return None
    url = url.strip()
    try:
        parts = _simple_parts(url) or _parts(url)
    except (ValueError, UnicodeError):
        return None
    scheme, host, port, path, query = parts
    if scheme.lower() not in DEFAULT_PORTS or not host:
        return None
    if port is not None and port not in DEFAULT_PORTS.values():
        host = f"{host}:{port}"
    query = _query(query, drop_tracking) if query else ""
    key = f"https://{host}{path}?{query}" if query else f"https://{host}{path}"
    if len(key) > MAX_KEY_URL:  # escaped non-ASCII triples in size: past an index's limit
        return f"https://{host}/~long-url-{sha256_text(key)[:40]}"
    return key


_Parts = tuple[str, str, int | None, str, str]  # scheme, host, port, escaped path, raw query


def _parts(url: str) -> _Parts:
    """The general case: urlsplit, IDNA, escaping. Raises ValueError or UnicodeError."""
    parts = urlsplit(url)
    port = parts.port
    host = _host(parts.hostname or "")
    return parts.scheme, host, port, _escape(parts.path or "/", _SAFE_PATH), parts.query


def _simple_parts(url: str) -> _Parts | None:
    """``_parts`` of a URL of the usual shape, without urlsplit; None for any other URL."""
    found = _SIMPLE_URL.fullmatch(url)
    if found is None:
        return None
    scheme, hostname, port, path, query = found.groups()
    number = None if port is None else int(port)
    if number is not None and number > 65535:
        return None  # the general case says why
    return scheme.lower(), hostname.lower().rstrip("."), number, path or "/", query or ""


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
    if "<" in value:
        value = _TAG.sub(" ", value)
    # split() and join: what re.sub(r"\s+", " ", ...).strip() gives (the same whitespace)
    return " ".join(html.unescape(value).split()).casefold()


@functools.lru_cache(maxsize=BATCH_ENTRIES)
def content_fingerprint(title: str | None, body: str | None) -> str | None:
    """A hash that exact copies of a story share (same title and body across outlets), or None.

    None when the body is too short to tell two stories apart.
    """
    text = plain_text(body)
    if len(text) < MIN_FINGERPRINT_BODY:
        return None
    return sha256_text(plain_text(title) + "\n" + text)


@functools.lru_cache(maxsize=BATCH_ENTRIES)
def content_hash(
    title: str | None,
    summary: str | None,
    text: str | None,
    enclosures: tuple[Enclosure, ...] = (),
) -> str:
    """What a revision tracks: the title, the summary, the article text and the enclosures.

    Without enclosures the hash is what it was before they were archived, so that items stored
    then do not all gain a revision at their next poll.
    """
    # json.dumps([title, summary, text, ...], ensure_ascii=False), written out: a quarter of
    # the time of the encoder's general walk
    out = (f"[{'null' if title is None else _json_str(title)}, "
           f"{'null' if summary is None else _json_str(summary)}, "
           f"{'null' if text is None else _json_str(text)}")  # fmt: skip
    if enclosures:
        out += ", " + _JSON.encode([[e.url, e.type, e.length, e.duration] for e in enclosures])
    return sha256_text(out + "]")


def enclosures_from(data: Any) -> tuple[Enclosure, ...]:
    """Back from ``enclosures_json``'s shape (a stored or imported value)."""
    if not isinstance(data, list):
        return ()
    return tuple(Enclosure(d["url"], d.get("type"), d.get("length"), d.get("duration"))
                 for d in data
                 if isinstance(d, dict) and isinstance(d.get("url"), str))  # fmt: skip


def item_uid(feed_url: str, key: str) -> str:
    """A stable id for an item, from the first feed and entry key that brought it."""
    return sha256_text(f"{feed_url}\n{key}")[:32]


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def sha256_bytes(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


# -- which entries of one document are the same entry ------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentKeys:
    """:func:`document_keys`' answer: one key per entry, in the order given, and the links that
    entries with different keys share (such a link names a site or a show, not an entry)."""

    keys: tuple[str, ...]
    shared_links: frozenset[str]

    def owns_link(self, entry: Entry) -> bool:
        """Whether the entry's link identifies it (a page of its own), so may match or fold it."""
        return bool(entry.url) and entry.url not in self.shared_links


def document_keys(entries: Sequence[Entry], trust_guids: bool = True) -> DocumentKeys:
    """Which entries of one feed document are the same entry: those with equal keys.

    The one rule (DESIGN.md decision 7, issue 10), used by the parser and by the store:

    1. An entry's *base key* is its guid/id, else its link, else its first enclosure's URL,
       else a hash of its title, date and summary; prefixed by kind (``guid:``, ``link:``,
       ``enclosure:``, ``hash:``) so that one kind can never pose as another. With
       ``trust_guids`` off (the store found the feed's guids changing from poll to poll) guids
       are ignored and links are normalized.
    2. Entries sharing a base key that a reader can tell apart (another link, enclosure, title
       or text) are different entries. Each gets the base key plus a short hash of the coarsest
       of (link), (link, enclosures), (… , title), (… , text) that tells all of them apart,
       except the one whose first appearance comes last: it keeps the bare base key (feeds list
       newest first, so that entry most likely held the guid before it was repeated, and its
       stored key stays valid).
    3. Entries alike in all of those are one entry listed twice: they share one key.
    4. A link that entries with different keys carry is *shared*: it says nothing about which
       entry is which, so the store neither matches nor folds entries by it.

    So a repeated guid or a shared link affects only the entries that repeat it. Pure and
    deterministic: the same document always gets the same keys.
    """
    groups: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        groups.setdefault(_base_key(entry, trust_guids), []).append(index)
    if len(groups) == len(entries):  # the usual document: every base key once
        keys = list(groups)
        return DocumentKeys(tuple(keys), _shared_links(entries, keys))
    keys = [""] * len(entries)
    used = set(groups)
    for base, members in groups.items():
        if len(members) == 1:
            keys[members[0]] = base
            continue
        for index, key in zip(members, _split(base, [entries[i] for i in members], used),
                              strict=True):  # fmt: skip
            keys[index] = key
    return DocumentKeys(tuple(keys), _shared_links(entries, keys))


def has_substance(entry: Entry) -> bool:
    """False for an entry with no id, link, title, text or enclosure: nothing to archive."""
    return bool(entry.guid or entry.url or entry.title or entry.summary or entry.content_html
                or entry.enclosures)  # fmt: skip


def hash_key(title: str | None, date: datetime | None, summary: str | None) -> str:
    stamp = date.isoformat() if date else None
    digest = hashlib.sha256(json.dumps([title, stamp, summary]).encode("utf-8", "replace"))
    return "hash:" + digest.hexdigest()[:32]


def _base_key(entry: Entry, trust_guids: bool) -> str:
    if entry.guid and trust_guids:
        return "guid:" + entry.guid
    if entry.url:
        return "link:" + (entry.url if trust_guids else normalize_url(entry.url) or entry.url)
    if entry.enclosures:
        return "enclosure:" + entry.enclosures[0].url
    return hash_key(entry.title, entry.published or entry.updated, entry.summary)


_Signature = tuple[str | None, tuple[str, ...], str | None, tuple[str | None, str | None]]


def _signature(entry: Entry) -> _Signature:
    """What a reader tells entries apart by, coarsest first (``_split`` uses its prefixes)."""
    enclosures = tuple(e.url for e in entry.enclosures)
    return entry.url, enclosures, entry.title, (entry.summary, entry.content_html)


def _split(base: str, group: list[Entry], used: set[str]) -> list[str]:
    """The keys of the entries sharing ``base`` (rules 2 and 3 of ``document_keys``)."""
    signatures = [_signature(e) for e in group]
    distinct = list(dict.fromkeys(signatures))  # in order of first appearance
    if len(distinct) == 1:
        return [base] * len(group)
    width = next(n for n in range(1, 5) if len({s[:n] for s in distinct}) == len(distinct))
    keyed = {distinct[-1]: base}
    for signature in distinct[:-1]:
        key = f"{base}#{sha256_text(json.dumps(signature[:width]))[:12]}"
        while key in used:  # a guid that itself ends in "#…": never share a key by accident
            key += "#"
        used.add(key)
        keyed[signature] = key
    return [keyed[s] for s in signatures]


def _shared_links(entries: Sequence[Entry], keys: list[str]) -> frozenset[str]:
    first: dict[str | None, str] = {}
    shared: set[str] = set()
    for entry, key in zip(entries, keys, strict=True):
        url = entry.url
        if first.setdefault(url, key) != key and url:
            shared.add(url)
    return frozenset(shared)

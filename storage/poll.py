"""The writes of polls, in the caller's transaction: lease check, entry matching, feed state.
This module decides; the statements it runs are ``storage.pollsql``'s.

Which entries of the document are one entry is ``storage.identity.document_keys``' decision
(the parser's too); with the feed's guids found unstable it keys by link. Matching an entry to
the archive, in order (issues 5, 10): its own feed's sighting by key; else a sighting of the
same feed with the same link whose key left the document and whose item looks the same (title,
enclosures: the feed changed its guid: relink); else an item with the same canonical URL or
content fingerprint (another feed; or this one, if it looks the same: fold); else a new item.
An item that already answers to another entry of the *current* document is never a fold target:
the feed itself says they are two stories. A link that several entries share (a podcast's
every episode linking the show's home page) is no identity: nothing is folded by it, and its
page is not fetched as the entries' article.

A batch of polls (group commit, issue 2) runs each poll's matching in turn, so a later poll
sees the items an earlier one created. What the batch's first polls of its feeds will look for
is read once for all of them: their sightings and the fold candidates of their unknown
entries (a statement per poll cost a round trip on PostgreSQL, and on SQLite the writer's
thread, which bounds a first pass, a wait for the GIL per row read). The rows that matching does
not read (new items, with ids reserved for the batch; new sightings, first revisions and search
index rows, feed state, poll history, feed captures) wait in ``Writes`` and go in one statement
per table (a few dozen rows at a time on PostgreSQL, a few hundred on SQLite): at the end of the
batch, or before anything reads them or writes over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row

from storage import items, pollsql, searchindex
from storage.dialect import CHUNK, lock_keys
from storage.errors import LeaseLost
from storage.feeds import history_row, poll_state, rate_due
from storage.identity import (
    DocumentKeys,
    content_hash,
    document_keys,
    enclosures_from,
    item_uid,
    normalize_url,
)
from storage.pollsql import Writes
from storage.records import (
    ARTICLE_OFF,
    ARTICLE_PENDING,
    Entry,
    PollResult,
    PollSummary,
)
from storage.tables import clean_text


@dataclass(frozen=True, slots=True)
class Identity:
    """What an entry could be folded by, computed once per poll."""

    canonical: str | None  # the entry's link, normalized; None when other entries share it
    fingerprint: str | None

    @property
    def keys(self) -> list[str]:
        return [k for k in (self.canonical, self.fingerprint) if k]


@dataclass
class _Poll:
    """What one poll knows while it places entries; writes are batched where they can be."""

    conn: Connection
    result: PollResult
    feed_url: str
    link_keys: bool
    identities: list[Identity]  # one per entry of the result
    writes: Writes
    preread: _Read | None = None  # read ahead for the whole batch
    keys: list[str] = field(default_factory=list)  # each entry's key as stored
    doc: DocumentKeys = field(init=False)  # the document's keys (guids trusted)
    doc_keys: set[str] = field(default_factory=set)
    by_key: dict[str, Row[Any]] = field(default_factory=dict)  # this feed's sightings
    item_rows: dict[int, Row[Any]] = field(default_factory=dict)
    by_link: dict[str, list[Row[Any]]] = field(default_factory=dict)
    by_identity: dict[str, list[int]] = field(default_factory=dict)  # canonical URL, fingerprint
    by_uid: dict[str, int] = field(default_factory=dict)
    candidates: dict[int, Any] = field(default_factory=dict)  # fold candidates by item id
    uids: dict[str, str] = field(default_factory=dict)  # key -> uid of an item it would create
    owned: set[int] = field(default_factory=set)  # items the current document names
    seen_sightings: set[int] = field(default_factory=set)
    folded_items: set[int] = field(default_factory=set)
    relinked_ids: set[int] = field(default_factory=set)
    new_rows: dict[str, tuple[Entry, dict[str, Any]]] = field(default_factory=dict)
    sighting_rows: list[dict[str, Any]] = field(default_factory=list)
    new_sightings: int = 0
    revisions: int = 0
    folded: int = 0
    relinked: int = 0

    def __post_init__(self) -> None:
        self.doc, self.keys = _entry_keys(self.result.entries, self.link_keys)

    def uid_of(self, key: str) -> str:
        uid = self.uids.get(key)
        if uid is None:
            uid = self.uids[key] = item_uid(self.feed_url, key)
        return uid


def _entry_keys(entries: Sequence[Entry], link_keys: bool) -> tuple[DocumentKeys, list[str]]:
    """The document's keys (guids trusted), and each entry's key as stored."""
    doc = document_keys(entries)
    found = document_keys(entries, trust_guids=False) if link_keys else doc
    # NUL stripped: else a stored key is never found again
    return doc, [k.replace("\x00", "") if "\x00" in k else k for k in found.keys]


def _link_keys(feed: Row[Any], result: PollResult) -> bool:
    return bool(feed.link_keys) if result.link_keys is None else result.link_keys


def apply_one(conn: Connection, result: PollResult) -> PollSummary:
    """``Store.apply_poll``: a batch of one, whose lost lease is raised."""
    [outcome] = apply_batch(conn, [result])
    if isinstance(outcome, LeaseLost):
        raise outcome
    return outcome


def apply_batch(conn: Connection, results: Sequence[PollResult]) -> list[PollSummary | LeaseLost]:
    """Apply polls of several feeds in one transaction; a lost lease only loses its own slot.

    Locks first, all of them, in one global order (feed rows by id, then advisory keys sorted),
    so that concurrent batches on PostgreSQL never wait on each other in a cycle. Any other
    error propagates: the caller rolls the batch back and retries its results one by one.
    """
    locked = pollsql.lock_feeds(conn, (r.feed_id for r in results))
    found = [identities(r) for r in results]
    lock_keys(conn, [k for idents in found for i in idents for k in i.keys])
    known = _preread(conn, results, found, locked)
    writes = Writes()
    writes.reserve(conn, sum(len(read.unknown) for read in known.values()))
    out: list[PollSummary | LeaseLost] = []
    for result, idents in zip(results, found, strict=True):
        feed = locked.pop(result.feed_id, None)
        if feed is None:  # met earlier in this batch (or no such feed): read it as it is now
            writes.flush(conn)
            feed = pollsql.lock_feed(conn, result.feed_id)
        try:
            out.append(apply(conn, result, feed, idents, writes, known.pop(result.feed_id, None)))
        except LeaseLost as exc:  # raised before the result wrote anything
            out.append(exc)
    writes.flush(conn)
    return out


@dataclass(frozen=True, slots=True)
class _Read:
    """What the batch read ahead for a feed's first poll of the batch."""

    sightings: list[Row[Any]]  # as pollsql.feed_sightings reads them
    folds: list[Any] | None  # as pollsql.fold_candidates would read them for its unknown entries
    asked: tuple[set[str], set[str]]  # the identities and uids those were read by
    unknown: list[int]  # the entries (indexes) no sighting knows: new items, most of them

    def fold_candidates(self, made: set[int]) -> list[Any] | None:
        """The fold candidates read, unless an item the batch made since (``Writes.made``) may
        answer to what they were read by: then the poll reads its own."""
        if self.folds is None or any(hash(v) in made for values in self.asked for v in values):
            return None
        return self.folds


def _preread(conn: Connection, results: Sequence[PollResult], found: Sequence[list[Identity]],
             locked: dict[int, Row[Any]]) -> dict[int, _Read]:  # fmt: skip
    """The sightings each feed's first poll of the batch will look for, in one query for all,
    then the fold candidates of the entries they do not know, in one query for all: a feed's
    sightings are written by its own polls only, and a feed met again in the batch reads them
    again, after the first poll's writes. Items the batch creates are not among the candidates
    read here: a poll that asks for one of theirs reads its own (``Writes.made``)."""
    wanted: dict[int, tuple[list[str], Sequence[Entry]]] = {}
    idents: dict[int, list[Identity]] = {}
    for result, ident in zip(results, found, strict=True):
        feed = locked.get(result.feed_id)
        if result.entries and feed is not None and result.feed_id not in wanted:
            keys = _entry_keys(result.entries, _link_keys(feed, result))[1]
            wanted[result.feed_id] = (keys, result.entries)
            idents[result.feed_id] = ident
    sightings = pollsql.feeds_sightings(conn, wanted)
    asked: dict[int, tuple[set[str], set[str]]] = {}
    unknown: dict[int, list[int]] = {}
    for feed_id, (keys, _) in wanted.items():
        seen = {row.key for row in sightings[feed_id]}
        new = unknown[feed_id] = [i for i, key in enumerate(keys) if key not in seen]
        url = locked[feed_id].url
        asked[feed_id] = ({k for i in new for k in idents[feed_id][i].keys},
                          {item_uid(url, keys[i]) for i in new})  # fmt: skip
    folds = pollsql.fold_candidates_of(conn, asked)
    return {
        feed_id: _Read(sightings[feed_id], folds[feed_id], asked[feed_id], unknown[feed_id])
        for feed_id in wanted
    }


def apply(
    conn: Connection,
    result: PollResult,
    feed: Row[Any],
    idents: list[Identity],
    writes: Writes,
    preread: _Read | None = None,
) -> PollSummary:
    """One poll, its feed row locked and the advisory keys of ``idents`` taken by the caller
    (``preread``: its sightings and fold candidates, if the caller read them)."""
    if feed.last_polled == result.polled_at and feed.lease_owner != result.lease_owner:
        return PollSummary()  # this very result was applied already: idempotent replay
    if feed.lease_owner != result.lease_owner:
        holder = feed.lease_owner or "nobody"
        raise LeaseLost(f"poll of {feed.url} by {result.lease_owner}: lease now held by {holder}")
    link_keys = _link_keys(feed, result)
    if not result.entries:  # a 304, a failure: nothing to place, only the feed's state
        return _record(conn, feed, result, PollSummary(), link_keys, writes)
    poll = _Poll(conn, result, feed.url, link_keys, idents, writes, preread)
    _place_all(poll)
    if not link_keys and poll.relinked * 2 > len(result.entries):
        poll.link_keys = True  # guids change from poll to poll: key by link from now on
    new_items = len(poll.new_rows)
    summary = PollSummary(new_items, poll.new_sightings, poll.revisions, poll.folded)
    if result.capture is not None and (new_items or poll.revisions or poll.new_sightings):
        writes.captures.append((result.capture, None, result.feed_id))
    return _record(conn, feed, result, summary, poll.link_keys, writes)


def _record(conn: Connection, feed: Row[Any], result: PollResult, summary: PollSummary,
            link_keys: bool, writes: Writes) -> PollSummary:  # fmt: skip
    """The feed's new state and its poll history row, queued in ``writes``."""
    state = poll_state(conn, feed, result, summary, link_keys)
    writes.states.append(state)
    if rate_due(feed, result.polled_at, summary):
        writes.rates.append((state, result.polled_at))
    writes.polls.append(history_row(feed.id, result, summary))
    return summary


def identities(result: PollResult) -> list[Identity]:
    """What each entry could be folded by; their advisory keys serialize the transactions that
    could create the same story (PostgreSQL). A link other entries share identifies nothing."""
    if not result.entries:
        return []
    doc = document_keys(result.entries)
    out: list[Identity] = []
    for entry in result.entries:
        canonical = normalize_url(entry.url) if doc.owns_link(entry) else None
        out.append(Identity(canonical, items.fingerprint(entry)))
    return out


def prepare(results: Sequence[PollResult]) -> None:
    """Compute the entries' identity keys and hashes now, outside any transaction: the pure
    functions of ``storage.identity`` remember them, so the write itself only looks them up."""
    for result in results:
        identities(result)
        for entry in result.entries:
            content_hash(entry.title, entry.summary, None, entry.enclosures)


def _place_all(poll: _Poll) -> None:
    entries = poll.result.entries
    poll.doc_keys = set(poll.keys)
    _preload(poll)
    for index, entry in enumerate(entries):
        _place(poll, index, entry)
    _create_items(poll)
    _flush(poll)


def _preload(poll: _Poll) -> None:
    """Read in a few statements what placing the document's entries needs to know."""
    result = poll.result
    if poll.preread is None:
        rows = pollsql.feed_sightings(poll.conn, result.feed_id, poll.keys, result.entries)
    else:
        rows = poll.preread.sightings
    poll.by_key = {row.key: row for row in rows if row.key in poll.doc_keys}
    poll.owned = {row.item_id for row in poll.by_key.values()}
    unknown = [i for i, key in enumerate(poll.keys) if key not in poll.by_key]
    links = {clean_text(poll.result.entries[i].url) for i in unknown} - {None}
    for row in rows:  # by id
        if row.link in links and row.key not in poll.doc_keys:
            poll.by_link.setdefault(row.link, []).append(row)
    relinkable = {row.item_id for found in poll.by_link.values() for row in found}
    for row in pollsql.items_by_id(poll.conn, poll.owned | relinkable):
        poll.item_rows[row.id] = row
    if unknown:
        _fold_candidates(poll, unknown)


def _fold_candidates(poll: _Poll, unknown: list[int]) -> None:
    """Items with a canonical URL, fingerprint or uid of an unknown entry: ``by_identity`` lists
    those found by canonical URL first, then those found by fingerprint, each by id."""
    parts = [unknown[start : start + CHUNK // 4] for start in range(0, len(unknown), CHUNK // 4)]
    asked = [({k for i in part for k in poll.identities[i].keys},
              {poll.uid_of(poll.keys[i]) for i in part}) for part in parts]  # fmt: skip
    idents: set[str] = set().union(*(wanted for wanted, _ in asked))
    ordered = None if poll.preread is None else poll.preread.fold_candidates(poll.writes.made)
    if ordered is None:
        poll.writes.flush_items(poll.conn)
        ordered = pollsql.fold_candidates(poll.conn, asked)
    poll.candidates = {row.id: row for row in ordered}
    by_canonical = [row for row in ordered if row.canonical_url in idents]
    by_print = [row for row in ordered if row.fingerprint in idents]
    for row in by_canonical + by_print:
        for ident in {row.canonical_url, row.fingerprint} & idents:
            poll.by_identity.setdefault(ident, []).append(row.id)
    uids = set(poll.uids.values())
    poll.by_uid = {row.uid: row.id for row in ordered if row.uid in uids}


def _place(poll: _Poll, index: int, entry: Entry) -> None:
    key = poll.keys[index]
    known = poll.by_key.get(key)
    if known is not None:
        _seen_again(poll, known, entry)
        return
    if key in poll.new_rows:
        return  # the same entry twice in one document
    relink = _same_feed_link(poll, entry)
    if relink is not None:
        poll.relinked += 1
        poll.folded += 1
        poll.relinked_ids.add(relink.id)
        pollsql.rekey_sighting(poll.conn, relink.id, key)
        poll.by_key[key] = relink
        _seen_again(poll, relink, entry)
        return
    target = _fold_target(poll, index, entry)
    if target is None:
        ident = poll.identities[index]
        fetch = poll.result.fetch_articles and poll.doc.owns_link(entry)
        status = ARTICLE_PENDING if fetch else ARTICLE_OFF
        row = items.new_row(poll.result.feed_id, poll.uid_of(key), entry, poll.result.polled_at,
                            status, (ident.canonical, ident.fingerprint))  # fmt: skip
        poll.new_rows[key] = (entry, row)
        return
    poll.folded += 1
    poll.new_sightings += 1
    poll.folded_items.add(target)
    poll.owned.add(target)
    poll.sighting_rows.append(_sighting_row(poll, target, key, entry))


def _seen_again(poll: _Poll, sighting: Row[Any], entry: Entry) -> None:
    poll.seen_sightings.add(sighting.id)
    if (sighting.guid, sighting.link) != (clean_text(entry.guid), clean_text(entry.url)):
        pollsql.relabel_sighting(poll.conn, sighting.id, entry.guid, entry.url)
    row = poll.item_rows.get(sighting.item_id) or items.load(poll.conn, sighting.item_id)
    if row.feed_id == poll.result.feed_id:  # only the item's own feed rewrites its content
        changed = items.changes(row, entry)
        if changed:  # the batch's rows first: the item's newer index row must come last
            poll.writes.flush_rows(poll.conn)
            poll.revisions += items.refresh(poll.conn, row, entry, poll.result.polled_at,
                                            changed)


def _same_feed_link(poll: _Poll, entry: Entry) -> Row[Any] | None:
    """A sighting of this feed under the entry's own link whose key left the document and whose
    item looks like the entry: the feed changed the entry's guid."""
    for row in poll.by_link.get(clean_text(entry.url) or "", []):
        item = poll.item_rows.get(row.item_id)
        if row.id not in poll.relinked_ids and item is not None and _looks_same(item, entry):
            return row
    return None


def _fold_target(poll: _Poll, index: int, entry: Entry) -> int | None:
    """An existing item that is this entry's story: the same uid, or the same canonical URL or
    fingerprint (an item this feed brought must look the same too: the feed is its witness)."""
    uid_match = poll.by_uid.get(poll.uid_of(poll.keys[index]))
    candidates = [] if uid_match is None else [uid_match]
    for ident in poll.identities[index].keys:
        for found in poll.by_identity.get(ident, []):
            row = poll.candidates[found]
            if row.feed_id != poll.result.feed_id or _looks_same(row, entry):
                candidates.append(found)
    return next((c for c in candidates if c not in poll.owned), None)


def _looks_same(row: Any, entry: Entry) -> bool:
    """What a reader tells entries apart by: the title, and the enclosures where both have some
    (items stored before enclosures were archived have none)."""
    if clean_text(row.title) != clean_text(entry.title):
        return False
    stored = {e.url for e in enclosures_from(row.enclosures)}
    given = {clean_text(e.url) for e in entry.enclosures}
    return not (stored and given) or stored == given


def _create_items(poll: _Poll) -> None:
    rows = [row for _, row in poll.new_rows.values()]
    ids = poll.writes.new_items(poll.conn, rows)
    poll.writes.revisions += items.first_revisions(ids, rows)
    poll.writes.index(poll.conn, searchindex.new_docs(ids, rows))
    for item_id, (key, (entry, _)) in zip(ids, poll.new_rows.items(), strict=True):
        poll.owned.add(item_id)
        poll.sighting_rows.append(_sighting_row(poll, item_id, key, entry))


def _sighting_row(poll: _Poll, item_id: int, key: str, entry: Entry) -> dict[str, Any]:
    now = poll.result.polled_at
    return {"item_id": item_id, "feed_id": poll.result.feed_id, "key": key, "guid": entry.guid,
            "link": entry.url, "first_seen": now, "last_seen": now}  # fmt: skip


def _flush(poll: _Poll) -> None:
    """The poll's batched writes: new sightings (to the batch's), last_seen / changed_at."""
    poll.writes.sightings += poll.sighting_rows
    pollsql.touch(poll.conn, poll.result.polled_at, poll.seen_sightings, poll.folded_items)

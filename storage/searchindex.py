"""The search index's writes, in the caller's transaction: every write of an item's title,
summary or article calls here, so the index moves with the item or not at all (issue 16).

SQLite: an FTS5 table ``item_search`` (title, summary, body; ``unicode61 remove_diacritics
2``), rowid = the item's id. PostgreSQL: ``search_docs`` (item id, configuration, a weighted
``tsvector`` under a GIN index), the configuration chosen from the article's language. Both are
written here, from Python, not by triggers: the summary is HTML whose tags must not become
words, and PostgreSQL is given folded words (``searchquery.index_text``) so that both databases
split and fold text alike. Deletes are the databases' own: an SQLite trigger
(``items_search_delete``, migration 0010) and PostgreSQL's ``ON DELETE CASCADE``, so every way
an item goes (retention, a fold, a feed's cascade) takes its index row along.

Items written before migration 0010 are indexed by ``aggregator search --reindex``
(``reindex``), whose progress is the ``search_pending`` row.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text, update

from storage.dialect import CHUNK, IntArray, TextArray, is_postgres
from storage.tables import items, search_pending

FTS_TABLE = "item_search"
PG_TABLE = "search_docs"

# ISO 639-1 code -> a text search configuration every supported PostgreSQL (12+) ships. Others
# (Kazakh among them: PostgreSQL has no Kazakh stemmer) are indexed word for word: ``simple``.
PG_CONFIGS = {
    "ar": "arabic", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "fi": "finnish", "fr": "french", "ga": "irish", "hu": "hungarian",
    "id": "indonesian", "it": "italian", "lt": "lithuanian", "nb": "norwegian", "ne": "nepali",
    "nl": "dutch", "nn": "norwegian", "no": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip
SIMPLE = "simple"
ALL_CONFIGS = (SIMPLE, *sorted(set(PG_CONFIGS.values())))

_TAG = re.compile(r"<[^<>]*>")  # [^<>]: linear even on a run of unclosed "<"
_MARKERS = str.maketrans("", "", "\ue000\ue001")  # storage.search's highlight markers
# the "<" of a block tag: "\n<" in its place puts a line break before the tag (a literal
# replacement: a template such as "\n\\g<0>" is expanded in Python at every match)
_BLOCK = re.compile(r"<(?=/?(?:p|br|div|li|h[1-6]|blockquote|tr)\b)", re.I)


def pg_config(language: str | None) -> str:
    """The configuration for a language tag (``ru``, ``en-US``, ``kk``); ``simple`` if none."""
    if not language:
        return SIMPLE
    return PG_CONFIGS.get(language.strip().lower().replace("_", "-").split("-")[0], SIMPLE)


def plain(markup: str | None) -> str:
    """Stored (sanitized) HTML as text: tags out, entities read; blocks keep a line break."""
    if not markup:
        return ""
    if "<" in markup or "&" in markup:
        markup = html.unescape(_TAG.sub(" ", _BLOCK.sub("\n<", markup)))
    return _unmarked(markup)


def _unmarked(value: str) -> str:
    """``value`` without highlight markers (a rare character: looked for before translating)."""
    return value.translate(_MARKERS) if "\ue000" in value or "\ue001" in value else value


@dataclass(frozen=True, slots=True)
class Doc:
    """What the index holds of one item: its texts and (PostgreSQL) configuration."""

    item_id: int
    title: str
    summary: str
    body: str
    config: str


def doc(item_id: int, title: str | None, summary: str | None, article: Any) -> Doc:
    """The index's view of an item row (``article`` as stored: the export's dict, or None)."""
    art = article if isinstance(article, dict) else {}
    body = art.get("text") or ""
    return Doc(item_id, _unmarked(title or ""), plain(summary),
               _unmarked(body) if isinstance(body, str) else "",
               pg_config(art.get("language")))  # fmt: skip


def write(conn: Connection, docs: Sequence[Doc]) -> None:
    """Put these items' index rows (replacing any they had)."""
    if not docs:
        return
    if is_postgres(conn):
        from storage.searchquery import index_text  # PostgreSQL's alone: FTS5 folds for SQLite

        latest = list({d.item_id: d for d in docs}.values())  # one row each: ON CONFLICT's rule
        conn.execute(_PG_UPSERT, {
            "ids": [d.item_id for d in latest], "configs": [d.config for d in latest],
            "t": [index_text(d.title) for d in latest],
            "s": [index_text(d.summary) for d in latest],
            "b": [index_text(d.body) for d in latest]})  # fmt: skip
        return
    # one query text whatever the ids: each text of its own would be prepared and kept in the
    # driver's statement cache (128 of them, a poll batch's 500 ids each: 5 MB more peak RSS)
    ids = json.dumps([d.item_id for d in docs])
    conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE} WHERE rowid IN "
                         "(SELECT value FROM json_each(?))", (ids,))  # fmt: skip
    conn.exec_driver_sql(
        f"INSERT INTO {FTS_TABLE} (rowid, title, summary, body) VALUES (?, ?, ?, ?)",
        [(d.item_id, d.title, d.summary, d.body) for d in docs],
    )


# One statement for all the documents, their values as arrays: executemany's statement per row
# was planned and run row by row (3 to 4 ms a poll of 20 new items, half of it round trips).
_PG_UPSERT = text(
    f"INSERT INTO {PG_TABLE} (item_id, config, doc) SELECT d.id, d.config, "
    "setweight(to_tsvector(CAST(d.config AS regconfig), d.t), 'A') || "
    "setweight(to_tsvector(CAST(d.config AS regconfig), d.s), 'B') || "
    "setweight(to_tsvector(CAST(d.config AS regconfig), d.b), 'C') "
    "FROM unnest(:ids, :configs, :t, :s, :b) AS d(id, config, t, s, b) "
    "ON CONFLICT (item_id) DO UPDATE SET config = excluded.config, doc = excluded.doc"
).bindparams(bindparam("ids", type_=IntArray()),
             *(bindparam(name, type_=TextArray()) for name in ("configs", "t", "s", "b")))


def refresh(conn: Connection, item_ids: Iterable[int]) -> None:
    """Index these items as they are now in the transaction (after an update)."""
    ordered = sorted(set(item_ids))
    for start in range(0, len(ordered), CHUNK):
        query = (select(items.c.id, items.c.title, items.c.summary, items.c.article)
                 .where(items.c.id.in_(ordered[start : start + CHUNK])))  # fmt: skip
        write(conn, [doc(r.id, r.title, r.summary, r.article) for r in conn.execute(query)])


def new_docs(ids: Sequence[int], rows: Sequence[dict[str, Any]]) -> list[Doc]:
    """The index rows of items just created from these ``items`` rows (no re-read), for
    ``write``: a poll writes a whole batch's in one statement."""
    return [doc(i, r["title"], r["summary"], r["article"]) for i, r in zip(ids, rows, strict=True)]


# -- reindex: items from before the index ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backlog:
    """Items written before the index existed: ids up to ``end_id``, done up to ``done_id``."""

    done_id: int
    end_id: int


def backlog(conn: Connection) -> Backlog | None:
    row = conn.execute(select(search_pending.c.done_id, search_pending.c.end_id)).first()
    return None if row is None else Backlog(int(row.done_id), int(row.end_id))


def reindex(conn: Connection, size: int, *, restart: bool = False) -> tuple[int, Backlog | None]:
    """Index the next ``size`` items of the backlog and record how far it got; (items indexed,
    what is left, None when done). Each batch is the caller's transaction: interrupted, the
    next run starts after the last one committed; repeated, it rewrites the same rows.
    ``restart`` puts every item in the backlog first (``start_backlog``)."""
    left = start_backlog(conn) if restart else backlog(conn)
    if left is None:
        return 0, None
    query = (select(items.c.id, items.c.title, items.c.summary, items.c.article)
             .where(items.c.id > left.done_id, items.c.id <= left.end_id)
             .order_by(items.c.id).limit(size))  # fmt: skip
    rows = conn.execute(query).all()
    write(conn, [doc(r.id, r.title, r.summary, r.article) for r in rows])
    if len(rows) < size:
        conn.execute(delete(search_pending))
        return len(rows), None
    done = int(rows[-1].id)
    conn.execute(update(search_pending).values(done_id=done))
    return len(rows), Backlog(done, left.end_id)


def start_backlog(conn: Connection) -> Backlog | None:
    """Put every item in the backlog: a full rebuild (``search --reindex --all``, after the
    language map changed, say), resumable like the backlog migration 0010 leaves."""
    end = conn.execute(select(items.c.id).order_by(items.c.id.desc()).limit(1)).scalar()
    conn.execute(delete(search_pending))
    if end is None:
        return None
    conn.execute(insert(search_pending).values(id=1, done_id=0, end_id=int(end)))
    return Backlog(0, int(end))

"""Two versions of a text as a readable diff: lines kept, removed and added, and within a changed
line the words that changed. Pure (difflib); the template renders the rows, escaped.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

CONTEXT = 2  # unchanged lines shown around a change
_WORDS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a diff: ``same``, ``del``, ``add``, or ``skip`` (unchanged lines left out)."""

    kind: str
    old: int | None = None  # line numbers, 1-based
    new: int | None = None
    # (changed, text) pieces: a changed line's changed words are marked
    pieces: tuple[tuple[bool, str], ...] = field(default_factory=tuple)
    skipped: int = 0


def line_diff(old: str | None, new: str | None, context: int = CONTEXT) -> list[Row]:
    """The rows that show how ``new`` differs from ``old``; [] when they are the same."""
    a, b = _lines(old), _lines(new)
    if a == b:
        return []
    rows: list[Row] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first = group[0]
        if rows or first[1] > 0:
            rows.append(Row("skip", skipped=max(first[1] - _last_old(rows), 0)))
        for tag, i1, i2, j1, j2 in group:
            rows.extend(_rows(tag, a, b, i1, i2, j1, j2))
    if len(a) > _last_old(rows):
        rows.append(Row("skip", skipped=len(a) - _last_old(rows)))
    return rows


def _last_old(rows: list[Row]) -> int:
    return next((r.old for r in reversed(rows) if r.old is not None), 0)


def _rows(tag: str, a: list[str], b: list[str], i1: int, i2: int, j1: int, j2: int) -> list[Row]:
    if tag == "equal":
        pairs = zip(range(i1, i2), range(j1, j2), strict=True)
        return [Row("same", i + 1, j + 1, ((False, a[i]),)) for i, j in pairs]
    if tag == "replace" and i2 - i1 == j2 - j1:  # line for line: show the words that changed
        out: list[Row] = []
        for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
            removed, added = word_pieces(a[i], b[j])
            out += [Row("del", old=i + 1, pieces=removed), Row("add", new=j + 1, pieces=added)]
        return out
    return ([Row("del", old=i + 1, pieces=((False, a[i]),)) for i in range(i1, i2)]
            + [Row("add", new=j + 1, pieces=((False, b[j]),)) for j in range(j1, j2)])


def word_pieces(old: str, new: str) -> tuple[tuple[tuple[bool, str], ...], ...]:
    """The two lines cut into pieces, those that differ marked True."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    removed: list[tuple[bool, str]] = []
    added: list[tuple[bool, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        changed = tag != "equal"
        if i2 > i1:
            removed.append((changed, "".join(a[i1:i2])))
        if j2 > j1:
            added.append((changed, "".join(b[j1:j2])))
    return tuple(removed), tuple(added)


def _lines(text: str | None) -> list[str]:
    """Lines without the blank ones between paragraphs (the stored text separates blocks so)."""
    return [line for line in (text or "").splitlines() if line.strip()]

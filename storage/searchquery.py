"""The search query syntax, parsed once, for both databases; pure (no database, no I/O).

    budget tax          both words (AND; ``AND`` may be written too)
    "state budget"      the words as a phrase, in this order
    budg*               a word that starts with ``budg`` (at least two letters before ``*``)
    budget OR tax       either; OR binds looser than AND: ``a b OR c`` is ``(a b) OR c``
    budget -tax         budget but not tax; ``NOT tax`` is the same
    (budget OR tax) -draft
                        parentheses group

Words are what the index sees: runs of letters and digits, lower-cased, with the diacritics of
Latin letters removed (``café`` finds ``Cafe``; Cyrillic and Kazakh letters are kept as they
are: ``й`` is not ``и``). Other punctuation separates words, as it does in the text, so
``e-mail`` or ``title:budget`` search for those words as a phrase; a chunk with no letter or
digit is ignored. What cannot be read (an unclosed quote or parenthesis, a ``*`` that does not
end a word, OR or NOT with nothing to join, a group with only NOT terms) is a
``SearchQueryError`` naming the place, never a database syntax error: user text reaches SQLite
and PostgreSQL only as quoted words we built.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from storage.errors import SearchQueryError

MAX_QUERY = 1000  # characters
MAX_TERMS = 64
MAX_DEPTH = 8  # nested parentheses
MAX_WORD = 100  # characters; PostgreSQL ignores words over 2047 bytes
MIN_PREFIX = 2  # a one-letter prefix would match most of the index

_LATIN = ((0x41, 0x24F), (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF))
# A word: letters and digits (not "_"), with the combining marks that follow them; what
# SQLite's unicode61 tokenizer keeps together. The highlight markers (private use) are not.
_WORD = re.compile(
    r"(?:[^\W_]|[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u064b-\u065f"
    r"\u0900-\u0903\u093a-\u094f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+"
)


def is_word_char(ch: str) -> bool:
    """A character of a word (``_WORD``)."""
    return _WORD.fullmatch(ch) is not None


def _is_latin(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _LATIN)


def fold(word: str) -> str:
    """A word as the index compares it: lower case, Latin letters without their diacritics
    (what SQLite's ``unicode61 remove_diacritics 2`` does; PostgreSQL is given folded text)."""
    word = word.lower()
    if word.isascii():
        return word
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", word):
        if unicodedata.combining(ch) and out and _is_latin(out[-1]):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def word_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every word of ``text``, in order."""
    return (m.span() for m in _WORD.finditer(text))


def words(text: str) -> list[str]:
    """The folded words of ``text``."""
    return [fold(text[a:b]) for a, b in word_spans(text)]


# ASCII text, the usual case: a word is a run of letters and digits, folded is lower-cased; one
# translate does that to the whole text (a tenth of the CPU of ``words``: a poll's new items
# cost the writer about 1 s in 20,000 on PostgreSQL)
_ASCII_FOLD = str.maketrans(
    {chr(i): chr(i).lower() if chr(i).isalnum() else " " for i in range(128)}
)


def index_text(text: str) -> str:
    """``text`` as PostgreSQL is given it: folded words separated by single spaces, so that its
    parser splits and lower-cases exactly as SQLite's tokenizer does, whatever the locale."""
    if text.isascii():
        return " ".join(text.translate(_ASCII_FOLD).split())
    return " ".join(words(text))


# -- the query tree ------------------------------------------------------------------------

Kind = Literal["word", "prefix", "phrase"]


@dataclass(frozen=True, slots=True)
class Term:
    """A word, a prefix (without its ``*``) or a phrase; its words folded."""

    kind: Kind
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class All:
    """Every ``include`` and none of ``exclude`` (at least one include: the parser sees to it)."""

    include: tuple[Node, ...]
    exclude: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Either:
    """Any of ``options``."""

    options: tuple[Node, ...]


Node: TypeAlias = Term | All | Either


def parse(query: str) -> Node:
    """The tree of ``query``; ``SearchQueryError`` says what is wrong and where."""
    if len(query) > MAX_QUERY:
        raise SearchQueryError(f"the query is {len(query)} characters long; at most {MAX_QUERY}")
    tokens = list(_lex(query))
    parser = _Parser(tokens)
    node = parser.either(0)
    if parser.pos < len(tokens):
        raise _error("')' closes no '('", tokens[parser.pos])
    if sum(1 for _ in terms(node)) > MAX_TERMS:
        raise SearchQueryError(f"the query has more than {MAX_TERMS} terms")
    return node


def terms(node: Node, *, excluded: bool = True) -> Iterator[Term]:
    """Every term of the tree, left to right (without the NOT ones if ``excluded`` is False)."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Either):
        for option in node.options:
            yield from terms(option, excluded=excluded)
    else:
        for part in node.include + (node.exclude if excluded else ()):
            yield from terms(part, excluded=excluded)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["term", "or", "and", "not", "open", "close"]
    at: int  # 1-based character position, for messages
    term: Term | None = None


def _error(what: str, token: _Token) -> SearchQueryError:
    return SearchQueryError(f"{what} (character {token.at} of the query)")


def _lex(query: str) -> Iterator[_Token]:
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            yield _Token("open" if ch == "(" else "close", i + 1)
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise SearchQueryError(f"unclosed quote (character {i + 1} of the query)")
            found = _words_of(query[i + 1 : end], i + 2)
            if found:
                yield _Token("term", i + 1, Term("phrase" if len(found) > 1 else "word", found))
            i = end + 1
        elif ch == "-" and i + 1 < n and (is_word_char(query[i + 1]) or query[i + 1] in '"('):
            yield _Token("not", i + 1)
            i += 1
        else:
            end = i
            while end < n and not query[end].isspace() and query[end] not in '()"':
                end += 1
            token = _chunk(query[i:end], i + 1)
            if token is not None:
                yield token
            i = end


def _words_of(text: str, at: int) -> tuple[str, ...]:
    found = tuple(words(text))
    for word in found:
        if len(word) > MAX_WORD:
            raise SearchQueryError(f"a word of {len(word)} characters at character {at} of the "
                                   f"query; at most {MAX_WORD}")  # fmt: skip
    return found


def _chunk(chunk: str, at: int) -> _Token | None:
    """A bare chunk: an operator, a prefix, or words (several make a phrase)."""
    if chunk in ("OR", "AND", "NOT"):
        return _Token("or" if chunk == "OR" else "and" if chunk == "AND" else "not", at)
    star = chunk.find("*")
    if star >= 0 and star != len(chunk) - 1:
        raise SearchQueryError(f"'*' may only end a word (character {at + star} of the query)")
    found = _words_of(chunk.rstrip("*"), at)
    if star < 0:
        if not found:
            return None
        return _Token("term", at, Term("phrase" if len(found) > 1 else "word", found))
    stem = chunk[:-1]
    if len(found) != 1 or not all(map(is_word_char, stem)) or len(found[0]) < MIN_PREFIX:
        raise SearchQueryError(f"'*' must follow a word of at least {MIN_PREFIX} letters or "
                               f"digits (character {at + star} of the query)")  # fmt: skip
    return _Token("term", at, Term("prefix", found))


class _Parser:
    """Recursive descent: either := all (OR all)*; all := [NOT] atom ([AND] [NOT] atom)*."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def either(self, depth: int) -> Node:
        options = [self.all(depth)]
        while (token := self.peek()) is not None and token.kind == "or":
            self.pos += 1
            options.append(self.all(depth, after=token))
        return options[0] if len(options) == 1 else Either(tuple(options))

    def all(self, depth: int, after: _Token | None = None) -> Node:
        include: list[Node] = []
        exclude: list[Node] = []
        start = self.peek()
        while (token := self.peek()) is not None and token.kind not in ("or", "close"):
            self.pos += 1
            if token.kind == "and":
                if not include and not exclude:
                    raise _error("AND needs a term before it", token)
                token = self._next(token, "AND")
            negated = token.kind == "not"
            if negated:
                token = self._next(token, "NOT")
            (exclude if negated else include).append(self.atom(token, depth))
        if not include and not exclude:
            if after is not None:
                raise _error("OR needs a term after it", after)
            if start is None:
                raise SearchQueryError("the query has no word to search for")
            raise _error("OR needs a term before it" if start.kind == "or"
                         else "empty parentheses", start)  # fmt: skip
        if not include:
            raise _error("NOT needs a term to search for beside it, as in `budget -tax`",
                         start or self.tokens[-1])  # fmt: skip
        if not exclude and len(include) == 1:
            return include[0]
        return All(tuple(include), tuple(exclude))

    def _next(self, token: _Token, what: str) -> _Token:
        following = self.peek()
        if following is None or following.kind in ("or", "and", "close"):
            raise _error(f"{what} needs a term after it", token)
        self.pos += 1
        if what == "AND" and following.kind == "not":
            return following
        if following.kind == "not":
            raise _error("NOT twice", following)
        return following

    def atom(self, token: _Token, depth: int) -> Node:
        if token.kind == "term":
            assert token.term is not None
            return token.term
        if token.kind != "open":
            raise _error(f"{token.kind.upper()} in the wrong place", token)
        if depth + 1 > MAX_DEPTH:
            raise _error(f"parentheses nested more than {MAX_DEPTH} deep", token)
        node = self.either(depth + 1)
        closing = self.peek()
        if closing is None or closing.kind != "close":
            raise _error("'(' is never closed", token)
        self.pos += 1
        return node


# -- rendering ----------------------------------------------------------------------------


def to_fts5(node: Node) -> str:
    """The tree as an FTS5 MATCH expression: every word a quoted string, so no user text is
    read as FTS5 syntax (words hold only letters, digits and marks: no quote can occur)."""
    if isinstance(node, Term):
        quoted = '"' + " ".join(node.words) + '"'
        return quoted + "*" if node.kind == "prefix" else quoted
    if isinstance(node, Either):
        return "(" + " OR ".join(map(to_fts5, node.options)) + ")"
    inner = " AND ".join(map(to_fts5, node.include))
    if not node.exclude:
        return "(" + inner + ")"
    return "((" + inner + ") NOT (" + " OR ".join(map(to_fts5, node.exclude)) + "))"


def to_tsquery(node: Node, variants: Mapping[Term, list[str]]) -> str | None:
    """The tree as tsquery text: a term is the OR of its ``variants`` (PostgreSQL's own
    tsquery output for it under each text search configuration, so quoting is PostgreSQL's).
    None when nothing can match (a term every configuration drops)."""
    if isinstance(node, Term):
        found = variants.get(node, [])
        return "(" + " | ".join(f"({v})" for v in found) + ")" if found else None
    if isinstance(node, Either):
        parts = [p for p in (to_tsquery(o, variants) for o in node.options) if p is not None]
        return "(" + " | ".join(parts) + ")" if parts else None
    include = [to_tsquery(p, variants) for p in node.include]
    if any(p is None for p in include):
        return None
    exclude = [p for p in (to_tsquery(e, variants) for e in node.exclude) if p is not None]
    return "(" + " & ".join([*map(str, include), *(f"!{e}" for e in exclude)]) + ")"


def matcher(node: Node) -> Callable[[str], bool]:
    """Whether a folded word is one a snippet highlights: a word or prefix the query looks
    for (NOT terms aside), or a word of one of its phrases."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for term in terms(node, excluded=False):
        if term.kind == "prefix":
            prefixes.append(term.words[0])
        else:
            exact.update(term.words)
    starts = tuple(prefixes)
    return lambda word: word in exact or (bool(starts) and word.startswith(starts))

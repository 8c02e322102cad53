"""The search syntax (``storage/searchquery.py``): how queries read, what they become for FTS5,
and hostile queries, which end as a ``SearchQueryError`` naming the place or as a plain
search, never as a database error, on both databases."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.errors import SearchQueryError
from storage.records import FeedConfig
from storage.searchindex import pg_config, plain
from storage.searchquery import (
    All,
    Either,
    Term,
    fold,
    index_text,
    parse,
    to_fts5,
    to_tsquery,
    words,
)
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

W = lambda *w: Term("word", w)  # noqa: E731


@pytest.mark.parametrize(("query", "tree"), [
    ("budget", W("budget")),
    ("Budget TAX", All((W("budget"), W("tax")))),
    ("budget AND tax", All((W("budget"), W("tax")))),
    ('"state budget"', Term("phrase", ("state", "budget"))),
    ("budg*", Term("prefix", ("budg",))),
    ("a OR b c", Either((W("a"), All((W("b"), W("c")))))),
    ("budget -tax", All((W("budget"),), (W("tax"),))),
    ("NOT tax budget", All((W("budget"),), (W("tax"),))),
    ("budget AND NOT tax", All((W("budget"),), (W("tax"),))),
    ("(a OR b) -c", All((Either((W("a"), W("b"))),), (W("c"),))),
    ("e-mail", Term("phrase", ("e", "mail"))),
    ("title:budget", Term("phrase", ("title", "budget"))),
    ("Қазақстан", W("қазақстан")),
    ("ЙОШКАР-ОЛА", Term("phrase", ("йошкар", "ола"))),
    ("Zürich naïve CAFÉ", All((W("zurich"), W("naive"), W("cafe")))),
    ("or and not", All((W("or"), W("and"), W("not")))),  # operators are upper case
    ("budget ::: +", W("budget")),  # punctuation alone is no word
])  # fmt: skip
def test_queries_read_as_documented(query: str, tree: object) -> None:
    assert parse(query) == tree


@pytest.mark.parametrize(("query", "message"), [
    ("", "no word to search for"),
    ("  ::: ", "no word to search for"),
    ('"unclosed', "unclosed quote (character 1"),
    ("(budget", "'(' is never closed (character 1"),
    ("budget)", "')' closes no '(' (character 7"),
    ("()", "empty parentheses"),
    ("OR budget", "OR needs a term before it"),
    ("budget OR", "OR needs a term after it"),
    ("budget AND", "AND needs a term after it"),
    ("AND budget", "AND needs a term before it"),
    ("NOT", "NOT needs a term after it"),
    ("-tax", "NOT needs a term to search for beside it"),
    ("budget OR -tax", "NOT needs a term to search for beside it"),
    ("NOT NOT budget", "NOT twice"),
    ("*", "'*' must follow a word"),
    ("b*", "'*' must follow a word of at least 2"),
    ("bu*dget", "'*' may only end a word (character 3"),
    ("e-ma*", "'*' must follow a word"),
    ("(" * 9 + "a" + ")" * 9, "nested more than 8 deep"),
    ("x" * 101, "a word of 101 characters"),
    ("a " * 65, "more than 64 terms"),
    ("a" * 1001, "at most 1000"),
])  # fmt: skip
def test_bad_queries_say_what_and_where(query: str, message: str) -> None:
    with pytest.raises(SearchQueryError, match=r"^search: ") as caught:
        parse(query)
    assert message in str(caught.value)


def test_fts5_gets_quoted_words_only() -> None:
    assert to_fts5(parse('budg* -"state tax" OR NEAR')) == (
        '(((\"budg\"*) NOT (\"state tax\")) OR \"near\")')


def test_tsquery_ors_the_variants_and_drops_what_cannot_match() -> None:
    tree = parse("budget -tax")
    variants = {W("budget"): ["'budget'"], W("tax"): ["'tax'", "'tax':*"]}
    assert to_tsquery(tree, variants) == "((('budget')) & !(('tax') | ('tax':*)))"
    assert to_tsquery(tree, {W("tax"): ["'tax'"]}) is None  # budget: no lexeme at all
    assert to_tsquery(tree, {W("budget"): ["'budget'"]}) == "((('budget')))"


def test_folding_matches_the_index() -> None:
    assert words("Ĳssel-Café, Қазақстан; Йошкар_Ола 2027") == [
        "ĳssel", "cafe", "қазақстан", "йошкар", "ола", "2027"]  # fmt: skip
    assert fold("ÀÉÎÕÜ") == "aeiou" and fold("Ё") == "ё"  # Cyrillic keeps its letters


def test_language_to_configuration() -> None:
    assert [pg_config(x) for x in ("ru", "ru-RU", "EN_us", "kk", "kk-KZ", None, "")] == [
        "russian", "russian", "english", "simple", "simple", "simple", "simple"]  # fmt: skip


def test_summary_html_becomes_text() -> None:
    assert plain("<p>One &amp; <b>two</b></p><p>three</p>").split() == ["One", "&", "two", "three"]
    assert plain("\ue000marked\ue001") == "marked"  # the highlight markers never come from text
    assert plain("<" * 100_000) == "<" * 100_000  # linear: "<[^>]*>" was quadratic here


HOSTILE = [
    "'; DROP TABLE items; --", '") OR 1=1 --', "title:secret", "secret:budget",
    "body:x OR summary:y",
    "NEAR(a b)", "a NEAR b", "a + b", "^start", "{title}: x", "col:*", "\x00", "a\x00b",
    "\u202eevil", "🙂", "::::", "a'b'c", "a\\b", "'quoted'", "$1", "%s", "%(x)s", ":name",
    "a & b | !c", "a <-> b", "a:*", "a:B", "(a) (b)", "a -(b OR c)", '"a" "b"', '""', '" "',
    "-", "--", "- a", "a -", "AND", "OR", "( )", ")(", "*a", "a**", "ab**", "\"ab*\"",
]  # fmt: skip


@pytest.fixture
def small(store: Store) -> Store:
    store.sync_feeds([FeedConfig("https://x.example/feed")], T0)
    poll(store, "https://x.example/feed", T0, [
        entry(1, title="Secret budget: a and b", summary="Plain text, start to finish."),
    ])  # fmt: skip
    return store


def test_hostile_queries_are_errors_or_searches(small: Store) -> None:
    answers = {}
    for query in HOSTILE:
        try:
            answers[query] = len(small.search(query).hits)
        except SearchQueryError as exc:
            assert str(exc).startswith("search: ") and "\n" not in str(exc)
            answers[query] = str(exc)
    assert answers["secret:budget"] == 1  # punctuation separates words: "secret budget"
    assert answers["title:secret"] == 0  # no column filter: the words "title secret"
    assert answers["'; DROP TABLE items; --"] == 0
    assert "search: " in str(answers["*a"])


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list('ab Й-*"():\'&|!<>^\\OR NOT AND\x00é')), max_size=40))
def test_any_text_is_an_error_or_a_search(small: Store, query: str) -> None:
    try:
        page = small.search(query)
    except SearchQueryError:
        return
    assert page.total is not None and page.total >= 0



@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_the_ascii_fast_path_of_index_text_folds_as_words_does(text: str) -> None:
    """ASCII text takes one ``translate``; it must split and fold as ``words`` does."""
    assert index_text(text) == " ".join(words(text))


def test_index_text_of_every_ascii_character() -> None:
    every = "".join(map(chr, range(128)))
    assert index_text(every) == "0123456789 abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz"
    assert index_text("e-mail title:Budget_2026 Café") == "e mail title budget 2026 cafe"

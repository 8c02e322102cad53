"""No regex in the parsing path reads unbounded input in more than linear time (issue 10, item 3).

Each input is generated at a size where the old pattern was exponential or quadratic (minutes
to forever), and each test checks the result too. No timed assertion: the timeout below is
what fails a regression.
"""

from __future__ import annotations

import pytest

from aggregator.feeds.fastrules import split_author
from aggregator.feeds.xmlsafety import find_root, last_entry_unclosed, looks_like_html
from aggregator.feeds.xmltext import MAX_PERSON, bound_people, repair_char_refs
from aggregator.schedule.freshness import cache_directives

pytestmark = pytest.mark.timeout(60)
N = 100_000


@pytest.mark.parametrize(
    ("body", "html"),
    [
        (b"<!---->" * 140 + b"<html><body>", True),  # (<!--.*?-->\s*)* : 2**140 ways to fail
        (b"<!---->" * 140 + b"<rss>", False),
        (b"<!-- a -->\n" * 90 + b"<!DOCTYPE html>", True),
        (b"<!--" * 250, False),
        (b"\xef\xbb\xbf  <!-- x --> <HTML lang=en>", True),
    ],
)
def test_html_sniffing_skips_comments_in_a_loop(body: bytes, html: bool) -> None:
    assert looks_like_html(body) is html


def test_doctype_scan_with_unclosed_comments_is_linear() -> None:
    text = "<!DOCTYPE rss [" + "<!--" * N + "]><rss/>"
    assert find_root(text) == (text.index("<rss/>"), "DTD internal subset removed")


def test_many_declarations_before_the_root_are_linear() -> None:
    text = "<!a>" * N + "<rss/><!-- -->"
    assert find_root(text) == (4 * N, None)


def test_a_truncated_entry_is_found_past_junk_tags() -> None:
    assert last_entry_unclosed(b"<item>" + b"<itemX " * N)
    assert not last_entry_unclosed(b"<item>" + b"<itemX " * N + b"</item>")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a" + " " * N + "!", {"a": ""}),  # adjacent \s* around an optional part: quadratic
        ("max-age=60" + " " * N + "junk, public", {"max-age": "60", "public": ""}),
        (", " * N + "max-age=5", {"max-age": "5"}),
        ('private="a, b", max-age = 7', {"private": "a, b", "max-age": "7"}),
        ('a="' + " " * N, {"a": ""}),
    ],
)
def test_cache_control_parsing_is_linear(value: str, expected: dict[str, str]) -> None:
    assert cache_directives(value) == expected


def test_person_search_reads_the_text_once() -> None:
    opened = "<author>" * N + "a" * 1000  # no end tag: each start used to search to the end
    assert bound_people(opened) == (opened, 0)
    nested = "<author>" * N + "b" * 1000 + "</author>"
    cut, count = bound_people(nested)
    assert count == 1 and cut.endswith("b" * MAX_PERSON + "</author>")
    atom = "<author>" * N + "<name>n</name>" + "c" * 1000 + "</author>"
    assert bound_people(atom) == (atom, 0)


@pytest.mark.parametrize("section", ["<![CDATA[{}]]>", "<!--{}-->"])
def test_a_person_element_inside_a_cdata_section_or_comment_is_text(section: str) -> None:
    text = "<content:encoded>" + section.format("<author>" + "x" * 1000 + "</author>") + "</c>"
    assert bound_people(text) == (text, 0)
    unclosed = section.split("{}")[0] + "<author>" * N  # unclosed: runs to the end, read once
    assert bound_people(unclosed) == (unclosed, 0)


def test_person_cut_never_splits_a_reference() -> None:
    text = "<author>" + "x" * (MAX_PERSON - 3) + "&amp;" * 10 + "</author>"
    cut, count = bound_people(text)
    assert count == 1 and cut == "<author>" + "x" * (MAX_PERSON - 3) + "</author>"


@pytest.mark.parametrize("section", ["<![CDATA[", "<!--"])
def test_unclosed_sections_do_not_rescan(section: str) -> None:
    text = section * N + "&#1;"  # inside an unclosed section a reference is text
    assert repair_char_refs(text) == (text, 0)
    assert repair_char_refs("&#1;" + section * N) == (section * N, 1)


def test_the_fast_paths_mail_split_reads_a_bounded_prefix() -> None:
    """prepare_xml cuts person fields first; read_fast given raw bytes must not stall either."""
    assert split_author("a" * N) == "a" * N
    assert split_author("x@example.org (Ann)") == "Ann"

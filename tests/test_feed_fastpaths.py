"""The parse's shortcuts (issue 14) give what the plain code they spare gives, on any text.

Each shortcut is checked against the slow form it replaces, kept here verbatim as the oracle,
on hand-picked traps and on Hypothesis text built from the characters that matter.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.feeds import xmltext
from aggregator.feeds.xmltext import (
    bound_people,
    code_point,
    is_xml_char,
    squeeze_namespaces,
    without_illegal_chars,
)

pytestmark = pytest.mark.timeout(120)

# ------------------------------------------------------------ the slow forms, as they were

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_OLD_XMLNS = re.compile(r"""(\sxmlns(?::[\w.-]+)?\s*=\s*)(["'])(.*?)\2""", re.DOTALL)
_CHAR_REF = re.compile(r"&#([xX][0-9A-Fa-f]+|[0-9]+);")


def _unless_space(match: re.Match[str]) -> str:
    code = code_point(match.group(1))
    return "" if code is not None and is_xml_char(code) and chr(code).isspace() else match.group(0)


def _old_squeeze(match: re.Match[str]) -> str:
    value = match.group(3)
    if "&#" in value:
        value = _CHAR_REF.sub(_unless_space, value)
    if not any(c.isspace() for c in value) and value == match.group(3):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{''.join(value.split())}{match.group(2)}"


def old_squeeze_namespaces(text: str) -> str:
    return _OLD_XMLNS.sub(_old_squeeze, text)


# ------------------------------------------------------------ text made of what matters

_PIECES = [
    "xmlns", "xmlns:dc", " xmlns", "\txmlns:a", "=", " = ", '"', "'", "http://a b/", "&#x20;",
    "&#32;", "&#x85;", "&#xD800;", "\u0085", "\u3000", "x", "<", ">", "<author>", "</author>",
    "<dc:Creator a='1'>", "</dc:Creator>", "<![CDATA[", "]]>", "<!--", "-->", "\x00", "\x08",
    "\t", "\n", "\x1f", "\x7f", "\ud800", "\udfff", "\ufffe", "\uffff", "\ud55c", "\ud7a3",
    "é", "€", "\U0001f600", "<publi\u017fher>", "<URI>", "<ur\u0131>", "<NAME>", "a" * 300,
]  # fmt: skip
texts = st.lists(st.sampled_from(_PIECES) | st.text(max_size=5), max_size=40).map("".join)


@given(texts)
@settings(max_examples=400, deadline=None)
def test_without_illegal_chars_is_the_regex(text: str) -> None:
    assert without_illegal_chars(text) == _ILLEGAL_XML.sub("", text)


@pytest.mark.parametrize(
    "text",
    ["", "plain", "\x00", "a\x0bb", "tab\tnl\nok\r", "\ud800", "\ufffe", "\uffff", "\ud55c",
     "\ud7ff\ue000", "€\x1f", "\U0010ffff"],
)  # fmt: skip
def test_without_illegal_chars_cases(text: str) -> None:
    assert without_illegal_chars(text) == _ILLEGAL_XML.sub("", text)


@given(texts)
@settings(max_examples=400, deadline=None)
def test_squeeze_namespaces_is_the_regex(text: str) -> None:
    assert squeeze_namespaces(text) == old_squeeze_namespaces(text)


@pytest.mark.parametrize(
    "text",
    [
        '<rss xmlns:a="http://x y/">',
        "xmlns='a b' at the start, then <a xmlns='c d'>",
        '<a\txmlns:dc = "ur n:&#x20;x" axmlns="p q" xmlns="r&#32;s">',
        '<a xmlns="unclosed',
        '<a bxmlns="swallows  xmlns=\'x y\'" xmlns="z w">',
        '<a xmlns="no spaces" xmlns:b="&#x41;">',
    ],
)
def test_squeeze_namespaces_cases(text: str) -> None:
    assert squeeze_namespaces(text) == old_squeeze_namespaces(text)


def test_person_guard_reads_case_as_ignorecase_does() -> None:
    """Every character that IGNORECASE matches to a letter of a person field's name is in the
    guard's class for that letter, and no other."""
    letters = set("".join(xmltext._PERSON_NAMES))
    any_letter = re.compile("[a-z]", re.IGNORECASE)
    folding = [chr(c) for c in range(0x110000) if any_letter.fullmatch(chr(c))]
    for letter in letters:
        wanted = {c for c in folding if re.fullmatch(letter, c, re.IGNORECASE)}
        assert wanted == set(re.findall(".", xmltext._any_case(letter).strip("[]")))


@given(texts)
@settings(max_examples=400, deadline=None)
def test_person_guard_misses_no_person_field(text: str) -> None:
    starts = [m for m in xmltext._PERSON_START.finditer(text) if m.group(1)]
    if starts:
        assert xmltext._ANY_PERSON.search(text) is not None


@given(texts)
@settings(max_examples=200, deadline=None)
def test_bound_people_with_a_small_limit(text: str) -> None:
    """A small limit makes cuts common: the guard must never skip one."""
    guard = xmltext._ANY_PERSON
    try:
        xmltext._ANY_PERSON = re.compile("")  # always "maybe": the scan always runs
        slow = bound_people(text, limit=3)
    finally:
        xmltext._ANY_PERSON = guard
    assert bound_people(text, limit=3) == slow

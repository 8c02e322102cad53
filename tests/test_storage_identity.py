"""Canonical URLs and fingerprints: what folds together, what must not, and idempotence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from storage.identity import content_fingerprint, normalize_url


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://Example.COM:80/a?utm_source=x&b=2&a=1#frag", "https://example.com/a?a=1&b=2"),
        ("https://example.com:443", "https://example.com/"),
        ("https://user:pw@example.com./p", "https://example.com/p"),
        ("https://example.com/p?fbclid=1&gclid=2&mc_cid=3&MC_EID=4", "https://example.com/p"),
        ("https://example.com:8080/p%2fq", "https://example.com:8080/p%2Fq"),
        ("https://bücher.example/x y", "https://xn--bcher-kva.example/x%20y"),
        ("https://www.example.com/a/", "https://www.example.com/a/"),
        ("https://example.com/?b=1&a=2&b=0", "https://example.com/?a=2&b=1&b=0"),
    ],
)
def test_normalization(raw: str, canonical: str) -> None:
    assert normalize_url(raw) == canonical


@pytest.mark.parametrize("raw", ["", "tag:example.com,2024:1", "mailto:x@example.com", "https://",
                                 "http://[::1", "https://example.com:99999/"])  # fmt: skip
def test_not_a_web_url(raw: str) -> None:
    assert normalize_url(raw) is None


@given(urls())
def test_normalizing_web_urls_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert once is not None
    assert normalize_url(once) == once


@given(st.text())
def test_normalizing_any_text_is_idempotent_and_never_raises(text: str) -> None:
    once = normalize_url(text)
    assert once is None or normalize_url(once) == once


WORDS = st.text(alphabet=st.characters(exclude_characters="<>&", exclude_categories=["Cs"]))


@given(st.text(alphabet="abcXYZ ", max_size=30), WORDS)
def test_fingerprint_ignores_markup_case_and_spacing(title: str, words: str) -> None:
    body = "Long enough body. " * 5 + words
    fp = content_fingerprint(title, body)
    assert fp is not None
    assert content_fingerprint(f"  {title.swapcase()} ", f"<p>{body}</p>\n") == fp


def test_short_bodies_have_no_fingerprint() -> None:
    assert content_fingerprint("Title", "Read more") is None
    long = "A real paragraph of text. " * 5
    assert content_fingerprint("T", long) == content_fingerprint("t", f"<p>{long}</p>")
    assert content_fingerprint("T", long) != content_fingerprint("Other", long)

"""decode_html: HTTP charset, BOM, <meta>, detection, in the WHATWG order, never raising."""

from __future__ import annotations

import codecs

from hypothesis import given
from hypothesis import strategies as st

from aggregator.extract import decode_html

TEXT = "<p>Қазақстан Президенті — Привет, мир — Grüße</p>"


def test_header_charset() -> None:
    body = TEXT.encode("utf-8")
    assert decode_html(body, "text/html; charset=UTF-8") == TEXT
    cyr = "<p>Привет, мир</p>"
    assert decode_html(cyr.encode("cp1251"), 'text/html; charset="windows-1251"') == cyr


def test_bom_beats_header() -> None:
    body = codecs.BOM_UTF8 + TEXT.encode("utf-8")
    assert decode_html(body, "text/html; charset=iso-8859-1") == TEXT


def test_utf16_with_and_without_bom() -> None:
    assert decode_html(TEXT.encode("utf-16"), None) == TEXT  # Python writes a BOM
    assert decode_html(TEXT.encode("utf-16-le"), "text/html; charset=utf-16le") == TEXT
    assert decode_html(TEXT.encode("utf-16-le"), None) == TEXT
    assert decode_html(TEXT.encode("utf-16-be"), "text/html") == TEXT


def test_meta_charset_and_http_equiv() -> None:
    page = '<html><head><meta charset="windows-1251"></head><body>Привет</body></html>'
    assert decode_html(page.encode("cp1251"), "text/html") == page
    page2 = ('<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
             "<p>Привет, мир, как дела</p>")
    assert decode_html(page2.encode("koi8_r"), None) == page2


def test_meta_claiming_utf16_means_utf8() -> None:
    page = '<meta charset="utf-16"><p>Grüße</p>'
    assert decode_html(page.encode("utf-8"), None) == page


def test_lying_header_falls_through() -> None:
    """A header saying UTF-8 over cp1251 bytes: the <meta> or detection must win."""
    page = '<meta charset="windows-1251"><p>Привет, мир</p>'
    assert decode_html(page.encode("cp1251"), "text/html; charset=utf-8") == page


def test_detection_without_any_declaration() -> None:
    page = "<p>" + "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 5 + "</p>"
    assert decode_html(page.encode("cp1251"), None) == page


def test_unknown_labels_and_nul() -> None:
    assert decode_html(b"<p>a\x00b</p>", "text/html; charset=x-no-such") == "<p>ab</p>"


@given(st.binary(max_size=2000), st.sampled_from([None, "text/html", "text/html; charset=utf-8",
                                                  "text/html; charset=bogus", "charset=utf-16"]))
def test_never_raises(body: bytes, content_type: str | None) -> None:
    assert isinstance(decode_html(body, content_type), str)

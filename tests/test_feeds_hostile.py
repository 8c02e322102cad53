"""parse_feed against hostile and broken bytes: entity bombs, XXE, depth, size, encodings, JSON."""

from __future__ import annotations

import codecs
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.feeds.parse import ParsedFeed, parse_feed
from tests.feedfixtures import FEED_URL, item, rss
from tests.httpserver import TestServer

pytestmark = pytest.mark.timeout(20)

BILLION_LAUGHS = """<!DOCTYPE rss [
<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>"""


@contextmanager
def bounded(seconds: float, megabytes: float) -> Iterator[None]:
    """Fail if the block takes longer or allocates more (Python heap peak) than allowed."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f}s"
    assert peak < megabytes, f"peak {peak:.0f} MiB"


def parse_or_error(body: bytes) -> ParsedFeed | None:
    try:
        return parse_feed(body, FEED_URL, {})
    except ParseError:
        return None


def test_billion_laughs_is_not_expanded() -> None:
    body = rss(item("&lol9;", guid="g"), prolog=BILLION_LAUGHS)
    with bounded(seconds=2, megabytes=20):
        parsed = parse_feed(body, FEED_URL, {})
    assert "lollol" not in repr(parsed)
    assert parsed.warning and "DTD internal subset removed" in parsed.warning
    assert [e.guid for e in parsed.entries] == ["g"]


def test_quadratic_blowup_is_not_expanded() -> None:
    """feedparser alone expands this 60 KB document to 150 MB (its loose-parser fallback)."""
    prolog = f'<!DOCTYPE rss [\n<!ENTITY a "{"x" * 50_000}">\n]>'
    body = rss(item("q", guid="g", description="&a;" * 3_000), prolog=prolog)
    with bounded(seconds=3, megabytes=30):
        parsed = parse_feed(body, FEED_URL, {})
    summary = parsed.entries[0].summary or ""
    assert "xxxxxxxxxx" not in summary and len(summary) < 20_000


def test_dtd_hidden_after_junk_and_comments_is_still_removed() -> None:
    prolog = f"junk <!-- a > b --> more junk <?pi x?>{BILLION_LAUGHS.replace('rss [', 'rss  [')}"
    body = rss(item("&lol9;", guid="g"), prolog=prolog)
    with bounded(seconds=2, megabytes=20):
        parsed = parse_or_error(body)
    assert parsed is None or "lollol" not in repr(parsed)


def test_comments_inside_the_dtd_cannot_desynchronize_the_scan() -> None:
    prolog = (
        "<!DOCTYPE rss [\n<!-- ]> <b>not the root</b> -->\n"
        '<!ENTITY a "<b>&#60;fake root</b>">\n' + BILLION_LAUGHS.split("[", 1)[1]
    )
    with bounded(seconds=2, megabytes=20):
        parsed = parse_feed(rss(item("&lol9;&a;", guid="g"), prolog=prolog), FEED_URL, {})
    assert [e.guid for e in parsed.entries] == ["g"] and "lollol" not in repr(parsed)
    clean = parse_feed(rss(item("x", guid="g"), prolog=prolog), FEED_URL, {})
    assert clean.warning == "DTD internal subset removed"  # the whole DTD, nothing left over


def test_entity_values_containing_markup_do_not_hide_the_root() -> None:
    prolog = "<!DOCTYPE rss [<!ENTITY a \"<rss>]>&#60;\"> <!ENTITY b 'x'>]>"
    parsed = parse_feed(rss(item("&a;&b;", guid="g"), prolog=prolog), FEED_URL, {})
    assert [e.guid for e in parsed.entries] == ["g"]


@pytest.mark.parametrize("kind", ["general", "parameter", "external_dtd"])
def test_xxe_to_a_file_reads_nothing(tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-31415")
    prolog = {
        "general": f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>',
        "parameter": f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>',
        "external_dtd": f'<!DOCTYPE rss SYSTEM "file://{secret}">',
    }[kind]
    parsed = parse_or_error(rss(item("&xxe;", guid="g", description="&xxe;"), prolog=prolog))
    assert "TOP-SECRET" not in repr(parsed)


@pytest.mark.parametrize("kind", ["general", "parameter", "external_dtd"])
def test_xxe_to_a_url_fetches_nothing(http_server: TestServer, kind: str) -> None:
    http_server.route(
        "/evil", body=b'<!ENTITY xxe "FETCHED">', headers={"Content-Type": "text/xml"}
    )
    url = http_server.url("/evil")
    prolog = {
        "general": f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">]>',
        "parameter": f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{url}"> %p;]>',
        "external_dtd": f'<!DOCTYPE rss SYSTEM "{url}">',
    }[kind]
    parsed = parse_or_error(rss(item("&xxe;", guid="g"), prolog=prolog))
    assert "FETCHED" not in repr(parsed)
    assert http_server.hits("/evil") == 0


def deep(n: int, closed: bool) -> bytes:
    inner = "<a>" * n + ("</a>" * n if closed else "")
    return rss(item(1, guid="g", description="x") + f"<item><title>deep</title>{inner}</item>")


@pytest.mark.parametrize("closed", [True, False], ids=["well-formed", "unclosed"])
def test_100k_deep_nesting_fails_fast_or_parses(closed: bool) -> None:
    with bounded(seconds=10, megabytes=200):
        parsed = parse_or_error(deep(100_000, closed))
    if parsed is not None:
        assert parsed.entries and parsed.entries[0].guid == "g"


def test_deep_well_formed_nesting_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ParseError, match="nested deeper than"):
        parse_feed(deep(100_000, closed=True), FEED_URL, {})


@pytest.mark.timeout(40)
def test_100k_items_are_capped_in_bounded_time() -> None:
    body = rss("".join(item(n, guid=f"g{n}") for n in range(100_000)))
    started = time.perf_counter()
    parsed = parse_feed(body, FEED_URL, {})
    assert time.perf_counter() - started < 15  # about 1.5 s on an idle 2-core machine
    assert len(parsed.entries) == 10_000
    assert parsed.warning and "more than 10000 entries" in parsed.warning


@pytest.mark.timeout(40)
def test_100k_items_in_a_malformed_document_are_capped_too() -> None:
    body = rss("".join(item(n, guid=f"g{n}", description="&nbsp;") for n in range(100_000)))
    started = time.perf_counter()
    parsed = parse_feed(body, FEED_URL, {})
    assert time.perf_counter() - started < 15  # about 1.5 s on an idle 2-core machine
    assert len(parsed.entries) == 10_000


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_50mb_text_node_stays_within_a_few_times_its_size() -> None:
    size = 50 * 2**20
    body = rss(item(1, guid="g", description="a" * size))
    with bounded(seconds=30, megabytes=8 * size / 2**20):  # measured: 6x, 1.6 s idle
        parsed = parse_feed(body, FEED_URL, {})
    assert len(parsed.entries[0].summary or "") == size


UTF16_TEXT = '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>Ünï</title>'


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
        ("utf-32-le", b""),
        ("utf-8", codecs.BOM_UTF8),
    ],
)
def test_utf16_with_and_without_bom(encoding: str, bom: bytes) -> None:
    text = UTF16_TEXT + item("Ψ", guid="g") + "</channel></rss>"
    parsed = parse_feed(bom + text.encode(encoding), FEED_URL, {})
    assert parsed.title == "Ünï" and parsed.entries[0].title == "Item Ψ"


def test_dtd_inside_utf16_is_found_in_the_decoded_text() -> None:
    text = rss(item("&lol9;", guid="g"), prolog=BILLION_LAUGHS).decode()
    with bounded(seconds=2, megabytes=20):
        parsed = parse_feed(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), FEED_URL, {})
    assert "lollol" not in repr(parsed) and parsed.entries


@pytest.mark.parametrize(
    ("declared", "actual", "headers"),
    [
        ("utf-8", "cp1252", {}),  # says UTF-8, is Windows-1252 ("é" is a lone 0xE9)
        ("iso-8859-1", "utf-8", {}),  # says Latin-1, is UTF-8
        ("utf-16", "utf-8", {}),  # says UTF-16 in a plainly ASCII-readable prolog
        ("utf-8", "utf-8", {"content-type": "application/rss+xml; charset=koi8-r"}),
        ("klingon", "utf-8", {}),  # no such codec
    ],
)
def test_declared_encoding_that_lies(declared: str, actual: str, headers: dict[str, str]) -> None:
    body = (
        rss(item("Café", guid="g")).decode().replace('encoding="utf-8"', f'encoding="{declared}"')
    )
    parsed = parse_feed(body.encode(actual), FEED_URL, headers)
    assert parsed.entries[0].title == "Item Café"


def test_lying_encoding_is_reported() -> None:
    body = rss(item("Café", guid="g")).decode().encode("cp1252")
    assert "does not fit" in (parse_feed(body, FEED_URL, {}).warning or "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "invalid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"items": []}', "version missing or unknown"),
        (b'{"version": "https://jsonfeed.org/version/9", "items": []}', "version missing"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "'items' is missing"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": {}}', "not a list"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not an object"),
        (
            b'{"version": "https://jsonfeed.org/version/1", "items": [' + b"1" * 5000 + b"]}",
            "invalid JSON",
        ),
    ],
)
def test_bad_json_feeds_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, FEED_URL, {"content-type": "application/feed+json"})


def test_json_junk_items_are_skipped_and_capped() -> None:
    items = [1, "x", None] + [{"id": str(n), "url": f"/p/{n}"} for n in range(10_005)]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
    parsed = parse_feed(body.encode(), FEED_URL, {})
    assert len(parsed.entries) == 9_997
    assert parsed.warning and "3 items are not objects" in parsed.warning
    assert "kept the first 10000" in parsed.warning


def test_json_detected_by_content_type_even_with_leading_garbage() -> None:
    body = b'\n\n  {"version": "https://jsonfeed.org/version/1.1", "items": []}'
    assert parse_feed(body, FEED_URL, {"Content-Type": "application/feed+json"}).entries == ()


@pytest.mark.parametrize(
    "mutate",
    [lambda b: b.replace(b"<title>", b"<title>\x00\x01\x02"), lambda b: b[:-16], lambda b: b * 2],
    ids=["control-bytes", "truncated", "doubled"],
)
def test_broken_documents_keep_their_entries(mutate: Callable[[bytes], bytes]) -> None:
    body = rss("".join(item(n, guid=f"g{n}") for n in range(3)))
    parsed = parse_feed(mutate(body), FEED_URL, {})
    assert [e.guid for e in parsed.entries][:3] == ["g0", "g1", "g2"]
    assert all("\x00" not in (e.title or "") for e in parsed.entries)


def test_whitespace_inside_a_namespace_uri_does_not_crash_the_parser() -> None:
    """xml.sax splits "uri localname" on any whitespace (found by fuzzing: \\x1f, \\xa0)."""
    body = rss(item(1, guid="g")).replace(
        b'<rss version="2.0">', '<rss version="2.0" xmlns:x="http://a\x1fb\xa0c/">'.encode()
    )
    assert [e.guid for e in parse_feed(body, FEED_URL, {}).entries] == ["g"]

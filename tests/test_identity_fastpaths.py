"""The fast paths of the poll's pure work give what the plain code they replaced gives.

Identity keys, fingerprints, hashes and index texts are stored: a fast path that differed by a
byte would split a story in two or miss a search. Each is checked against the straightforward
version, kept here as the reference.
"""

from __future__ import annotations

import html
import json
import re
import sys

from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from storage import identity, searchindex
from storage.identity import content_hash, normalize_url, plain_text
from storage.records import Enclosure

WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(r"\s", c))
TEXTS = st.text(alphabet=st.sampled_from("ab <>&;/\n\t\x1c\x85\xa0\u2028\u3000") | st.characters())


def _plain_text(value: str | None) -> str:
    if not value:
        return ""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]*>", " ", value))).strip().casefold()


def _index_plain(markup: str | None) -> str:
    if not markup:
        return ""
    markers = str.maketrans("", "", "\ue000\ue001")
    if "<" not in markup and "&" not in markup:
        return markup.translate(markers)
    block = re.compile(r"</?(?:p|br|div|li|h[1-6]|blockquote|tr)\b", re.I)
    tagless = re.sub(r"<[^<>]*>", " ", block.sub("\n\\g<0>", markup))
    return html.unescape(tagless).translate(markers)


def test_every_whitespace_character_is_collapsed_alike() -> None:
    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert spaces == WHITESPACE  # re's \s is str.split's whitespace
    value = f"{WHITESPACE} a{WHITESPACE}b <p>c</p>{WHITESPACE}"
    assert plain_text(value) == _plain_text(value) == "a b c"


@given(TEXTS)
@example("<P>One</P>\r\n<br/>  two &amp;&nbsp;three\u2029")
def test_plain_text_is_the_regex_version(value: str) -> None:
    assert plain_text(value) == _plain_text(value)


@given(TEXTS)
@example("<p>a</p><BR>b<blockquote>c</blockquote><pre>d</pre><h7>e</h7><trx>f \ue000g\ue001")
@example("a\ue000b")
def test_index_text_is_the_template_version(value: str) -> None:
    assert searchindex.plain(value) == _index_plain(value)


@given(st.from_regex(identity._SIMPLE_URL, fullmatch=True))
@example("HTTP://Example.COM.:0080/a/b;c=d?utm_source=x&b=%7e#frag")
@example("https://example.com:99999/")
@example("http://./")
def test_the_usual_url_is_split_as_urlsplit_splits_it(url: str) -> None:
    simple = identity._simple_parts(url)
    if simple is not None:  # None: the general case (a port past 65535, which it refuses)
        assert simple == identity._parts(url)


@given(st.from_regex(identity._SIMPLE_URL, fullmatch=True) | urls() | st.text())
def test_normalize_url_is_the_urlsplit_version(url: str) -> None:
    assert normalize_url.__wrapped__(url) == _normalize_url(url)


def _normalize_url(url: str) -> str | None:
    """The version before the fast path: urlsplit and urlunsplit."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = identity._host(parts.hostname or "")
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in identity.DEFAULT_PORTS or not host:
        return None
    if port is not None and port not in identity.DEFAULT_PORTS.values():
        host = f"{host}:{port}"
    path = identity._escape(parts.path or "/", identity._SAFE_PATH)
    key = urlunsplit(("https", host, path, identity._query(parts.query), ""))
    if len(key) > identity.MAX_KEY_URL:
        return f"https://{host}/~long-url-{identity.sha256_text(key)[:40]}"
    return key


@given(st.none() | TEXTS, st.none() | TEXTS, st.none() | TEXTS,
       st.lists(st.builds(Enclosure, TEXTS, st.none() | TEXTS, st.none() | st.integers(),
                          st.none() | st.integers()), max_size=2))  # fmt: skip
def test_content_hash_is_the_json_dumps_version(
    title: str | None, summary: str | None, text: str | None, encl: list[Enclosure]
) -> None:
    parts: list[object] = [title, summary, text]
    if encl:
        parts.append([[e.url, e.type, e.length, e.duration] for e in encl])
    expected = identity.sha256_text(json.dumps(parts, ensure_ascii=False))
    assert content_hash.__wrapped__(title, summary, text, tuple(encl)) == expected

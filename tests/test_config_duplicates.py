"""Duplicate feeds are judged as the archive judges links: one normalizer (storage.identity).

The configuration check used to lower-case whole URLs (refusing `/feed/Case.xml` beside
`/feed/case.xml`) while `:80`, `#fragment`, `%7E`, IDN and query order slipped through.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config.settings import load_settings
from aggregator.errors import ConfigError
from storage.identity import normalize_url


def feeds_file(tmp_path: Path, *urls: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n" + "".join(f"  - url: '{u}'\n" for u in urls), encoding="utf-8")
    return path


@pytest.mark.parametrize("first, second", [
    ("https://a.example/feed/Case.xml", "https://a.example/feed/case.xml"),  # paths have case
    ("https://a.example/feed", "https://a.example/feed/"),
    ("https://a.example/index.php?rss=news", "https://a.example/index.php?rss=sport"),
    ("https://a.example/f?utm_source=x", "https://a.example/f?utm_source=y"),  # kept for feeds
    ("https://a.example/f", "https://a.example:8443/f"),
    ("https://a.example/~a/f", "https://a.example/%7Eb/f"),
])
def test_different_feeds_are_accepted(tmp_path: Path, first: str, second: str) -> None:
    settings = load_settings(feeds_file(tmp_path, first, second), env={})
    assert [f.url for f in settings.feeds] == [first, second]


@pytest.mark.parametrize("first, second", [
    ("https://a.example/f", "https://A.Example/f"),
    ("http://a.example/f", "http://a.example:80/f"),
    ("https://a.example/f", "https://a.example:443/f"),
    ("https://a.example/f", "https://a.example/f#top"),
    ("https://a.example/~user/f", "https://a.example/%7Euser/f"),
    ("https://a.example/%7euser/f", "https://a.example/%7Euser/f"),
    ("http://bücher.example/f", "http://xn--bcher-kva.example/f"),
    ("http://straße.example/f", "http://xn--strae-oqa.example/f"),
    ("https://a.example/f?a=1&b=2", "https://a.example/f?b=2&a=1"),
    ("https://a.example./f", "https://a.example/f"),
    ("http://a.example/f", "https://a.example/f"),  # the archive folds the schemes
])
def test_real_duplicates_are_refused_naming_both_lines(
    tmp_path: Path, first: str, second: str
) -> None:
    path = feeds_file(tmp_path, "https://other.example/f", first, second)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert message.startswith(f"config: {path}:4: feeds[2].url: the same feed twice ({second}, "
                              f"first at line 3 as {first}; both are https://")


def test_the_same_text_twice_keeps_the_short_message(tmp_path: Path) -> None:
    path = feeds_file(tmp_path, "https://a.example/f", "https://a.example/f")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == (f"config: {path}:3: feeds[1].url: the same feed twice "
                               "(https://a.example/f, first at line 2)")


# Property tests: the normalizer is idempotent, and spelling variants of one URL meet.
_PATH_CHARS = st.characters(codec="utf-8", exclude_characters="#?\x00")
_segment = st.text(_PATH_CHARS, max_size=8)
_host = st.sampled_from(["a.example", "Bücher.example", "xn--bcher-kva.example", "A.B.example.",
                         "[::1]", "127.0.0.1", "straße.example"])
_query = st.lists(st.tuples(st.text(_PATH_CHARS, min_size=1, max_size=5),
                            st.text(_PATH_CHARS, max_size=5)), max_size=4)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = "/".join(draw(st.lists(_segment, max_size=4)))
    query = "&".join(f"{k}={v}" for k, v in draw(_query))
    fragment = draw(st.sampled_from(["", "#x", "#"]))
    return f"{scheme}://{draw(_host)}{port}/{path}" + (f"?{query}" if query else "") + fragment


@given(urls(), st.booleans())
def test_normalization_is_idempotent(url: str, drop_tracking: bool) -> None:
    once = normalize_url(url, drop_tracking=drop_tracking)
    assert once is not None
    assert normalize_url(once, drop_tracking=drop_tracking) == once


@given(urls())
def test_escaping_unreserved_characters_changes_nothing(url: str) -> None:
    """RFC 3986 §6.2.2.2: `%7E` and `~`, `%41` and `A` name the same resource."""
    head, _, rest = url.partition("://")
    host, slash, tail = rest.partition("/")
    escaped = "".join(f"%{ord(c):02x}" if c.isascii() and (c.isalnum() or c in "-._~") else c
                      for c in tail)
    assert normalize_url(f"{head}://{host}{slash}{escaped}") == normalize_url(url)


@given(st.text(_PATH_CHARS, max_size=12))
def test_the_path_keeps_its_case_and_reserved_escapes(segment: str) -> None:
    url = "https://a.example/" + quote(segment, safe="")
    upper = "https://a.example/" + quote(segment.swapcase(), safe="")
    assert (normalize_url(url) == normalize_url(upper)) == (segment == segment.swapcase())


def test_credentials_do_not_make_another_feed_and_are_never_shown(tmp_path: Path) -> None:
    """The archive knows a feed without ``user:password@`` (issue 11): with and without them it
    is one feed, and the error names it with the password redacted."""
    path = feeds_file(tmp_path, "https://a.example/f", "https://reader:s3cret@a.example/f")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "the same feed twice (https://reader:***@a.example/f" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("key", ["interval", "max_body_size"])
def test_a_value_of_a_million_spaces_is_refused_at_once(tmp_path: Path, key: str) -> None:
    """Durations and sizes are matched on the stripped value: the old pattern backtracked
    quadratically on a run of spaces (a 10 MiB file could hold one)."""
    section = "defaults" if key == "interval" else "http"
    path = tmp_path / "feeds.yaml"
    path.write_text(f"{section}:\n  {key}: '5{' ' * 1_000_000}x'\n"
                    "feeds:\n  - url: https://a.example/f\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert len(str(info.value)) < 300

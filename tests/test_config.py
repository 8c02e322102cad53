"""The configuration contract: the names users rely on, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config.settings import DEFAULT_USER_AGENT, load_settings, parse_duration, parse_size
from aggregator.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "feeds.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    return str(info.value)


def test_the_example_configuration_loads() -> None:
    settings = load_settings(EXAMPLE, env={})
    urls = [feed.url for feed in settings.feeds]
    assert "https://www.inform.kz/rss/eng.xml" in urls
    kazinform = settings.feed_configs()[urls.index("https://www.inform.kz/rss/eng.xml")]
    assert kazinform.interval == 600
    assert kazinform.tags == ("kazakhstan", "agency")


def test_documented_keys_and_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, """
http:
  user_agent: "test/1"
  timeout: 45s
  allow_private_networks: true
defaults:
  interval: 15m
  fetch_articles: false
feeds:
  - url: https://example.com/feed.xml
    title: Example
    interval: 2h
    tags: [a, b]
  - url: https://example.org/rss
"""), env={})
    assert settings.http.user_agent == "test/1"
    assert settings.http.timeout == 45
    assert settings.http.allow_private_networks is True
    first, second = settings.feed_configs()
    assert (first.title, first.interval, first.tags, first.fetch_articles) == (
        "Example", 7200, ("a", "b"), False)
    assert second.interval == 900
    # The database defaults to SQLite beside the config file, not the working directory.
    assert settings.database == f"sqlite:///{(tmp_path / 'data' / 'archive.db').resolve()}"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={})
    assert settings.feeds == ()
    assert settings.http.user_agent == DEFAULT_USER_AGENT
    assert "feed-archiver" in DEFAULT_USER_AGENT


def test_environment_overrides_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1/test"
    settings = load_settings(write(tmp_path, "feeds: []\n"), env={"AGGREGATOR_DATABASE": url})
    assert settings.database == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds:\n  - url: https://a.example/feed\n    colour: red\n",
         ":3: feeds[0].colour: unknown key"),
        ("http:\n  timeout: soon\n", ":2: http.timeout: invalid duration 'soon'"),
        ("defaults:\n  fetch_articles: maybe\n",
         ":2: defaults.fetch_articles: expected true or false, got the text 'maybe'"),
        ("feeds:\n  - url: ftp://a.example/feed\n", ":2: feeds[0].url: bad URL"),
        ("feeds:\n  - url: https:///nohost\n",
         ":2: feeds[0].url: bad URL 'https:///nohost': no host"),
        ("feeds:\n  - title: no url\n", ":2: feeds[0].url: required key is missing"),
        ("feeds:\n  - url: https://a.example/f\n  - url: https://b.example/f\n"
         "  - url: https://a.example/f\n",
         ":4: feeds[2].url: the same feed twice (https://a.example/f, first at line 2)"),
        ("bogus: 1\n", ":1: bogus: unknown key"),
        ("feeds: [\n", "invalid YAML"),
        ("- just\n- a list\n", ":1: the top level must be a mapping"),
        ("http:\n  allowed_networks: [10.0.0.0/33]\n", "bad network '10.0.0.0/33'"),
        ("feeds:\n  - url: https://a.example/f\n    interval: -5\n", "duration must be positive"),
        ("service:\n  concurrency: 0\n",
         ":2: service.concurrency: must be at least 1, got the number 0"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith("config: ")
    assert str(tmp_path / "feeds.yaml") in message
    assert expected in message


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    message = error_of(tmp_path, "http:\n  bogus: 1\nfeeds:\n  - url: nope\n")
    assert ":2: http.bogus: unknown key" in message
    assert ":4: feeds[0].url: bad URL" in message


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", env={})


@pytest.mark.parametrize(("value", "seconds"),
                         [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), (30, 30),
                          ("1.5h", 5400), ("45", 45)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "abc", "5 parsecs", True, "-1m", 0])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_sizes() -> None:
    assert parse_size("15MiB") == 15 * 2**20
    assert parse_size("500kB") == 500_000
    assert parse_size(1024) == 1024
    with pytest.raises(ValueError):
        parse_size("lots")

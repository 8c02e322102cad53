"""Secrets stay secret (issue 11): credentials in a feed URL are sent as HTTP Basic auth to
their own origin only and never stored; passwords and secret query values are redacted wherever
a URL is shown or logged. Real servers on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from aggregator.cli.commands import cli
from aggregator.config.settings import Settings, load_settings
from aggregator.errors import ConfigError
from aggregator.fetch.http import BasicAuth, HttpClient
from aggregator.runtime.logs import RedactingFilter
from aggregator.runtime.oneshot import OneShot
from storage.export import write_export
from storage.records import ExportFilter, FeedConfig
from storage.redact import (
    SECRET_PARAMS,
    SECRET_SUFFIXES,
    redact_text,
    redact_url,
    split_credentials,
    strip_credentials,
)
from storage.store import Store
from tests.dbfixtures import BACKENDS
from tests.feedgen import Item, rss
from tests.httpserver import RecordedRequest, Route, TestServer

USER, PASSWORD = "reader", "s3cr#t:pw"  # a ':' and a '#' in the password: escaped in the URL
USERINFO = "reader:s3cr%23t%3Apw"
TOKEN = "tok-9f8e7d"
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


# -- the redaction rules -------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("https://u:pw@h.example/f.xml", "https://u:***@h.example/f.xml"),
    ("https://u@h.example/f.xml", "https://u@h.example/f.xml"),
    ("https://h.example/f?token=abc&page=2", "https://h.example/f?token=***&page=2"),
    ("https://h.example/f?KEY=a&apikey=b&api_key=c&access_token=d",
     "https://h.example/f?KEY=***&apikey=***&api_key=***&access_token=***"),
    ("https://h.example/f?password=a&secret=b&sig=c&signature=d&X-Amz-Signature=e",
     "https://h.example/f?password=***&secret=***&sig=***&signature=***&X-Amz-Signature=***"),
    ("https://h.example/f?my_token=a&feed_key=b&token=",
     "https://h.example/f?my_token=***&feed_key=***&token="),
    ("https://h.example/f?q=token&monkey=1", "https://h.example/f?q=token&monkey=1"),
    ("https://u:p@[::1]:8080/f?sig=1#top", "https://u:***@[::1]:8080/f?sig=***#top"),
    ("not a url", "not a url"),
    ("http://u:p#w?d@h.example/f?key=1", "http://u:***@h.example/f?key=***"),
    ("https://h.example/@user/feed?sig=2", "https://h.example/@user/feed?sig=***"),
])  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_every_url_and_keeps_the_punctuation_around_it() -> None:
    text = ("fetch: HTTP 401 for https://h.example/b?token=x (redirected from "
            "http://u:pw@a.example/f?key=y), see https://ok.example/.")
    assert redact_text(text) == (
        "fetch: HTTP 401 for https://h.example/b?token=*** (redirected from "
        "http://u:***@a.example/f?key=***), see https://ok.example/.")


def test_split_credentials_decodes_them_and_leaves_the_rest() -> None:
    url = f"https://{USERINFO}@h.example:8443/f.xml?token=1#x"
    assert split_credentials(url) == ("https://h.example:8443/f.xml?token=1#x", (USER, PASSWORD))
    assert split_credentials("https://h.example/f") == ("https://h.example/f", None)
    assert strip_credentials("https://a@h.example/f") == "https://h.example/f"


@given(password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!$*+,;=-._~",
                        min_size=6, max_size=30),
       value=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=6, max_size=30))
def test_no_password_or_token_survives_redaction(password: str, value: str) -> None:
    url = f"https://user:{password}@h.example/feed?access_token={value}"
    for shown in (redact_url(url), redact_text(f"error at {url}: boom")):
        assert password not in shown and value not in shown


def test_the_config_splits_credentials_off_the_feed_url() -> None:
    settings = Settings.model_validate({"feeds": [{"url": f"https://{USERINFO}@h.example/f"}]})
    [config] = settings.feed_configs()
    assert (config.url, config.auth) == ("https://h.example/f", (USER, PASSWORD))
    assert PASSWORD not in repr(config) and "s3cr" not in repr(config)


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_secrets.filter")
    logger.addHandler(handler)
    try:
        logger.warning("fetch: HTTP 500 for %s", f"http://{USERINFO}@h.example/f?token={TOKEN}")
        try:
            raise ValueError(f"bad http://u:{PASSWORD}@h.example/")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "token=***" in text and "reader:***@" in text
    assert TOKEN not in text and "s3cr" not in text and PASSWORD not in text


# -- Basic auth: sent to its origin, never to another ---------------------------------------


def basic_auth_only(body: bytes) -> Callable[[RecordedRequest], Route]:
    """A route handler that answers 401 unless the request carries our credentials."""

    def answer(req: RecordedRequest) -> Route:
        if req.headers.get("authorization") == EXPECTED:
            return Route(body=body, headers={"Content-Type": "application/rss+xml"})
        return Route(status=401, headers={"WWW-Authenticate": 'Basic realm="feeds"'})

    return answer


@pytest.fixture
def other_server() -> Iterator[TestServer]:
    """Another origin: another port on 127.0.0.1."""
    server = TestServer()
    yield server
    server.close()


def client() -> HttpClient:
    settings = Settings.model_validate({"http": {"allow_private_networks": True, "timeout": 5}})
    return HttpClient(settings.http)


async def fetch(url: str, auth: BasicAuth | None) -> int:
    async with client() as http:
        return (await http.get(url, auth=auth)).status


def test_credentials_go_to_their_origin_and_after_a_same_origin_redirect(
    http_server: TestServer,
) -> None:
    http_server.route("/feed.xml", handler=basic_auth_only(b"<rss/>"))
    http_server.redirect("/old.xml", "/feed.xml", status=301)
    url = http_server.url("/old.xml")
    assert asyncio.run(fetch(url, BasicAuth(url, USER, PASSWORD))) == 200
    assert asyncio.run(fetch(url, None)) == 401
    sent = [r.headers.get("authorization") for r in http_server.requests_for("/feed.xml")]
    assert sent == [EXPECTED, None]


def test_credentials_never_follow_a_redirect_to_another_origin(
    http_server: TestServer, other_server: TestServer
) -> None:
    other_host = http_server.url("/elsewhere.xml", host="127.0.0.2")  # same port, other host
    other_port = other_server.url("/elsewhere.xml")  # same host, other port
    http_server.route("/elsewhere.xml", body=b"<rss/>")
    other_server.route("/elsewhere.xml", body=b"<rss/>")
    http_server.redirect("/to-host.xml", other_host, status=302)
    http_server.redirect("/to-port.xml", other_port, status=307)
    for path in ("/to-host.xml", "/to-port.xml"):
        url = http_server.url(path)
        assert asyncio.run(fetch(url, BasicAuth(url, USER, PASSWORD))) == 200
        assert http_server.requests_for(path)[-1].headers.get("authorization") == EXPECTED
    moved = http_server.requests_for("/elsewhere.xml") + other_server.requests_for(
        "/elsewhere.xml")
    assert [r.host for r in moved] == ["127.0.0.2", "127.0.0.1"]
    assert [r.headers.get("authorization") for r in moved] == [None, None]


# -- end to end: poll, store, show, log, export ---------------------------------------------


def write_config(tmp_path: Path, database: str, *urls: str) -> str:
    path = tmp_path / "feeds.yaml"
    feeds = "".join(f"  - url: {json.dumps(url)}\n" for url in urls)
    path.write_text(
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        f"defaults:\n  fetch_articles: false\nfeeds:\n{feeds}", encoding="utf-8")
    return str(path)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def test_a_feed_behind_basic_auth_is_polled_and_its_secrets_never_shown(
    http_server: TestServer, store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = http_server.base_url
    http_server.route(f"/private.xml?token={TOKEN}", handler=basic_auth_only(rss([Item(1, base)])))
    http_server.route(f"/broken.xml?api_key={TOKEN}", status=500, body=b"down")
    port = http_server.port
    good = f"http://{USERINFO}@127.0.0.1:{port}/private.xml?token={TOKEN}"
    bad = f"http://{USERINFO}@127.0.0.1:{port}/broken.xml?api_key={TOKEN}"
    cfg = write_config(tmp_path, store_url, good, bad)

    with caplog.at_level(logging.WARNING):  # -v: poll --once logs failures it lists (issue 13)
        code, out = run("-v", "--config", cfg, "poll", "--once")
    assert code == 1 and "1 ok" in out and "1 failed" in out
    assert [r.headers.get("authorization") for r in http_server.requests_for(
        f"/private.xml?token={TOKEN}")] == [EXPECTED]
    assert "broken.xml?api_key=***" in caplog.text

    shown = [out, caplog.text]
    for args in (["feeds"], ["feeds", "--json"], ["feeds", "show", good],
                 ["feeds", "show", good, "--json"], ["feeds", "show", bad, "--json"]):
        code, text = run("--config", cfg, *args)
        assert code == 0, text
        shown.append(text)
    assert "token=***" in shown[3] and "reader" not in shown[3]  # stored without userinfo
    export = tmp_path / "out.jsonl"
    assert run("--config", cfg, "export", "-o", str(export))[0] == 0
    [item] = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert item["feed_url"] == f"http://127.0.0.1:{port}/private.xml?token={TOKEN}"
    for text in [*shown, export.read_text(encoding="utf-8")]:
        assert "s3cr" not in text and PASSWORD not in text and USERINFO not in text
    for text in shown:
        assert TOKEN not in text


def test_an_archive_holding_credentials_forgets_them_and_keeps_the_feed(
    http_server: TestServer, store: Store, tmp_path: Path
) -> None:
    """Before issue 11 the URL was stored as configured, credentials and all. The next start
    takes them off the stored URLs; the feed keeps its id, items and history."""
    bare = http_server.url("/private.xml")
    old = bare.replace("http://", f"http://{USERINFO}@")
    now = datetime.now(UTC)
    store.sync_feeds([FeedConfig(url=old)], now)  # as the old program stored it
    before = store.get_feed(old)
    assert before is not None and before.url == old
    http_server.route("/private.xml", handler=basic_auth_only(rss([Item(1, http_server.base_url)])))
    settings = Settings.model_validate({
        "http": {"allow_private_networks": True, "per_host_delay": 0, "respect_robots": False},
        "defaults": {"fetch_articles": False}, "feeds": [{"url": old}],
    })  # fmt: skip
    store.sync_feeds(settings.feed_configs(), now)
    after = store.get_feed(bare)
    assert after is not None and after.id == before.id and after.config_url == bare
    assert [f.url for f in store.list_feeds()] == [bare]
    totals = asyncio.run(OneShot(settings, store).poll_once())
    assert (totals.ok, totals.new_items) == (1, 1)
    out = tmp_path / "out.jsonl"
    write_export(store, out, "jsonl", ExportFilter())
    assert "s3cr" not in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_export_reimports_onto_the_feed_the_config_names(
    http_server: TestServer, store_url_factory: Callable[[str], str], tmp_path: Path,
    backend: str,
) -> None:
    """The export knows the feed by its URL without credentials; a fresh archive importing it,
    then started on the same configuration (credentials and all), holds one feed, not two."""
    http_server.route("/private.xml", handler=basic_auth_only(rss([Item(1, http_server.base_url)])))
    url = http_server.url("/private.xml").replace("http://", f"http://{USERINFO}@")
    first, second = store_url_factory(backend), store_url_factory(backend)
    cfg = write_config(tmp_path, first, url)
    assert run("--config", cfg, "poll", "--once")[0] == 0
    export = tmp_path / "out.jsonl"
    assert run("--config", cfg, "export", "-o", str(export))[0] == 0
    assert run("--database", second, "import", str(export))[0] == 0
    code, out = run("--config", cfg, "--database", second, "poll", "--once")
    assert code == 0 and "0 new items" in out, out
    code, out = run("--config", cfg, "--database", second, "feeds", "--json")
    assert [f["url"] for f in json.loads(out)] == [strip_credentials(url)]


@pytest.mark.parametrize(("url", "refused"), [
    ("https://u:p#ss@h.example/f", True),
    ("https://u:p?ss@h.example/f", True),
    ("https://u:p%23ss@h.example/f", False),
    ("https://h.example?to=a@b.example", False),
    ("https://h.example:8080?to=a@b.example", False),
    ("https://h.example/f?to=a@b.example", False),
])  # fmt: skip
def test_a_password_with_raw_delimiters_is_refused_with_the_fix(
    url: str, refused: bool, tmp_path: Path
) -> None:
    """Else the host would be read out of the password, and the password stored as a URL."""
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: {json.dumps(url)}\n", encoding="utf-8")
    if not refused:
        load_settings(path, env={})
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert message.startswith(f"config: {path}:2: feeds[0].url: bad URL 'https://u:***@h.example/f'")
    assert "escape '#', '?'" in message and "ss@" not in message


def test_the_readme_lists_every_secret_parameter_name() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    security = readme[readme.index("- **Security.**"):]
    security = security[: security.index("\n\n")]
    missing = [n for n in sorted(SECRET_PARAMS | set(SECRET_SUFFIXES[:4]))
               if f"`{n}`" not in security]
    assert missing == []


def test_check_config_and_errors_show_no_password(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "postgresql+psycopg://archiver:hunter2@127.0.0.1:5432/x",
                       f"https://{USERINFO}@h.example/f?token={TOKEN}")
    code, checked = run("--config", cfg, "check-config")
    assert code == 0 and "database postgresql+psycopg://archiver:***@127.0.0.1:5432/x" in checked
    Store.open(f"sqlite:///{tmp_path / 'a.db'}").close()  # feeds show never creates an archive
    code, out = run("--config", cfg, "--database", f"sqlite:///{tmp_path / 'a.db'}", "feeds",
                    "show", f"https://{USERINFO}@h.example/other?token={TOKEN}")
    assert code == 2 and "feeds: no feed https://reader:***@h.example/other?token=***" in out
    for text in (checked, out):
        assert "hunter2" not in text and "s3cr" not in text and TOKEN not in text

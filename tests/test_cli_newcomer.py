"""A newcomer's first hour (issue 13): the CLI as installed, run as a process, with the mistakes
people make. Each test checks the exact line a user reads and the exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import TestServer

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "alembic", "httpx", "httpcore", "feedparser", "trafilatura", "pydantic",
         "rich", "lxml", "bs4")


def aggregator(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``aggregator ARGS`` as a shell runs it (``python -m aggregator``: the installed entry
    point calls the same ``main``), without $AGGREGATOR_CONFIG/$AGGREGATOR_DATABASE."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    base["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "aggregator", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def config(tmp_path: Path, database: str, *urls: str) -> str:
    feeds = "".join(f"  - url: {url}\n    title: Feed {i}\n" for i, url in enumerate(urls, 1))
    return write(tmp_path / "feeds.yaml", (
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        f"defaults:\n  fetch_articles: false\nfeeds:\n{feeds}"))


def loaded_modules(tmp_path: Path, *args: str, whole: bool = False) -> set[str]:
    """The top-level packages a command has imported by the time it exits (``whole``: every
    module, by its full name; a None entry marks a module as absent: ``aggregator.fetch`` so
    marks httpx's command-line tool)."""
    name = "m" if whole else "m.split('.')[0]"
    script = ("import sys, atexit\n"
              f"atexit.register(lambda: print(' '.join(sorted({{{name} for m, v in "
              "sys.modules.items() if v is not None})), file=sys.__stderr__))\n"
              "from aggregator.cli import main\n"
              f"sys.argv = ['aggregator', *{list(args)!r}]\n"
              "main()\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
                          check=False)  # fmt: skip
    return set(proc.stderr.split("\n")[-2].split())


# -- the CLI answers at once --------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--help"], ["--version"], ["poll", "--help"]], ids=" ".join)
def test_help_and_version_import_no_heavy_library(tmp_path: Path, args: list[str]) -> None:
    loaded = loaded_modules(tmp_path, *args)
    assert "click" in loaded  # the probe works
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_check_config_imports_no_database_or_http_library(tmp_path: Path) -> None:
    cfg = config(tmp_path, "sqlite:///a.db", "https://example.com/feed")
    loaded = loaded_modules(tmp_path, "--config", cfg, "check-config")
    assert "pydantic" in loaded
    assert loaded.isdisjoint({"sqlalchemy", "alembic", "httpx", "feedparser", "trafilatura",
                              "rich", "bs4"})  # fmt: skip
    assert not (tmp_path / "a.db").exists()


def test_reading_an_archive_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'a.db'}"
    Store.open(database).close()
    loaded = loaded_modules(tmp_path, "--database", database, "stats")
    assert "sqlalchemy" in loaded and "alembic" not in loaded and "httpx" not in loaded


def test_a_poll_without_article_pages_loads_no_rule_engine_nor_scheduler(
    tmp_path: Path, http_server: TestServer
) -> None:
    """A cron job's `poll --once` pays its start-up every time (issue 14): the site rules'
    engine (soupsieve) waits for the first article page, the scheduler for `run`."""
    http_server.route("/feed.xml", body=rss([Item(1, http_server.base_url)]))
    cfg = config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", http_server.url("/feed.xml"))
    loaded = loaded_modules(tmp_path, "--config", cfg, "poll", "--once", whole=True)
    assert {"sqlalchemy", "httpcore", "lxml", "storage.searchindex"} <= loaded  # it polled
    assert loaded.isdisjoint({"soupsieve", "apscheduler", "trafilatura", "charset_normalizer"})
    # nor the search's query language and ranking, nor the web view's reads (about 10 ms)
    assert loaded.isdisjoint({"storage.search", "storage.searchquery", "storage.browse"})


def test_the_http_client_does_not_load_httpx_command_line_tool(tmp_path: Path) -> None:
    """httpx imports its CLI (rich, pygments) when they are installed: 3 MiB of an idle service.
    (A URL not in canonical form, as here, is what loads httpx: its parser reads it.)"""
    loaded = loaded_modules(tmp_path, "discover", "http://127.0.0.1:9/a b")
    assert "httpx" in loaded and loaded.isdisjoint({"rich", "pygments"})


# -- messages that say what to do ---------------------------------------------------------------

def test_an_unexpected_error_is_one_line_and_its_traceback_at_vv(tmp_path: Path) -> None:
    """A bug nobody foresaw (here: a statistics query that raises) is one line naming the
    command; ``-vv`` adds the traceback. Forced by replacing one method: no input can be
    relied on to trip a bug that is not known."""
    database = f"sqlite:///{tmp_path / 'a.db'}"
    Store.open(database).close()
    script = ("import sys\nfrom storage.store import Store\n"
              "def broken(self): raise KeyError('articles')\n"
              "Store.stats = broken\n"
              "from aggregator.cli import main\n"
              "sys.argv = ['aggregator', *sys.argv[1:]]\nmain()\n")  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, text=True,
                              capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              timeout=120, check=False)  # fmt: skip

    quiet = run("--database", database, "stats")
    assert (quiet.returncode, quiet.stdout) == (1, "")
    assert quiet.stderr == ("stats: unexpected error: KeyError: 'articles' "
                            "(run with -vv for the traceback)\n")
    loud = run("-vv", "--database", database, "stats")
    assert loud.returncode == 1
    assert loud.stderr.startswith("Traceback (most recent call last):")
    assert loud.stderr.endswith(quiet.stderr)


CONFIG_MISTAKES = [
    ("feeds:\n  - url: https://a.example/f\n    intervall: 5m\n",
     ":3: feeds[0].intervall: unknown key; did you mean `interval`?"),
    ("feed:\n  - url: https://a.example/f\n", ":1: feed: unknown key; did you mean `feeds`?"),
    ("feeds:\n  - https://a.example/f\n",
     ":2: feeds[0]: expected `- url: https://a.example/f` (a feed is a mapping with a `url:` key)"),
    ("feeds:\n  - url: https://a.example/f\n    tags: news\n",
     ":3: feeds[0].tags: expected a list (one `- item` per line, or [a, b]), got the text 'news'"),
    ("http: 5\n",
     ":1: http: expected a mapping of settings (`key: value` lines), got the number 5"),
    ("http:\n  allow_private_networks: maybe\n",
     ":2: http.allow_private_networks: expected true or false, got the text 'maybe'"),
    ("service:\n  concurrency: 1000\n",
     ":2: service.concurrency: must be at most 512, got the number 1000"),
    ("feeds:\n  - url:\n", ":2: feeds[0].url: expected text, got nothing (an empty value)"),
    ("zzz: 1\n", ":1: zzz: unknown key (known here: database, database_auto_migrate, "
                 "database_timeouts, defaults, feeds, http, service, sites)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CONFIG_MISTAKES, ids=lambda v: v[:20])
def test_config_mistakes_are_told_in_yaml_words(tmp_path: Path, text: str,
                                                expected: str) -> None:  # fmt: skip
    cfg = write(tmp_path / "feeds.yaml", text)
    code, out, err = aggregator("check-config", "--config", cfg, cwd=tmp_path)
    assert (code, out, err) == (2, "", f"config: {cfg}{expected}\n")


def test_an_unexpected_error_names_the_page_and_hides_its_secrets(tmp_path: Path) -> None:
    script = ("import sys\nimport aggregator.cli.tools as tools\n"
              "async def broken(*args): raise RuntimeError('boom at https://u:hunter2@x.example/')\n"
              "tools.load_page = broken\n"
              "from aggregator.cli import main\n"
              "sys.argv = ['aggregator', 'extract', 'page.html']\nmain()\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=120, check=False)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (1, (
        "extract page.html: unexpected error: RuntimeError: boom at https://u:***@x.example/ "
        "(run with -vv for the traceback)\n"))


# -- no silent surprises ------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["poll", "run"])
@pytest.mark.parametrize("text", ["", "# my feeds, to do\n\n# more later\n", "feeds: []\n"],
                         ids=["empty", "comments", "empty-list"])
def test_poll_and_run_refuse_a_config_without_feeds(tmp_path: Path, command: str,
                                                    text: str) -> None:  # fmt: skip
    cfg = write(tmp_path / "feeds.yaml", text)
    code, out, err = aggregator(command, "--config", cfg, cwd=tmp_path)
    assert (code, out, err) == (2, "", f"config: no feeds in {cfg}: add a `feeds:` list of URLs\n")
    assert not (tmp_path / "data").exists()


READ_ONLY = [["feeds"], ["feeds", "show", "https://a.example/f"], ["stats"], ["export"],
             ["reextract"]]  # fmt: skip


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_an_archive(tmp_path: Path, command: list[str]) -> None:
    code, out, err = aggregator(*command, cwd=tmp_path)
    assert (code, out) == (3, "")
    assert err == ("storage: no archive at data/archive.db yet: `aggregator poll` creates it "
                   "(no --config given: pass --config FILE or --database URL)\n")
    assert not (tmp_path / "data").exists()


def test_read_only_commands_on_an_empty_database_say_so(tmp_path: Path, store_url: str) -> None:
    """SQLite: the file is not made; PostgreSQL: no table is made in the empty database."""
    code, _, err = aggregator("stats", "--database", store_url, cwd=tmp_path)
    assert code == 3 and err.startswith("storage: no archive ") and err.count("\n") == 1
    assert err.endswith(" yet: `aggregator poll` creates it\n")
    code, _, err = aggregator("stats", "--database", store_url, cwd=tmp_path)
    assert code == 3, "the first try created nothing the second could find"


def test_config_and_database_are_accepted_after_the_command(tmp_path: Path) -> None:
    cfg = config(tmp_path, "sqlite:///a.db", "https://example.com/feed")
    code, out, _ = aggregator("check-config", "-c", cfg, cwd=tmp_path)
    assert (code, out) == (0, f"{cfg}: ok, 1 feeds, database sqlite:///{tmp_path / 'a.db'}\n")
    other = f"sqlite:///{tmp_path / 'b.db'}"
    Store.open(other).close()
    code, _, err = aggregator("--config", "/nowhere.yaml", "stats", "--config", cfg,
                              "--database", other, cwd=tmp_path)  # fmt: skip
    assert (code, err) == (0, ""), "the values after the command win"


def test_an_unknown_feed_url_names_the_nearest(tmp_path: Path, http_server: TestServer) -> None:
    http_server.route("/feed.xml", body=rss([Item(1, http_server.base_url)]))
    url = http_server.url("/feed.xml")
    cfg = config(tmp_path, "sqlite:///a.db", url)
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 0
    typo = url.replace("feed.xml", "feeds.xml")
    for command, stage in ((["feeds", "show", typo], "feeds"), (["export", "--feed", typo],
                                                                 "export")):
        code, out, err = aggregator(*command, "-c", cfg, cwd=tmp_path)
        assert (code, out) == (2, "")
        assert err == f"{stage}: no feed {typo} in the archive; did you mean {url}?\n"
    code, _, err = aggregator("export", "--feed", "https://elsewhere.example/x", "-c", cfg,
                              cwd=tmp_path)  # fmt: skip
    assert code == 2 and err.endswith("in the archive; `aggregator feeds` lists them\n")


# -- output a person reads ----------------------------------------------------------------------

def test_feeds_is_one_line_per_feed_and_wide_adds_why(
    tmp_path: Path, http_server: TestServer
) -> None:
    http_server.route("/a.xml", body=rss([Item(n, http_server.base_url) for n in (1, 2)]))
    http_server.route("/b.xml", status=500, body=b"down")
    a, b = http_server.url("/a.xml"), http_server.url("/b.xml")
    cfg = config(tmp_path, "sqlite:///a.db", a, b)
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 1
    code, out, _ = aggregator("feeds", "-c", cfg, cwd=tmp_path)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == ["FEED", "TITLE", "LAST", "POLL", "RESULT", "NEXT", "POLL", "ITEMS"]
    first, second = sorted(lines[1:], key=lambda line: line.startswith(b))
    short = a.removeprefix("http://")  # the short form: feeds show takes it
    assert first.startswith(f"{short}  Feed 1  ") and first.split()[-1] == "2"
    assert second.startswith(f"{b[7:]}  Feed 2  ") and " error 500 " in second
    assert len({line.index("Feed") for line in lines[1:]}) == 1, "columns are aligned"
    code, wide, _ = aggregator("feeds", "--wide", "-c", cfg, cwd=tmp_path)
    assert wide.splitlines()[0].split()[-3:] == ["WHY", "LAST", "ERROR"]
    assert "HTTP 500" in wide and "HTTP 500" not in out


def test_feeds_on_an_archive_without_feeds_says_what_to_do(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'a.db'}"
    Store.open(database).close()
    code, out, _ = aggregator("feeds", "--database", database, cwd=tmp_path)
    assert (code, out) == (0, "no feeds in the archive yet: `aggregator poll` adds the "
                              "configured ones\n")  # fmt: skip


def test_stats_are_words_and_aligned_numbers(tmp_path: Path, http_server: TestServer) -> None:
    http_server.route("/a.xml", body=rss([Item(n, http_server.base_url) for n in (1, 2, 3)]))
    cfg = config(tmp_path, "sqlite:///a.db", http_server.url("/a.xml"))
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 0
    code, out, _ = aggregator("stats", "-c", cfg, cwd=tmp_path)
    lines = out.splitlines()
    assert code == 0
    for forbidden in ("{", "}", "None", "'"):
        assert forbidden not in out
    assert lines[0].split() == ["feeds", "1"] and ["items", "3"] in [x.split() for x in lines]
    assert lines[-2:] == [f"articles{' ' * (len(lines[-1]) - 9)}3",
                          lines[-1]] and lines[-1].split()[-1] == "3"
    assert "not fetched (feed set so)" in lines[-1]
    assert len({len(line) for line in lines if line.split()[-1].isdigit()}) == 1, "aligned"


def test_check_config_warns_of_feeds_the_guard_will_refuse(tmp_path: Path) -> None:
    cfg = write(tmp_path / "feeds.yaml", (
        "http:\n  allowed_networks: [10.0.0.0/8]\nfeeds:\n  - url: http://10.1.2.3/f\n"
        "  - url: http://localhost:8080/f\n  - url: https://example.com/f\n"
        "  - url: http://[::ffff:192.168.1.1]/f\n"))  # fmt: skip
    code, out, err = aggregator("check-config", "-c", cfg, cwd=tmp_path)
    assert (code, out) == (0, f"{cfg}: ok, 4 feeds, database sqlite:///{tmp_path}/data/archive.db\n")
    hint = ("is a private or loopback address, which the fetcher refuses; allow it with "
            "http.allowed_networks or http.allow_private_networks: true")
    assert err.splitlines() == [
        f"config: warning: feeds[1].url http://localhost:8080/f: localhost {hint}",
        f"config: warning: feeds[3].url http://[::ffff:192.168.1.1]/f: ::ffff:192.168.1.1 {hint}",
    ]
    allowed = write(tmp_path / "open.yaml", "http:\n  allow_private_networks: true\n"
                                            "feeds:\n  - url: http://127.0.0.1/f\n")  # fmt: skip
    assert aggregator("check-config", "-c", allowed, cwd=tmp_path)[2] == ""
    empty = write(tmp_path / "empty.yaml", "# to do\n")
    code, _, err = aggregator("check-config", "-c", empty, cwd=tmp_path)
    assert (code, err) == (0, f"config: warning: {empty} lists no feeds; `poll` and `run` "
                              "refuse it\n")  # fmt: skip


def test_discover_says_when_a_page_offers_no_feed_or_is_one(
    tmp_path: Path, http_server: TestServer
) -> None:
    http_server.route("/feed.xml", body=rss([Item(1, http_server.base_url)]))
    http_server.route("/plain.html", body=b"<html><body>no feeds here</body></html>",
                      headers={"Content-Type": "text/html"})  # fmt: skip
    cfg = config(tmp_path, "sqlite:///a.db", http_server.url("/feed.xml"))
    code, out, err = aggregator("discover", http_server.url("/feed.xml"), "-c", cfg, cwd=tmp_path)
    assert (code, out, err) == (0, f"{http_server.url('/feed.xml')} is a feed itself: "
                                   "configure it as it is\n", "")  # fmt: skip
    code, out, err = aggregator("discover", http_server.url("/plain.html"), "-c", cfg,
                                cwd=tmp_path)  # fmt: skip
    assert (code, out) == (1, "")
    assert err == (f"discover: {http_server.url('/plain.html')} advertises no feed (no <link "
                   'rel="alternate"> of an RSS, Atom or JSON Feed type)\n')
    code, _, err = aggregator("discover", http_server.url("/plain.html"), cwd=tmp_path)
    assert code == 1 and err.startswith("fetch: ") and "http.allowed_networks" in err

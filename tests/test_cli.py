"""The CLI as users drive it: exit statuses, one-line errors, and each command's output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli.commands import cli
from storage.store import Store
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer

PAGES = Path(__file__).parent / "data" / "pages"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def config(tmp_path: Path, database: str, *urls: str, fetch_articles: bool = True) -> str:
    feeds = "".join(f"  - url: {url}\n" for url in urls)
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        f"defaults:\n  fetch_articles: {str(fetch_articles).lower()}\n"
        f"feeds:\n{feeds or '  []'}\n", encoding="utf-8")
    return str(path)


def serve_two_stories(http_server: TestServer) -> str:
    """A feed of two items whose article pages are served: the feed's URL."""
    items = [Item(n, http_server.base_url) for n in (1, 2)]
    http_server.route("/feed.xml", body=rss(items))
    for item in items:
        http_server.route(f"/news/{item.n}.html", body=article_page(item),
                          headers={"Content-Type": "text/html; charset=utf-8"})
    return http_server.url("/feed.xml")


def test_poll_applies_the_users_site_rule_compiled_on_the_first_page(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, store_url, serve_two_stories(http_server))
    with Path(cfg).open("a", encoding="utf-8") as file:
        file.write('sites:\n  - domains: ["127.0.0.1"]\n    body: ["article"]\n'
                   '    remove: ["p:nth-of-type(4)"]\n')
    assert run("--config", cfg, "poll", "--once")[0] == 0
    exported = [json.loads(line) for line in run("--config", cfg, "export")[1].splitlines()]
    assert len(exported) == 2
    assert all(i["article"]["sources"]["html"] == "site_rule" for i in exported)
    assert all("Paragraph 4" not in i["article"]["text"] for i in exported)


def test_check_config_ok_and_error_statuses(tmp_path: Path) -> None:
    good = config(tmp_path, "sqlite:///x.db", "https://example.com/feed")
    code, out, _ = run("--config", good, "check-config")
    assert code == 0 and "ok, 1 feeds" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds:\n  - url: https://a.example/f\n    intervall: 5m\n", encoding="utf-8")
    code, _, err = run("--config", str(bad), "check-config")
    assert code == 2
    assert err.strip() == (f"config: {bad}:3: feeds[0].intervall: unknown key; "
                           "did you mean `interval`?")


def test_missing_config_is_a_usage_error() -> None:
    code, _, err = run("check-config")
    assert code == 2 and "pass --config FILE or set AGGREGATOR_CONFIG" in err


def test_config_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_CONFIG", config(tmp_path, "sqlite:///x.db"))
    assert run("check-config")[0] == 0


def test_poll_export_import_stats_round_trip(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, store_url, serve_two_stories(http_server))
    code, out, _ = run("--config", cfg, "poll", "--once")
    assert code == 0, out
    assert "1 ok, 0 not modified, 0 failed; 2 new items; articles: 2 fetched, 0 failed" in out

    exported = tmp_path / "out.jsonl"
    assert run("--config", cfg, "export", "--format", "jsonl", "-o", str(exported))[0] == 0
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert sorted(i["title"] for i in lines) == ["Story number 1", "Story number 2"]
    assert all(i["article"]["text"].startswith("Paragraph 1") for i in lines)

    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    code, out, _ = run("--database", copy, "import", str(exported))
    assert code == 0 and "2 items added" in out
    code, out, _ = run("--database", copy, "import", str(exported))
    assert code == 0 and "0 items added" in out and "2 items unchanged" in out
    again = tmp_path / "again.jsonl"
    run("--database", copy, "export", "-o", str(again))
    reread = [json.loads(line) for line in again.read_text(encoding="utf-8").splitlines()]
    assert [i["id"] for i in reread] == [i["id"] for i in lines]
    assert [i["article"] for i in reread] == [i["article"] for i in lines]

    code, out, _ = run("--config", cfg, "stats", "--json")
    figures = json.loads(out)
    assert figures["items"] == 2 and figures["captures"] == 3  # the feed and two pages

    code, out, _ = run("--config", cfg, "reextract")
    assert code == 0 and "re-extracted 2 pages: 0 changed, 0 failed" in out


def test_import_of_a_bad_file_names_it_and_changes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format_version": 1, "id": 5}\n', encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'a.db'}"
    code, _, err = run("--database", database, "import", str(bad))
    assert code == 3
    assert err.startswith("import: ") and str(bad) in err and "1" in err


def test_export_time_filters_are_validated(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'a.db'}"
    result = CliRunner().invoke(cli, ["--database", database, "export", "--since", "yesterday"])
    assert result.exit_code == 2 and "ISO 8601" in result.output


def test_extract_a_saved_page_shows_fields_and_sources() -> None:
    page = PAGES / "kazinform-article.html"
    url = "https://www.inform.kz/en/kassym-jomart-tokayev-receives_a3781370"
    code, out, _ = run("extract", str(page), "--url", url)
    assert code == 0
    assert ("title         Kassym-Jomart Tokayev receives Minister of Internal Affairs "
            "Yerlan Turgumbayev  [site_rule]") in out
    assert "published     2021-04-20T17:05:00+06:00" in out
    code, out, _ = run("extract", str(page), "--url", url, "--json")
    article = json.loads(out)
    assert article["dateline"] == "NUR-SULTAN. KAZINFORM"
    assert article["sources"]["title"] == "site_rule"
    assert "Go to the main site" not in article["text"]


def test_extract_a_url(http_server: TestServer, tmp_path: Path) -> None:
    item = Item(7, http_server.base_url)
    http_server.route("/news/7.html", body=article_page(item),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    cfg = config(tmp_path, "sqlite:///x.db")
    code, out, _ = run("--config", cfg, "extract", item.link, "--json")
    assert code == 0 and json.loads(out)["title"] == "Story number 7"


def test_extract_refuses_private_addresses_by_default(http_server: TestServer) -> None:
    code, _, err = run("extract", http_server.url("/x.html"))
    assert code == 1 and err.startswith("fetch: ")


def test_feeds_show_unknown_feed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    Store.open(url).close()  # an archive with no feeds: read commands never create one
    code, _, err = run("--database", url, "feeds", "show", "https://nowhere.example/feed")
    assert code == 2
    assert err.strip() == ("feeds: no feed https://nowhere.example/feed in the archive; "
                           "the archive has no feeds yet")


def test_reextract_records_a_revision_only_where_the_result_changed(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, store_url, serve_two_stories(http_server))
    assert run("--config", cfg, "poll", "--once")[0] == 0

    def revisions() -> dict[str, int]:
        out = run("--config", cfg, "export")[1]
        return {i["guid"]: len(i["revisions"]) for i in map(json.loads, out.splitlines())}

    before = revisions()
    # A user rule for this site drops the last paragraph: both pages' articles change once.
    with Path(cfg).open("a", encoding="utf-8") as file:
        file.write('sites:\n  - domains: ["127.0.0.1"]\n    body: ["article"]\n'
                   '    remove: ["p:nth-of-type(4)"]\n')
    code, out, _ = run("--config", cfg, "reextract")
    assert code == 0 and "re-extracted 2 pages: 2 changed (html 2, text 2), 0 failed" in out
    after = revisions()
    assert all(after[guid] == count + 1 for guid, count in before.items())
    exported = [json.loads(line) for line in run("--config", cfg, "export")[1].splitlines()]
    assert all("Paragraph 4" not in i["article"]["text"] for i in exported)
    assert all(i["article"]["sources"]["html"] == "site_rule" for i in exported)
    # Nothing changed since: a second run records nothing, and an incremental export is empty.
    mark = datetime.now(UTC).isoformat()
    assert "2 pages: 0 changed" in run("--config", cfg, "reextract")[1]
    assert revisions() == after
    assert run("--config", cfg, "export", "--since", mark)[1] == ""


def test_the_collector_pauses_for_start_up_and_resumes_even_on_error() -> None:
    """``poll`` loads with the cyclic collector off (issue 14); it must come back on, with what
    start-up made frozen, whatever happens, and stay off where a caller had turned it off."""
    import gc

    from aggregator.cli.app import collector_paused

    try:
        assert gc.isenabled()
        with pytest.raises(RuntimeError), collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("boom")
        assert gc.isenabled() and gc.get_freeze_count() > 0
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_young_collections_are_spaced_while_polling_and_restored_even_on_error() -> None:
    """``poll`` spaces the collector's young collections (issue 14); the threshold a caller had
    comes back afterwards, whatever happens."""
    import gc

    from aggregator.cli.app import POLL_YOUNG_COLLECTION, young_collections_spaced

    before = gc.get_threshold()
    with pytest.raises(RuntimeError), young_collections_spaced():
        assert gc.get_threshold() == (POLL_YOUNG_COLLECTION, *before[1:])
        raise RuntimeError("boom")
    assert gc.get_threshold() == before

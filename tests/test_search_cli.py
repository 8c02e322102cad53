"""``aggregator search`` as users drive it: ranked hits with highlights, --json for scripts,
filters, one-line errors for bad queries and unknown feeds, and --reindex of an old archive."""

from __future__ import annotations

import json

from click.testing import CliRunner

from aggregator.cli.commands import cli
from storage.store import Store
from tests.searchfixtures import KZ, STORIES, build
from tests.test_upgrade_keeps_data import downgrade


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_search_prints_ranked_hits_with_highlights(store_url: str) -> None:
    with Store.open(store_url) as store:
        build(store)
    code, out, err = run("--database", store_url, "search", '"финансовый центр"')
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (f"1. {STORIES['ru-investors'].title}  [2026-03-02]  "
                        "https://kazinform.example/ru.xml")  # fmt: skip
    assert lines[1] == "   https://stories.example/ru-investors"
    assert "[финансовый] [центр]" in lines[2]
    assert err.strip() == "1-1 of 1 matching items"


def test_search_json_gives_one_object_per_hit(store_url: str) -> None:
    with Store.open(store_url) as store:
        ids = build(store)
    code, out, _ = run("--database", store_url, "search", "Астана", "--json", "--tag", "kz")
    assert code == 0
    hits = [json.loads(line) for line in out.splitlines()]
    assert {h["item_id"] for h in hits} == {ids["kz-investors"], ids["ru-investors"]}
    for hit in hits:
        assert set(hit) == {"item_id", "feed_url", "title", "url", "published", "snippet",
                            "highlights", "rank"}  # fmt: skip
        assert {hit["snippet"][a:b] for a, b in hit["highlights"]} == {"Астана"}
    code, out, _ = run("--database", store_url, "search", "Астана", "--json", "--feed", KZ)
    assert [json.loads(line)["item_id"] for line in out.splitlines()] == [ids["kz-investors"]]
    code, out, _ = run("--database", store_url, "search", "Астана OR budget", "--json",
                       "--since", "2026-03-02", "--until", "2026-03-06", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 1


def test_bad_query_and_unknown_feed_are_usage_errors(store_url: str) -> None:
    with Store.open(store_url) as store:
        build(store)
    code, out, err = run("--database", store_url, "search", '"unclosed')
    assert (code, out) == (2, "")
    assert err == "search: unclosed quote (character 1 of the query)\n"
    code, _, err = run("--database", store_url, "search", "x", "--feed", KZ + "x")
    assert code == 2 and err.startswith("search: no feed https://kazinform.example/kz.xmlx")
    code, _, err = run("--database", store_url, "search")
    assert code == 2 and "give a QUERY" in err


def test_reindex_makes_an_old_archive_searchable(store_url: str) -> None:
    with Store.open(store_url) as store:
        build(store)
    downgrade(store_url, "0008")
    code, out, err = run("--database", store_url, "search", "Астана")
    assert code == 0 and out == ""
    assert "run `aggregator search --reindex`" in err
    code, _, err = run("--database", store_url, "search", "--reindex")
    assert code == 0 and err.endswith(f"index complete ({len(STORIES)} items indexed)\n")
    code, out, err = run("--database", store_url, "search", "Астана", "--json")
    assert code == 0 and len(out.splitlines()) == 2 and "--reindex" not in err
    code, _, err = run("--database", store_url, "search", "--reindex")
    assert err == "search: index complete (0 items indexed)\n"
    code, _, err = run("--database", store_url, "search", "--reindex", "--all")
    assert err.endswith(f"index complete ({len(STORIES)} items indexed)\n")

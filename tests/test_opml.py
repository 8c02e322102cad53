"""``aggregator opml import|export`` (issue 15): subscription lists as readers write them go into
the YAML file with its comments and order kept; duplicates, non-HTTP URLs and outlines without a
feed are reported, not added; a bad file is one line and exit 2 with the config untouched; the
configured feeds go out as OPML 2.0 and come back the same, whatever the database line says."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.cli.commands import cli
from aggregator.config import load_settings
from aggregator.config.opml import Outline, read_opml, write_opml
from tests.dbfixtures import T0

DATA = Path(__file__).parent / "data" / "opml"
CONFIG = """\
# The archive (kept by the round trip: comments, order, quoting)
database: {database}

http:
  user_agent: "test-agent/1.0 (+https://example.org)"   # who we are

feeds:
  # wires first
  - url: https://feeds.bbci.co.uk/news/world/rss.xml
    title: BBC News – World
    tags: [world]
  - url: https://www.dw.com/en/top-stories/rss   # no title
"""
ADDED_FROM_NESTED = """\
  - url: https://planetpython.org/rss20.xml
    title: Planet Python
    tags: [Tech, Python]
  - url: https://pypi.org/rss/updates.xml
    title: PyPI recent updates
    tags: [Tech, Python]
  - url: https://lwn.net/headlines/rss
    title: LWN.net
    tags: [Linux, Kernel, news, Tech]
  - url: https://blog.example.org/atom.xml
    tags: [Tech]
"""
DATABASES = ["sqlite:///data/archive.db",
             "postgresql+psycopg://archiver:s3cret@db.example:5432/archive?sslmode=require"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write_config(tmp_path: Path, database: str = DATABASES[0], body: str = CONFIG) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(body.format(database=database), encoding="utf-8")
    return path


def test_nested_outlines_become_titles_and_tags() -> None:
    found = read_opml((DATA / "nested.opml").read_bytes(), "nested.opml")
    assert found.outlines[:4] == (
        Outline("https://planetpython.org/rss20.xml", "Planet Python", ("Tech", "Python")),  # text
        Outline("https://pypi.org/rss/updates.xml", "PyPI recent updates", ("Tech", "Python")),
        Outline("https://lwn.net/headlines/rss", "LWN.net", ("Linux", "Kernel", "news", "Tech")),
        Outline("https://blog.example.org/atom.xml", None, ("Tech",)),  # neither text nor title
    )
    assert found.repeated == {"https://lwn.net/headlines/rss": 1}
    assert found.pages == ("https://no-feed.example.net/",)
    assert found.linked == ("https://friends.example/list.opml",)


def test_an_rss_1_0_foaf_subscription_list_is_read() -> None:
    found = read_opml((DATA / "foafroll.rdf").read_bytes(), "foafroll.rdf")
    assert found.outlines == (
        Outline("https://jane.example/index.rdf", "Jane Doe", ("Planet Example",)),
        Outline("http://roe.example/blog/rss.xml", "John Roe", ("Planet Example",)),
    )


def test_import_adds_the_new_feeds_keeping_every_line_and_reports_the_rest(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path)
    before = path.read_text(encoding="utf-8")
    code, out, err = run("-c", str(path), "opml", "import", str(DATA / "nested.opml"))
    assert code == 0, err
    assert path.read_text(encoding="utf-8") == before + ADDED_FROM_NESTED
    opml = DATA / "nested.opml"
    assert out == (f"opml: added 4 of 7 feeds in {opml} to {path}; left out 3 duplicates, "
                   "1 bad URLs, 2 outlines without a feed\n")  # fmt: skip
    assert err.splitlines() == [
        "opml: left out https://lwn.net/headlines/rss: duplicate: 2 outlines in the file name "
        "it, taken once",
        "opml: left out https://no-feed.example.net/: no feed URL: a web page without xmlUrl, "
        "not a feed (`aggregator discover URL` finds its feeds)",
        "opml: left out https://friends.example/list.opml: no feed URL: a linked subscription "
        "list, not followed (import its file)",
        "opml: left out https://feeds.bbci.co.uk/news/world/rss.xml: duplicate: already "
        "configured",
        "opml: left out https://FEEDS.bbci.co.uk:443/news/world/rss.xml: duplicate: already "
        "configured as https://feeds.bbci.co.uk/news/world/rss.xml",
        "opml: left out gopher://old.example/feed: bad URL: unsupported scheme 'gopher' (only "
        "http and https)",
    ]
    assert len(load_settings(path).feeds) == 6


def test_importing_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    assert run("-c", str(path), "opml", "import", str(DATA / "opml2-categories.opml"))[0] == 0
    after_first = path.read_bytes()
    code, out, _ = run("-c", str(path), "opml", "import", str(DATA / "opml2-categories.opml"))
    assert code == 0
    assert "added 0 of 3 feeds" in out and "left out 3 duplicates" in out
    assert path.read_bytes() == after_first


def test_tag_option_titles_with_markup_and_file_mode(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.chmod(0o640)
    code, _, err = run("-c", str(path), "opml", "import", "--tag", "imported", "--tag", "wires",
                       str(DATA / "opml2-categories.opml"))  # fmt: skip
    assert code == 0, err
    feeds = {feed.url: feed for feed in load_settings(path).feeds}
    reuters = feeds["https://news.example.com/rss?section=world&format=xml"]
    assert (reuters.title, reuters.tags) == ("Reuters", ("wires", "World & Politics", "imported"))
    assert feeds["https://solo.example/feed"].tags == ("imported", "wires")
    assert feeds["https://www.lemonde.fr/international/rss_full.xml"].title == (
        "Le Monde – International")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml"]  # no temporary left


def test_a_symlinked_config_is_edited_through_the_link(tmp_path: Path) -> None:
    real = write_config(tmp_path)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    assert run("-c", str(link), "opml", "import", str(DATA / "foafroll.rdf"))[0] == 0
    assert link.is_symlink()
    assert "https://jane.example/index.rdf" in real.read_text(encoding="utf-8")


def test_a_config_with_no_feeds_key_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("# only a database\ndatabase: sqlite:///a.db\n", encoding="utf-8")
    assert run("-c", str(path), "opml", "import", str(DATA / "foafroll.rdf"))[0] == 0
    assert path.read_text(encoding="utf-8") == (
        "# only a database\ndatabase: sqlite:///a.db\nfeeds:\n"
        "  - url: https://jane.example/index.rdf\n    title: Jane Doe\n"
        "    tags: [Planet Example]\n"
        "  - url: http://roe.example/blog/rss.xml\n    title: John Roe\n"
        "    tags: [Planet Example]\n")


BAD_FILES = {
    "entity-bomb.opml": "has a DTD or an entity declaration, refused (an OPML list needs none, "
                        "and entities can expand without bound)",
    "page.html": "not an OPML or RSS 1.0 subscription list (no <opml> or <rdf:RDF> root)",
    "empty.opml": "not an OPML or RSS 1.0 subscription list (no <opml> or <rdf:RDF> root)",
    "no-feeds.opml": "no feeds in it (no outline with an xmlUrl)",
    "missing.opml": "cannot read: No such file or directory",
    "binary.opml": "not an OPML or RSS 1.0 subscription list (no <opml> or <rdf:RDF> root)",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_exit_2_and_the_config_untouched(
    tmp_path: Path, name: str
) -> None:
    path = write_config(tmp_path)
    before = path.read_bytes()
    target = DATA / name if (DATA / name).exists() else tmp_path / name
    made = {"page.html": b"<!doctype html><html><body><p>Hello</p></body></html>",
            "empty.opml": b"", "binary.opml": bytes(range(256)) * 8,
            "no-feeds.opml": b'<opml version="2.0"><body><outline text="x"/></body></opml>'}
    if name in made:
        target.write_bytes(made[name])
    code, out, err = run("-c", str(path), "opml", "import", str(target))
    assert (code, out, err) == (2, "", f"opml: {target}: {BAD_FILES[name]}\n")
    assert path.read_bytes() == before


def test_a_config_that_does_not_load_is_refused_untouched(tmp_path: Path) -> None:
    path = write_config(tmp_path, body=CONFIG + "  - url: ftp://nope.example/feed\n")
    before = path.read_bytes()
    code, _, err = run("-c", str(path), "opml", "import", str(DATA / "foafroll.rdf"))
    assert code == 2 and err.startswith(f"config: {path}:13: feeds[2].url: bad URL")
    assert path.read_bytes() == before


def test_five_thousand_feeds_in_one_file(tmp_path: Path) -> None:
    lines = [f'<outline text="Feed {i}" type="rss" xmlUrl="https://site{i}.example/feed.xml" '
             f'category="group{i % 50}"/>' for i in range(5000)]  # fmt: skip
    big = tmp_path / "big.opml"
    big.write_text('<?xml version="1.0"?>\n<opml version="2.0"><head><title>Big</title></head>'
                   "<body>\n" + "\n".join(lines) + "\n</body></opml>\n", encoding="utf-8")
    path = write_config(tmp_path)
    code, out, err = run("-c", str(path), "opml", "import", str(big))
    assert code == 0, err
    assert "added 5000 of 5000 feeds" in out
    feeds = load_settings(path).feeds
    assert len(feeds) == 5002
    assert (feeds[-1].url, feeds[-1].title, feeds[-1].tags) == (
        "https://site4999.example/feed.xml", "Feed 4999", ("group49",))


@pytest.mark.parametrize("database", DATABASES, ids=["sqlite", "postgresql"])
def test_export_then_import_round_trips_and_keeps_the_database_line(
    tmp_path: Path, database: str
) -> None:
    source = write_config(tmp_path, database)
    assert run("-c", str(source), "opml", "import", str(DATA / "nested.opml"))[0] == 0
    exported = tmp_path / "out" / "feeds.opml"
    exported.parent.mkdir()
    code, out, err = run("-c", str(source), "opml", "export", "--output", str(exported))
    assert (code, out, err) == (0, "", f"opml: wrote 6 feeds to {exported}\n")

    target_dir = tmp_path / "other"
    target_dir.mkdir()
    target = target_dir / "feeds.yaml"
    target.write_text(f"database: {database}  # the other instance\n", encoding="utf-8")
    code, out, err = run("-c", str(target), "opml", "import", str(exported))
    assert code == 0, err
    assert "added 6 of 6 feeds" in out
    assert target.read_text(encoding="utf-8").startswith(
        f"database: {database}  # the other instance\nfeeds:\n")

    def feeds(path: Path) -> list[tuple[str, str | None, tuple[str, ...]]]:
        return [(f.url, f.title, f.tags) for f in load_settings(path, env={}).feeds]

    assert sorted(feeds(target)) == sorted(feeds(source))  # grouped by first tag: reordered
    assert load_settings(target, env={}).database == load_settings(source, env={}).database \
        .replace(str(tmp_path), str(target_dir))  # a relative SQLite path follows its file


def test_export_to_standard_output_leaves_credentials_out(tmp_path: Path) -> None:
    path = write_config(tmp_path, body=CONFIG + "  - url: https://me:pw@private.example/feed\n"
                                                "    title: \"Bell\\x07 and <tags>\"\n")
    code, out, err = run("-c", str(path), "opml", "export")
    assert code == 0
    assert err == "opml: 1 feed URLs carried a user name or password; written without them\n"
    assert "me:pw" not in out and "pw@" not in out
    found = read_opml(out.encode("utf-8"), "stdout")
    assert found.outlines[-1] == Outline("https://private.example/feed", "Bell and <tags>", ())
    assert found.outlines[0] == Outline("https://feeds.bbci.co.uk/news/world/rss.xml",
                                        "BBC News – World", ("world",))


def test_export_refuses_a_missing_folder_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code, _, err = run("-c", str(path), "opml", "export", "-o", str(tmp_path / "no" / "x.opml"))
    assert (code, err) == (2, f"config: cannot write {tmp_path / 'no' / 'x.opml'}: No such file "
                              "or directory\n")  # fmt: skip


TEXT = st.text(st.characters(codec="utf-8", exclude_characters=",/"), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), TEXT, st.lists(TEXT, max_size=3, unique=True)),
                min_size=1, max_size=20, unique_by=lambda t: t[0]))
def test_written_opml_reads_back_the_same(feeds: list[tuple[int, str, list[str]]]) -> None:
    """What export writes, import reads: titles and tags (bar control characters, which XML
    cannot carry, and outer spaces, which readers strip) for any text."""
    outlines = [Outline(f"https://f{n}.example/rss", title, tuple(tags))
                for n, title, tags in feeds]  # fmt: skip
    found = read_opml(write_opml(outlines, "t", T0), "t")

    def expected(o: Outline) -> tuple[str, str | None, tuple[str, ...]]:
        from aggregator.config.opml import _clean

        title = _clean(o.title or "").strip() or None
        tags = tuple(dict.fromkeys(t for t in (_clean(x).strip() for x in o.tags) if t))
        return o.url, title, tags

    assert [(o.url, o.title, o.tags) for o in found.outlines] == [expected(o) for o in outlines]


def test_no_module_of_the_command_line_loads_listparser_until_opml_runs() -> None:
    import subprocess
    import sys

    probe = "import sys, aggregator.cli; print('listparser' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(DATA.parents[2])})
    assert out.stdout.strip() == "False"


YAML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                    max_size=25).map(str.strip).filter(bool)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(YAML_TEXT, st.lists(YAML_TEXT, max_size=3, unique=True)), min_size=1,
                max_size=5))
def test_any_title_and_tag_survive_the_yaml_edit(
    tmp_path_factory: pytest.TempPathFactory, feeds: list[tuple[str, list[str]]]
) -> None:
    """Titles like ``null``, ``yes``, ``1.0``, ``- x``, ``a: b`` or ``#x`` are quoted as YAML
    needs: the file reads back the very strings."""
    from aggregator.config.feedlist import add_feeds

    path = write_config(tmp_path_factory.mktemp("yaml"))
    wanted = [Outline(f"https://t{i}.example/feed", title, tuple(tags))
              for i, (title, tags) in enumerate(feeds)]  # fmt: skip
    add_feeds(path, wanted)
    got = load_settings(path, env={}).feeds[2:]
    assert [(f.url, f.title, f.tags) for f in got] == [(o.url, o.title, o.tags) for o in wanted]

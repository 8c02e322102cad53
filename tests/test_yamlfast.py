"""The fast YAML reader (libyaml) answers only where it reads a file as the careful one (ruamel).

Both readers run on hand-picked and generated documents: whenever the fast one answers, the data,
the types and every line it remembers equal the careful reader's, and it never accepts a file
the careful one refuses. Its resolver table is ruamel's YAML 1.2 table, read from ruamel itself.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml.resolver import VersionedResolver, implicit_resolvers

from aggregator.config import yamlfast, yamlpure, yamlread
from aggregator.config.yamltree import LineDict, LineList
from aggregator.errors import ConfigError

ROOT = Path(__file__).parent.parent
BOUNDS = (yamlread.MAX_NODES, yamlread.MAX_DEPTH, yamlread.MAX_ALIAS_WEIGHT)

pytestmark = pytest.mark.skipif(not yamlfast.HAVE_LIBYAML, reason="PyYAML built without libyaml")


def same(fast: Any, careful: Any) -> bool:
    """Equal data, equal types (True is not 1) and equal remembered lines, all the way down."""
    if type(fast) is not type(careful):
        return False
    if isinstance(fast, LineDict):
        return (list(fast) == list(careful) and fast.lines == careful.lines
                and all(same(fast[k], careful[k]) for k in fast))  # fmt: skip
    if isinstance(fast, LineList):
        return (len(fast) == len(careful) and fast.lines == careful.lines
                and all(same(a, b) for a, b in zip(fast, careful, strict=True)))  # fmt: skip
    if isinstance(fast, float):
        return repr(fast) == repr(careful) or (math.isnan(fast) and math.isnan(careful))
    return bool(fast == careful)


def check(text: str) -> Any:
    """Both readers on ``text``; the fast one's answer (``UNSURE`` or the data)."""
    fast = yamlfast.load(text, *BOUNDS)
    try:
        careful = yamlpure.load(text, Path("c.yaml"), *BOUNDS)
    except ConfigError as exc:
        assert fast is yamlfast.UNSURE, f"fast reader accepted what ruamel refuses: {exc}"
        return fast
    if fast is not yamlfast.UNSURE:
        assert same(fast, careful), (fast, careful)
    return fast


def test_the_resolver_table_is_ruamels_for_yaml_1_2() -> None:
    """Same tags, in the same order, under the same first characters; the same patterns but
    for the layout of their lines (verbose patterns ignore it)."""

    def row(tag: str, regexp: Any) -> tuple[str, str, int]:
        return tag, re.sub(r"\s+", "", regexp.pattern), regexp.flags & ~re.UNICODE

    ruamels: dict[str, list[tuple[str, str, int]]] = {}
    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            for char in first:
                ruamels.setdefault(char, []).append(row(tag, regexp))
    ours = {char: [row(tag, r) for tag, r in rows] for char, rows in yamlfast.RESOLVERS.items()}
    assert ours == ruamels


SCALARS = ["", "~", "null", "Null", "NULL", "nUll", "true", "True", "TRUE", "tRue", "false", "yes",
           "no", "on", "off", "y", "n", "0", "-0", "+0", "00", "017", "0o17", "0x1F", "0b101",
           "1_000", "_", "1:20", "1.5", "-1.5", "+.5", ".5", "1.", "1e3", "1.0e+3", "-.inf",
           ".NaN", ".nan", "2024-01-01", "2024-01-01 10:00:00", "2024-1-1T1:00:00Z", "<<", "=",
           "http://a.example/f", "15m", "2h", "a b", "-", "-a", "9" * 5000, "1.2.3", "0.5.",
           "+", ".", "..."]  # fmt: skip


@pytest.mark.parametrize("value", SCALARS)
def test_plain_scalars_resolve_and_construct_as_ruamel_does(value: str) -> None:
    resolver = VersionedResolver()
    from ruamel.yaml.nodes import ScalarNode

    assert yamlfast.resolve(value) == str(resolver.resolve(ScalarNode, value, (True, False)))
    check(f"key: {value}\n")
    check(f"- {value}\n- '{value}'\n- \"{value}\"\n")
    check(f"{value}: 1\n")


@given(st.text(alphabet=st.sampled_from("0123456789+-._eExXoObBtTrufalsnN~: <=aZ"), max_size=12))
@settings(max_examples=300, deadline=None)
def test_random_plain_scalars_resolve_as_ruamel_does(value: str) -> None:
    from ruamel.yaml.nodes import ScalarNode

    expected = VersionedResolver().resolve(ScalarNode, value, (True, False))
    assert yamlfast.resolve(value) == str(expected)


DOCUMENTS = [
    "", "# only a comment\n", "---\n", "---\n...\n", "a: 1\n", "a: 1\r\nb: [x, y]\r\n",
    "\ufeffa: 1\n", "a: 1\n---\nb: 2\n", "%YAML 1.1\n---\na: yes\n",
    "%TAG !e! tag:e.com:\n---\na: 1\n",
    "a: !!str 1\n", "a: !!int '1'\n", "a: ! 1\n", "a:\n  - b\n  -\n  - c: d\n    e: f\n",
    "a: |\n  text\n   more\n\n", "a: >-\n  folded\n  text\n\nb: 1\n", "a: 'it''s'\n",
    'a: "\\x41\\u00e9\\U0001F600\\t\\/"\n', 'a: "\\e\\N\\_\\L\\P"\n', "a: \"\\'\"\n",
    "a: b#c\n", "a: b # c\n", "a: plain\n  continued\n  lines\n", "[a:b, c: d, {e: f}]\n",
    "{a, b: c}\n", "? a\n: b\n", "? [a, b]\n: c\n", "a: &x 1\nb: *x\n", "a: *x\n",
    "a: &x [1, 2]\nb: *x\nc: &x 3\nd: *x\n", "a: &x\n  b: 1\nc:\n  <<: *x\n  d: 2\n",
    "a: &x {b: 1}\nc: {<<: [*x, {e: 2}], b: 3}\n", "<<: 1\n", "a: =\n", "a: 1\na: 2\n",
    "a:\tb\n", "a: b\t\n", "\ta: b\n", "a:\n\t- b\n", "- - a\n  - b\n- c\n", "a: b: c\n",
    "a: [\n", "a: 'unterminated\n", "a: \"\\q\"\n", "a: \x85b\n", "a: \u2028b\n", "a: \x01\n",
    "&a [*a]\n", "a: &a\n  - *a\n", "x" * 1100 + ": 1\n", "a: " + "[" * 70 + "]" * 70 + "\n",
    "a: 0x_1\n", "a: 1__0\n", "a: .inf\n", "a: 2001-12-14t21:59:43.10-05:00\n",
    "'a': 1\n\"b\": 2\n", "a: -\n", "- -\n", "a: ---\n", "a: - b\n", "!!map {a: 1}\n",
    "a: 1 # c\n# d\nb: 2 # e\n", "a:\n- b\n- c\n", "a:    \n  b\n", "a: [b,\n  c]\n",
    # anchor names: libyaml ends one at ':' or '?', ruamel reads on
    "&x: 1\n", "- &a:a :b\n", "a: &a?b 1\n", "a: &x:y [1]\nb: *x:y\n", "a: [&x 1, *x]\n",
    "|# c\n", "a: |-\n  x\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_read_alike(text: str) -> None:
    check(text)


def test_the_shipped_example_and_an_ordinary_config_take_the_fast_path() -> None:
    example = (ROOT / "config" / "feeds.example.yaml").read_text(encoding="utf-8")
    assert check(example) is not yamlfast.UNSURE
    feeds = "".join(f"  - url: http://127.0.0.{n}:8000/feeds/{n}.xml\n    interval: 15m\n"
                    f"    tags: [news, n{n}]\n" for n in range(50))  # fmt: skip
    text = ("database: sqlite:///a.db\nhttp:\n  allow_private_networks: true\n  "
            "per_host_delay: 0.5\nservice:\n  concurrency: 64\ndefaults:\n  fetch_articles: "
            f"false\nfeeds:\n{feeds}")  # fmt: skip
    assert check(text) is not yamlfast.UNSURE


PIECES = ["a", "b", "url", "- ", "  ", "    ", ": ", ":", "\n", "\n  ", "\n- ", "? ", "# c",
          "#", "'", "''", '"', '\\n', "[", "]", "{", "}", ", ", "&x ", "*x", "<<", "!!str ",
          "|", ">", "-", "1", "0x1", "1.5", "true", "null", "~", "\t", " ", "---", "...", "%",
          "@", "`", "=", "\r\n", "é", "&a:b", "&x?", "?!x ", "\u00a0", "\u3000"]  # fmt: skip


@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
@settings(max_examples=1500, deadline=None)
def test_generated_documents_read_alike(text: str) -> None:
    check(text)


def test_bounds_send_the_file_to_the_careful_reader() -> None:
    many = "x: [" + "1," * 50 + "]\n"
    assert yamlfast.load(many, 40, 64, 100) is yamlfast.UNSURE
    deep = "x: " + "[" * 10 + "]" * 10 + "\n"
    assert yamlfast.load(deep, 1000, 5, 100) is yamlfast.UNSURE
    bomb = "a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
    assert yamlfast.load(bomb, 1000, 64, 5) is yamlfast.UNSURE
    assert yamlfast.load(bomb, 1000, 64, 100) is not yamlfast.UNSURE



ODD = "\t\x0b\x00\x7f\x85\xa0\u2028\u2029\ufeff\ufffe\ud800ab: \n\r"


@given(st.text(alphabet=st.characters() | st.sampled_from(ODD)))
@settings(max_examples=2000, deadline=None)
def test_the_ascii_check_of_unusual_characters_is_the_whole_class(text: str) -> None:
    """An ASCII text is checked against the ASCII part of the class only (issue 14): the same
    verdict as the whole class's, for ASCII text and any other."""
    for case in (text, text.encode("ascii", "ignore").decode()):
        assert yamlfast.unusual(case) == (re.search(yamlfast._UNUSUAL, case) is not None)

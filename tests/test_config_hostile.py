"""A configuration file cannot hurt the process (issue 11): bombs, caps, tags, nesting, duplicates.

Every hostile file is generated here; each is refused with one line naming the file and the line,
or loads. The CLI cases run ``check-config`` in a real subprocess (exit 2, one line on stderr).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.config import yamlread as configyaml
from aggregator.config.settings import load_settings
from aggregator.config.yamlread import MAX_CONFIG_BYTES, MAX_DEPTH
from aggregator.errors import ConfigError

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"config: {path}")
    return message


def billion_laughs(levels: int = 9, at: str = "top") -> str:
    """The classic shape: each level an anchored list of ten aliases of the level before."""
    lines = ['lol0: &lol0 "lol"']
    for n in range(1, levels + 1):
        lines.append(f"lol{n}: &lol{n} [" + ", ".join([f"*lol{n - 1}"] * 10) + "]")
    if at == "tags":  # the shape that reached 10 GB inside feeds[].tags
        lines = ["x-bomb:"] + ["  " + line for line in lines]
        lines += ["feeds:", "  - url: https://a.example/f", f"    tags: *lol{levels}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("at", ["top", "tags"])
def test_billion_laughs_is_refused_at_the_alias_line(tmp_path: Path, at: str) -> None:
    path = write(tmp_path, billion_laughs(at=at))
    assert path.stat().st_size < 2048
    message = error_of(path)
    assert re.search(r": YAML aliases \(\*lol\d\) expand to more than [\d,]+ values$", message)
    line = int(message.split(f"{path}:", 1)[1].split(":", 1)[0])
    assert "*lol" in path.read_text().splitlines()[line - 1]


def test_billion_laughs_through_the_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, billion_laughs(at="tags"))
    code, err = check_config(path)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"config: {path}:")
    assert "YAML aliases (*lol" in err


def check_config(path: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "check-config"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=110, check=False,
    )
    return done.returncode, done.stderr.strip()


def test_ordinary_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, """
feeds:
  - &common
    url: https://a.example/f
    interval: 2h
    tags: &tags [news, world]
  - url: https://b.example/f
    interval: 30m
    <<: *common
  - url: https://c.example/f
    tags: *tags
"""), env={})
    a, b, c = settings.feed_configs()
    assert (a.interval, a.tags) == (7200, ("news", "world"))
    assert (b.url, b.interval, b.tags) == ("https://b.example/f", 1800, ("news", "world"))
    assert c.tags == ("news", "world")


def test_alias_use_in_proportion_to_the_file_is_not_a_bomb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget grows with the document: `<<: *common` in every feed is fine at any count."""
    monkeypatch.setattr(configyaml, "MAX_ALIAS_WEIGHT", 100)
    feeds = "".join(f"  - url: https://f{n}.example/f\n    <<: *common\n" for n in range(1, 300))
    path = write(tmp_path, "feeds:\n  - &common\n    url: https://f0.example/f\n    interval: 2h\n"
                           f"    fetch_articles: false\n{feeds}")
    assert {f.interval for f in load_settings(path, env={}).feed_configs()} == {7200}
    assert "expand to more than" in error_of(write(tmp_path, billion_laughs(levels=3), "b.yaml"))


def test_errors_in_merged_values_name_where_written_and_where_merged(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - &common\n    url: https://a.example/f\n"
                           "    intervall: 2h\n  - url: https://b.example/f\n    <<: *common\n")
    with pytest.raises(ConfigError) as info:  # one line per error: where written, where merged
        load_settings(path, env={})
    assert str(info.value).splitlines() == [
        f"config: {path}:4: feeds[0].intervall: unknown key; did you mean `interval`?",
        f"{path}:6: feeds[1].intervall: unknown key; did you mean `interval`?"]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "feeds: &loop\n  - *loop\n"))
    assert ":2: YAML nested deeper than" in message


def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    line = "# " + "x" * 76 + "\n"
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as out:  # 50 MB of comments
        for _ in range(50 * 10**6 // len(line)):
            out.write(line)
    message = error_of(path)
    assert message == (f"config: {path}: larger than {MAX_CONFIG_BYTES // 2**20} MiB, "
                       "the limit for a configuration file")
    code, err = check_config(path)
    assert code == 2 and err == message


def test_many_comment_lines_load_and_lines_stay_right(tmp_path: Path) -> None:
    """160k comment lines took 99 s with ruamel's round-trip loader (quadratic); now linear."""
    comments = "".join(f"# comment {n}\n" for n in range(160_000))
    path = write(tmp_path, "database: sqlite:///x.db\n" + comments
                 + "feeds:\n  - url: https://a.example/f\n" + comments + "    intervall: 5m\n")
    assert error_of(path).endswith(
        f":{2 * 160_000 + 4}: feeds[0].intervall: unknown key; did you mean `interval`?")


@pytest.mark.parametrize("text, expected", [
    ("feeds: !!python/object/apply:os.system ['touch pwned']\n",
     ":1: YAML tag !!python/object/apply:os.system is not allowed"),
    ("database: !!python/name:os.system\n", ":1: YAML tag !!python/name:os.system is not allowed"),
    ("feeds:\n  - url: !custom https://a.example/f\n", ":2: YAML tag !custom is not allowed"),
    ("database: !!binary aGVsbG8=\n", ":1: YAML tag !!binary is not allowed"),
    ("feeds: !!set {a, b}\n", ":1: YAML tag !!set is not allowed"),
    ("? [a, b]\n: 1\n", ":1: a YAML key must be a plain value"),
    ("database: a\nhttp: {}\ndatabase: b\n", ":3: duplicate key 'database' (first at line 1)"),
    ("feeds:\n  - url: https://a.example/f\n    url: https://b.example/f\n",
     ":3: duplicate key 'url' (first at line 2)"),
    ("service:\n  concurrency: 1" + "0" * 5000 + "\n", ":2: bad YAML value: Exceeds the limit"),
    ("database: a\n---\ndatabase: b\n", ":2: invalid YAML: but found another document"),
    ("database: \"a\x00b\"\n", ": invalid YAML: unacceptable character #x0000"),
    ("feeds: [\n", ":2: invalid YAML:"),
])
def test_hostile_yaml_is_one_line_naming_the_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in error_of(write(tmp_path, text))
    assert not (tmp_path / "pwned").exists()


def test_explicit_core_tags_are_read(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "feeds:\n  - url: https://a.example/f\n"
                                             "    title: !!str 2024\n"), env={})
    assert settings.feeds[0].title == "2024"


@pytest.mark.parametrize("shape", ["flow", "block"])
def test_deep_nesting_is_refused(tmp_path: Path, shape: str) -> None:
    depth = 100_000 if shape == "flow" else 2 * MAX_DEPTH
    if shape == "flow":
        text = "feeds: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "".join(" " * n + f"k{n}:\n" for n in range(depth)) + " " * depth + "v\n"
    message = error_of(write(tmp_path, text))
    assert f"YAML nested deeper than {MAX_DEPTH} levels" in message


def test_the_node_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ruamel composes ~25k nodes a second: the cap bounds a file of tiny values (`[1,1,1,…]`)."""
    monkeypatch.setattr(configyaml, "MAX_NODES", 1000)
    path = write(tmp_path, "x-many: [" + "1," * 2000 + "]\n")
    assert ": more than 1,000 YAML values; split the file" in error_of(path)


def test_a_large_scalar_under_the_cap_loads(tmp_path: Path) -> None:
    title = "t" * (2 * 2**20)
    settings = load_settings(write(tmp_path, f'feeds:\n  - url: https://a.example/f\n'
                                             f'    title: "{title}"\n'), env={})
    assert settings.feeds[0].title == title

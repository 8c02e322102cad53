"""Reads the configuration file's YAML into plain data that remembers the line of every value.

The file is written by an operator, yet a careless copy must not hurt the process (issue 11): it
is read up to ``MAX_CONFIG_BYTES`` and composed up to ``MAX_NODES`` nodes and ``MAX_DEPTH``
levels; what aliases repeat may weigh at most ``MAX_ALIAS_WEIGHT`` plus the document's own count
of values (a value weighs 1, plus 1 per 16 characters: a 1 KB billion-laughs file otherwise
expands to gigabytes once copied, while ``<<: *common`` in every feed stays well inside); only the
YAML 1.2 core tags are read (``!!python/object`` and custom tags are refused); a duplicate key is
refused with both lines.

Two readers apply these rules (``yamltree``): libyaml's, fast, for the files it is sure to read as
the careful one does (``yamlfast``), and ruamel's pure-Python one (``yamlpure``) for all others,
which words every refusal. Reads one file; no network, no database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aggregator.config.yamltree import LineDict, LineList
from aggregator.errors import ConfigError

__all__ = ["MAX_ALIAS_WEIGHT", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_NODES", "LineDict",
           "LineList", "load_yaml", "read_config"]

MAX_CONFIG_BYTES = 10 * 2**20  # 10 MiB: room for MAX_NODES values and long comments
MAX_NODES = 500_000  # ruamel composes about 25,000 nodes a second: 20 s at most
MAX_DEPTH = 64  # a configuration needs 6
MAX_ALIAS_WEIGHT = 100_000  # reached through aliases, beyond the document's own values


def read_config(file: Path) -> str:
    """The file's text, refused past ``MAX_CONFIG_BYTES`` before it is parsed at all."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        limit = MAX_CONFIG_BYTES // 2**20
        raise ConfigError(f"{file}: larger than {limit} MiB, the limit for a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text ({exc.reason})") from None


def load_yaml(text: str, file: Path) -> Any:
    """Plain data (``LineDict``, ``LineList``, scalars), or None for an empty document."""
    from aggregator.config import yamlfast

    bounds = (MAX_NODES, MAX_DEPTH, MAX_ALIAS_WEIGHT)  # read now: tests lower them
    tree = yamlfast.load(text, *bounds)
    if tree is not yamlfast.UNSURE:
        return tree
    from aggregator.config import yamlpure

    return yamlpure.load(text, file, *bounds)

"""The careful reader of the configuration's YAML: ruamel's pure-Python safe composer, bounded.

It decides every file the fast reader (``yamlfast``) is not sure of, and words every error: a
parse error names the line and what ruamel found there. ruamel's safe composer is used, not its
round-trip loader: that one joins a run of comment lines by repeated string concatenation,
quadratic in their number (160k comment lines took 99 s). Reads text; no file, no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from aggregator.config.yamltree import Alias, Builder, Refused
from aggregator.errors import ConfigError


class _BoundedComposer(Composer):
    """ruamel's composer, counting nodes and levels as it goes (the file is refused at once)."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # YAML allows it: an alias names the latest anchor
        self.nodes = 0
        self.max_nodes = self.max_depth = 0  # set by ``load`` before it composes

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise Refused(line, f"more than {self.max_nodes:,} YAML values; split the file")
        if self.depth >= self.max_depth:
            raise Refused(line, f"YAML nested deeper than {self.max_depth} levels")
        node = super().compose_node(parent, index)
        if isinstance(event, AliasEvent):
            return Alias(node, line, str(event.anchor))
        return node


def load(text: str, file: Path, max_nodes: int, max_depth: int, max_alias_weight: int) -> Any:
    """Plain data (``LineDict``, ``LineList``, scalars), or None for an empty document; any
    problem is a ``ConfigError`` naming the file and, where known, the line."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _BoundedComposer
    composer = yaml.composer
    composer.max_nodes, composer.max_depth = max_nodes, max_depth
    try:
        root = yaml.compose(text)
        budget = max_alias_weight + composer.nodes
        construct = _constructing(yaml)
        return None if root is None else Builder(construct, budget, max_depth).build(root, 0, None)
    except Refused as exc:
        raise ConfigError(f"{file}:{exc.line}: {exc}") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: invalid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:  # the reader's errors (control characters) carry no mark
        raise ConfigError(f"{file}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # a safety net: the depth bounds above come first
        raise ConfigError(f"{file}: YAML nested too deeply") from None


def _constructing(yaml: YAML) -> Any:
    """ruamel's safe constructor for the values that are not strings (YAML 1.2 core schema)."""
    constructor = yaml.constructor

    def construct(node: Any, line: int) -> Any:
        try:
            return constructor.construct_object(node)
        except (ValueError, YAMLError) as exc:  # e.g. an int of more than 4,300 digits
            raise Refused(line, f"bad YAML value: {str(exc).splitlines()[0][:200]}") from None

    return construct

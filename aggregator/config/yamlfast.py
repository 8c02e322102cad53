"""The fast reader of the configuration's YAML: libyaml's events (PyYAML's C parser), composed here.

ruamel's pure-Python scanner took 0.13 s for 1,000 feeds at every start (issue 14); libyaml
reads them in a few milliseconds. It only ever answers for a file it reads exactly as the careful
reader (``yamlpure``) does, and returns ``UNSURE`` otherwise, so that every refusal and its
wording stay that reader's: any parse error, bound, tag, directive, second document or value
other than a string, null, boolean, or plain decimal number; an unusual character (C1 controls,
the YAML 1.1 line breaks NEL, LS, PS, or a byte-order mark); or PyYAML built without libyaml.
Plain scalars resolve by YAML 1.2's core schema, ruamel's table (``tests/test_yamlfast.py``
holds the two together and compares both readers on many documents). Reads text; no file.
"""

from __future__ import annotations

import re
from typing import Any, Final

from aggregator.config.yamltree import CORE, MAP, SEQ, STR, Alias, Builder, Refused

try:
    from yaml import YAMLError
    from yaml._yaml import CParser
    from yaml.events import (
        AliasEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )

    HAVE_LIBYAML = True
except ImportError:  # PyYAML without libyaml (or none): the careful reader does it all
    HAVE_LIBYAML = False

UNSURE: Final = object()

# Characters that both parsers may not treat alike: what ruamel's reader refuses, the YAML 1.1
# line breaks (lines would be counted apart) and U+FEFF. Of ASCII, that leaves the controls
# but line feed and carriage return: an ASCII text (most files) is checked for those alone, and
# the whole class, 5 ms to compile at every start, is compiled for the first text beyond ASCII.
_UNUSUAL = ("[^\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
            "\U00010000-\U0010ffff]")  # fmt: skip
_UNUSUAL_ASCII = re.compile("[^\n\r\x20-\x7e]")

# ruamel's YAML 1.2 implicit resolvers (ruamel/yaml/resolver.py), by first character, in its
# order; a plain scalar matching none is a string.
_BOOL = re.compile("^(?:true|True|TRUE|false|False|FALSE)$", re.X)
_FLOAT = re.compile(r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)  # fmt: skip
_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?[0-9_]+
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)  # fmt: skip
_MERGE = re.compile("^(?:<<)$")
_NULL = re.compile(r"""^(?: ~
    |null|Null|NULL
    | )$""", re.X)  # fmt: skip
_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)  # fmt: skip
_VALUE = re.compile("^(?:=)$")
_YAML = re.compile("^(?:!|&|\\*)$")
_ROWS = [("bool", _BOOL, "tTfF"), ("float", _FLOAT, "-+0123456789."),
         ("int", _INT, "-+0123456789"), ("merge", _MERGE, "<"), ("null", _NULL, "~nN"),
         ("timestamp", _TIMESTAMP, "0123456789"), ("value", _VALUE, "="),
         ("yaml", _YAML, "!&*")]  # fmt: skip
RESOLVERS: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
for _name, _regexp, _first in _ROWS:
    for _char in _first:
        RESOLVERS.setdefault(_char, []).append((CORE + _name, _regexp))
RESOLVERS[""] = [(CORE + "null", _NULL)]

_NAME_ENDS = frozenset(("", " ", "\n", "\r", ",", "]", "}"))
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_POINT = re.compile(r"[-+]?[0-9]+\.[0-9]*")


class _Unsure(Exception):
    pass


class _Node:
    """A composed node, shaped as ``yamltree`` reads them."""

    __slots__ = ("id", "start_mark", "tag", "value")

    def __init__(self, kind: str, tag: str, value: Any, start_mark: Any) -> None:
        self.id, self.tag, self.value, self.start_mark = kind, tag, value, start_mark


def load(text: str, max_nodes: int, max_depth: int, max_alias_weight: int) -> Any:
    """What ``yamlpure.load`` would return for ``text``, or ``UNSURE``."""
    if not HAVE_LIBYAML or unusual(text):
        return UNSURE
    composer = _Composer(text, max_nodes, max_depth)
    try:
        root = composer.document()
        if root is None:
            return None
        budget = max_alias_weight + composer.nodes
        return Builder(_construct, budget, max_depth).build(root, 0, None)
    except (_Unsure, Refused, YAMLError, ValueError, RecursionError):
        return UNSURE


def unusual(text: str) -> bool:
    """Whether ``text`` holds a character both parsers may not treat alike (``_UNUSUAL``)."""
    if text.isascii():
        return _UNUSUAL_ASCII.search(text) is not None
    return re.search(_UNUSUAL, text) is not None  # compiled once, in re's cache


def resolve(value: str) -> str:
    """The tag of a plain scalar, as ruamel's YAML 1.2 resolver gives it."""
    for tag, regexp in RESOLVERS.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return STR


def _construct(node: _Node, line: int) -> Any:
    """The values ruamel's safe constructor makes as Python's own parsers do; others unsure."""
    value, tag = node.value, node.tag
    if tag == CORE + "null":
        return None
    if tag == CORE + "bool":
        return value.lower() == "true"
    if tag == CORE + "int" and _DECIMAL.fullmatch(value):
        return int(value)  # more than 4,300 digits: ValueError, so unsure
    if tag == CORE + "float" and _POINT.fullmatch(value):
        return float(value)
    raise _Unsure


class _Composer:
    """libyaml's events → nodes, counting nodes and levels as ruamel's composer does."""

    def __init__(self, text: str, max_nodes: int, max_depth: int) -> None:
        parser = CParser(text)
        self._text = text
        self._get, self._peek = parser.get_event, parser.peek_event
        self._max_nodes, self._max_depth = max_nodes, max_depth
        self.nodes = 0
        self._anchors: dict[str, _Node] = {}

    def document(self) -> _Node | None:
        """The only document's root; None for an empty stream."""
        self._get()  # stream start
        start: Any = self._get()
        if type(start) is StreamEndEvent:
            return None
        if type(start) is not DocumentStartEvent or start.version or start.tags:
            raise _Unsure  # a %YAML or %TAG directive: ruamel's resolver would change
        root: _Node = self._node(0)  # an alias first would name no anchor yet
        self._get()  # document end
        if type(self._get()) is not StreamEndEvent:
            raise _Unsure  # another document: refused, in ruamel's words
        return root

    def _node(self, depth: int) -> Any:
        event: Any = self._get()
        self.nodes += 1
        if self.nodes > self._max_nodes or depth >= self._max_depth:
            raise _Unsure
        kind = type(event)
        if event.anchor is not None:
            self._check_name(event.anchor, event.start_mark.index, kind is AliasEvent)
        if kind is AliasEvent:
            if event.anchor not in self._anchors:
                raise _Unsure
            return Alias(self._anchors[event.anchor], event.start_mark.line + 1, event.anchor)
        node = _start(event)
        if event.anchor is not None:
            self._anchors[event.anchor] = node
        if kind is SequenceStartEvent:
            while type(self._peek()) is not SequenceEndEvent:
                node.value.append(self._node(depth + 1))
            self._get()
        elif kind is MappingStartEvent:
            while type(self._peek()) is not MappingEndEvent:
                node.value.append((self._node(depth + 1), self._node(depth + 1)))
            self._get()
        return node

    def _check_name(self, name: str, at: int, alias: bool) -> None:
        """libyaml ends an anchor's name at the first character that is not a letter, digit,
        '-' or '_'; ruamel only at a space or a flow indicator (``&a:b`` is one name to it)."""
        end = at + 1 + len(name)
        written = ("*" if alias else "&") + name
        if self._text[at:end] != written or self._text[end : end + 1] not in _NAME_ENDS:
            raise _Unsure


def _start(event: Any) -> _Node:
    """The node an event opens (its items come after), its tag resolved."""
    if event.tag is not None:
        raise _Unsure  # an explicit tag: rare, and read by ruamel's rules
    kind = type(event)
    if kind is ScalarEvent:
        if event.style in ("|", ">"):
            raise _Unsure  # block scalars: libyaml takes headers ruamel refuses ("|#")
        tag = resolve(event.value) if event.implicit[0] else STR
        return _Node("scalar", tag, event.value, event.start_mark)
    if kind is SequenceStartEvent:
        return _Node("sequence", SEQ, [], event.start_mark)
    if kind is MappingStartEvent:
        return _Node("mapping", MAP, [], event.start_mark)
    raise _Unsure

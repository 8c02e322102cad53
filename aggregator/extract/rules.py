"""Per-site extraction rules: CSS selectors as plain data loaded from YAML; never touches a page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, timedelta, timezone
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import soupsieve
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from aggregator.errors import ExtractError

SELECTOR_KEYS = (
    "body", "amp_body", "title", "published", "modified", "authors", "dateline", "remove",
)
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


class RuleError(ExtractError, ValueError):
    """A site rule is malformed; the message names the rule and the key."""


@dataclass(frozen=True, slots=True)
class SiteRule:
    """CSS selectors for one site; for each field the first selector that matches wins."""

    domains: tuple[str, ...]
    body: tuple[str, ...] = ()
    amp_body: tuple[str, ...] = ()  # tried first on AMP pages (<html amp> / ⚡)
    title: tuple[str, ...] = ()
    published: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    dateline: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    dateline_pattern: str | None = None  # regex with group "dateline", matched at the body's start
    # Where the site's pages state local time without an offset: an IANA zone ("Asia/Almaty",
    # right across offset changes) or a fixed offset ("+06:00").
    timezone: str | None = None
    name: str = ""

    def tzinfo(self) -> dt.tzinfo | None:
        """The site's zone, for naive dates on its pages."""
        return parse_zone(self.timezone) if self.timezone else None


def parse_zone(text: str) -> dt.tzinfo:
    """An IANA zone name or a fixed UTC offset."""
    if "/" in text:
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {text!r}") from exc
    return parse_offset(text)


def parse_offset(text: str) -> timezone:
    """Turn "+06:00" / "-0330" / "UTC" into a fixed offset."""
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    m = _OFFSET_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a UTC offset like +06:00: {text!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    if minutes > 14 * 60:
        raise ValueError(f"UTC offset out of range: {text!r}")
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


class SiteRules:
    """Immutable lookup of rules by host; a subdomain uses its parent domain's rule."""

    __slots__ = ("_by_domain",)

    def __init__(self, rules: Iterable[SiteRule] = ()) -> None:
        by_domain: dict[str, SiteRule] = {}
        for rule in rules:  # later rules (user rules) override earlier ones (presets)
            for domain in rule.domains:
                by_domain[domain] = rule
        self._by_domain: Mapping[str, SiteRule] = by_domain

    @classmethod
    def load(
        cls, user_rules: Sequence[Mapping[str, Any]] = (), *, presets: bool = True
    ) -> SiteRules:
        """Shipped presets (config/sites/*.yaml) then the user's rules, validated."""
        rules = list(load_presets()) if presets else []
        rules += [rule_from_mapping(raw, f"site rule #{i + 1}") for i, raw in enumerate(user_rules)]
        return cls(rules)

    def for_url(self, url: str) -> SiteRule | None:
        """The rule for the URL's host or its nearest parent domain."""
        host = _rule_host(url)
        labels = host.split(".")
        for i in range(len(labels)):
            rule = self._by_domain.get(".".join(labels[i:]))
            if rule is not None:
                return rule
        return None

    def __len__(self) -> int:
        return len(set(map(id, self._by_domain.values())))


def _rule_host(url: str) -> str:
    """The site a URL belongs to; a Google AMP cache URL belongs to the site it caches."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return ""
    if host.endswith(".cdn.ampproject.org"):
        # /c/s/www.example.com/path (https) or /c/www.example.com/path (http)
        segments = [s for s in parts.path.split("/") if s]
        if segments[:2] == ["c", "s"] and len(segments) > 2:
            return segments[2].lower()
        if segments[:1] == ["c"] and len(segments) > 1:
            return segments[1].lower()
    return host


def load_presets() -> Iterable[SiteRule]:
    """The rules shipped as package data of ``aggregator.sites``, in file-name order."""
    for entry in sorted(_presets_folder().iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            yield from rules_from_yaml(entry.read_text(encoding="utf-8"), entry.name)


def _presets_folder() -> Traversable:
    """Installed: package data of ``aggregator.sites``; a source checkout: config/sites itself."""
    try:
        return files("aggregator.sites")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "config" / "sites"


def rules_from_yaml(text: str, source: str) -> list[SiteRule]:
    """A YAML document holding one rule (a mapping) or a list of rules."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise RuleError(f"site rules {source}: invalid YAML: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    return [rule_from_mapping(raw, f"{source} rule #{i + 1}") for i, raw in enumerate(items)]


def rule_from_mapping(raw: Mapping[str, Any], where: str) -> SiteRule:
    """Validate one rule; every message names the rule and the offending key."""
    if not isinstance(raw, Mapping):
        raise RuleError(f"{where}: a rule must be a mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(SiteRule)}
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        raise RuleError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    domains = tuple(_domain(d, where) for d in _strings(raw.get("domains"), where, "domains"))
    if not domains:
        raise RuleError(f"{where}: key 'domains' must list at least one domain")
    where = f"{where} ({domains[0]})"
    values: dict[str, Any] = {"domains": domains, "name": str(raw.get("name") or domains[0])}
    for key in SELECTOR_KEYS:
        values[key] = tuple(_selector(s, where, key) for s in _strings(raw.get(key), where, key))
    values["dateline_pattern"] = _pattern(raw.get("dateline_pattern"), where)
    values["timezone"] = _timezone(raw.get("timezone"), where)
    return SiteRule(**values)


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: key {key!r} must be a string or a list of non-empty strings")
    return tuple(value)


def _domain(value: str, where: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
        raise RuleError(f"{where}: key 'domains': {value!r} is not a domain name like example.com")
    return domain


def _selector(value: str, where: str, key: str) -> str:
    try:
        soupsieve.compile(value)
    except (soupsieve.SelectorSyntaxError, ValueError, NotImplementedError) as exc:
        raise RuleError(f"{where}: key {key!r}: bad CSS selector {value!r}: {exc}") from exc
    return value


def _pattern(value: Any, where: str) -> str | None:
    if value is None:
        return None
    try:
        compiled = re.compile(str(value)) if isinstance(value, str) else None
    except re.error as exc:
        raise RuleError(f"{where}: key 'dateline_pattern': bad regex: {exc}") from exc
    if compiled is None or "dateline" not in compiled.groupindex:
        raise RuleError(f"{where}: key 'dateline_pattern' needs a group (?P<dateline>…)")
    return str(value)


def _timezone(value: Any, where: str) -> str | None:
    if value is None:
        return None
    try:
        parse_zone(str(value))
    except ValueError as exc:
        raise RuleError(f"{where}: key 'timezone': {exc}") from exc
    return str(value)

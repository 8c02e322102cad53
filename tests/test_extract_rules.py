"""Site rules: the shipped presets load, user rules override them, bad rules fail clearly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import ExtractError
from aggregator.extract import RuleError, SiteRule, SiteRules
from aggregator.extract.rules import rules_from_yaml

SITES = Path(__file__).parent.parent / "config" / "sites"


def test_every_shipped_preset_loads() -> None:
    for path in sorted(SITES.glob("*.yaml")):
        assert rules_from_yaml(path.read_text(encoding="utf-8"), path.name), path.name
    assert len(SiteRules.load()) >= 1


def test_presets_can_be_turned_off() -> None:
    assert SiteRules.load(presets=False).for_url("https://www.inform.kz/en/x") is None


def test_lookup_by_host_and_parent_domain() -> None:
    rule = SiteRule(domains=("example.com",), body=("main",))
    rules = SiteRules([rule])
    assert rules.for_url("https://example.com/a") is rule
    assert rules.for_url("https://news.EXAMPLE.com./a") is rule
    assert rules.for_url("https://notexample.com/a") is None
    assert rules.for_url("https://example.com.evil.net/a") is None
    assert rules.for_url("not a url") is None
    assert rules.for_url("http://[::1/") is None


def test_amp_cache_urls_use_the_origin_site_rule() -> None:
    rules = SiteRules.load()
    cached = "https://www-inform-kz.cdn.ampproject.org/c/s/www.inform.kz/en/amp/x_a1"
    assert rules.for_url(cached) is rules.for_url("https://www.inform.kz/en/x")
    assert rules.for_url("https://x.cdn.ampproject.org/c/") is None
    assert rules.for_url("https://x.cdn.ampproject.org/v/other") is None


def test_most_specific_domain_wins() -> None:
    parent = SiteRule(domains=("example.com",), body=("main",))
    child = SiteRule(domains=("blog.example.com",), body=(".post",))
    rules = SiteRules([parent, child])
    assert rules.for_url("https://blog.example.com/a") is child
    assert rules.for_url("https://shop.example.com/a") is parent


def test_user_rule_shape_and_override() -> None:
    rules = SiteRules.load([{
        "domains": ["inform.kz"], "body": "article .content", "title": ["h1"],
        "published": ["time"], "authors": [".by"], "dateline": [".dl"], "remove": [".share"],
        "timezone": "+06:00",
    }])
    rule = rules.for_url("https://inform.kz/x")
    assert rule is not None
    assert rule.body == ("article .content",)
    assert rule.remove == (".share",)
    zone = rule.tzinfo()
    assert zone is not None and zone.utcoffset(None) == timedelta(hours=6)
    other = rules.for_url("https://qazinform.com/x")  # the preset still serves the other domains
    assert other is not None and other is not rule


@pytest.mark.parametrize(("raw", "message"), [
    ({"body": ["main"]}, "key 'domains'"),
    ({"domains": []}, "key 'domains'"),
    ({"domains": ["not a domain"]}, "key 'domains'"),
    ({"domains": ["a.example"], "body": [3]}, "key 'body'"),
    ({"domains": ["a.example"], "body": ["div[["]}, "key 'body'.*bad CSS selector"),
    ({"domains": ["a.example"], "remove": ""}, "key 'remove'"),
    ({"domains": ["a.example"], "boddy": ["main"]}, "unknown key 'boddy'"),
    ({"domains": ["a.example"], "timezone": "Mars/Olympus"}, "key 'timezone'"),
    ({"domains": ["a.example"], "timezone": "+25:00"}, "key 'timezone'"),
    ({"domains": ["a.example"], "dateline_pattern": "^(.*)"}, "key 'dateline_pattern'"),
    ({"domains": ["a.example"], "dateline_pattern": "(?P<dateline>"}, "key 'dateline_pattern'"),
    ("domains: x", "must be a mapping"),
])
def test_bad_rules_name_the_rule_and_the_key(raw: Any, message: str) -> None:
    with pytest.raises(RuleError, match=rf"^extract: site rule #2.*{message}"):
        SiteRules.load([{"domains": ["ok.example"]}, raw])


def test_rule_errors_are_value_and_extract_errors() -> None:
    with pytest.raises(ValueError):
        SiteRules.load([{"domains": []}])
    with pytest.raises(ExtractError):
        SiteRules.load([{"domains": []}])


def test_yaml_errors_name_the_file() -> None:
    with pytest.raises(RuleError, match=r"broken\.yaml"):
        rules_from_yaml("domains: [a.example\nbody: :", "broken.yaml")


def test_zone_names_follow_offset_changes() -> None:
    rule = SiteRules.load().for_url("https://www.inform.kz/x")
    assert rule is not None and rule.timezone == "Asia/Almaty"

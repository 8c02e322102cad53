"""Configuration: the YAML file read within bounds and validated into ``Settings``."""

from aggregator.config.settings import HttpSettings, Settings, load_settings, parse_duration

__all__ = ["HttpSettings", "Settings", "load_settings", "parse_duration"]

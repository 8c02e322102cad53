"""The aggregator's branches of the error tree drawn in :mod:`storage.errors`."""

from __future__ import annotations

from storage.errors import ArchiverError, ExportFormatError, LeaseLost, StorageError

__all__ = [
    "ArchiverError",
    "ConfigError",
    "ExportFormatError",
    "ExtractError",
    "FetchError",
    "LeaseLost",
    "ParseError",
    "StorageError",
]


class ConfigError(ArchiverError):
    """The configuration is wrong; the message names the file, the line and the key."""

    stage = "config"


class FetchError(ArchiverError):
    """A request failed before a usable response: network, timeout, size cap, SSRF guard."""

    stage = "fetch"


class ParseError(ArchiverError):
    """A feed document could not be read at all."""

    stage = "parse"


class ExtractError(ArchiverError):
    """An article page could not be cleaned into an article."""

    stage = "extract"

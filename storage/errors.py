"""The project's error tree. Its root lives here because ``storage`` must not import ``aggregator``.

    ArchiverError                 every error the project raises on purpose
    ├── ConfigError               aggregator.errors: the YAML file (names file, line and key)
    ├── FetchError                aggregator.errors: HTTP, network, SSRF guard, size and time caps
    ├── ParseError                aggregator.errors: a feed document that cannot be read
    ├── ExtractError              aggregator.errors: an article page that cannot be cleaned
    ├── RemovalRefused            a configuration that would deactivate most archived feeds
    ├── SearchQueryError          a search query that does not read (storage.searchquery)
    └── StorageError              the database, a migration, an export file
        ├── LeaseLost             a poll's lease expired and another worker took the feed
        ├── ExportError           an export file that cannot be written where it was asked
        └── ExportFormatError     an export file that is not what ``import`` expects

Each message starts with its stage ("fetch: ", "storage: ", ...) and names the feed, file or URL,
so that the CLI can print it as one line.
"""

from __future__ import annotations


class ArchiverError(Exception):
    """Root of the project's errors."""

    stage = "error"

    def __init__(self, message: str) -> None:
        prefix = f"{self.stage}: "
        super().__init__(message if message.startswith(prefix) else prefix + message)


class RemovalRefused(ArchiverError):
    """A configuration would deactivate most of the archive's active feeds at once (a file cut
    short, the wrong file): ``sync_feeds`` writes nothing unless told to go on (issue 13)."""

    stage = "config"

    def __init__(self, retiring: list[str], active: int) -> None:
        self.retiring = retiring
        self.active = active
        super().__init__(f"would deactivate {len(retiring)} of the {active} active feeds")


class SearchQueryError(ArchiverError):
    """A search query the syntax cannot read; the message says what and where (a usage error,
    not a storage one: nothing was wrong with the archive)."""

    stage = "search"


class StorageError(ArchiverError):
    """The database or an archive file failed; nothing half-written is left behind."""

    stage = "storage"


class LeaseLost(StorageError):
    """The poll's lease was taken over (it expired); its result is dropped, not written."""


class ExportError(StorageError):
    """An export cannot be written: its target is no regular file, its folder is missing, ..."""

    stage = "export"


class ExportFormatError(StorageError):
    """An export file is malformed; the message names the file and the line."""

    stage = "import"

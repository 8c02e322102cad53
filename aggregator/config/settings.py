"""Loads and validates the YAML configuration; every error names the file, the line and the key.

It only reads the file: nothing here touches the network or the database.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aggregator.config.listen import parse_listen
from aggregator.config.messages import message
from aggregator.config.yamlread import LineDict, LineList, load_yaml, read_config
from aggregator.errors import ConfigError
from aggregator.fetch.urlcheck import url_problem
from storage.dburl import Timeouts, check_database_url
from storage.identity import normalize_url
from storage.records import FeedConfig
from storage.redact import (
    has_raw_userinfo,
    redact_text,
    redact_url,
    split_credentials,
    strip_credentials,
)

DEFAULT_DATABASE = "sqlite:///data/archive.db"
DEFAULT_USER_AGENT = (
    "feed-archiver/0.1 (+https://github.com/feed-archiver/feed-archiver; archives news feeds)"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Matched against the stripped value: \s* on both sides of an optional unit backtracked
# quadratically on a long run of spaces (10,000 took 0.25 s; the file may hold 10 MiB).
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_SIZES = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9,
          "gib": 2**30}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """'90s', '15m', '2h', '1d', '1w', or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 15m, 2h or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).strip())
        if not match:
            raise ValueError(f"invalid duration {str(value)[:40]!r}: use e.g. 90s, 15m, 2h, 1d "
                             "or seconds")
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """'15MiB', '500kB', or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 15MiB or a number of bytes")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(str(value).strip())
        if not match or match[2].lower() not in _SIZES:
            raise ValueError(f"invalid size {str(value)[:40]!r}: use e.g. 500kB, 15MiB or bytes")
        size = int(float(match[1]) * _SIZES[match[2].lower()])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
Gap = Annotated[float, BeforeValidator(lambda v: parse_duration(v, allow_zero=True))]
Size = Annotated[int, BeforeValidator(parse_size)]


def check_http_url(url: str) -> str:
    """A feed URL no request could reach (malformed host, bad port, another scheme) is refused
    here, by the rule the HTTP client applies, rather than failing at every poll (issue 10)."""
    if has_raw_userinfo(url.strip()):  # first: such a URL splits the password into the host
        raise ValueError(f"bad URL {redact_url(url)!r}: escape '#', '?', '/' and '@' in the "
                         "user name or password (%23, %3F, %2F, %40)")
    problem = url_problem(url.strip())
    if problem is not None:
        raise ValueError(f"bad URL {redact_url(url)!r}: {redact_text(problem)}")
    return url.strip()


EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
UVLOOP_MISSING = ("uvloop is not installed (`pip install uvloop`; it does not build on Windows or "
                  "PyPy): choose auto or asyncio")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(_Strict):
    """How the service talks to the web; the security switches are off-by-default escapes."""

    user_agent: str = DEFAULT_USER_AGENT
    timeout: Duration = 30.0  # total deadline per request
    connect_timeout: Duration = 10.0
    max_body_bytes: Size = Field(default=15 * 2**20, alias="max_body_size")
    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()
    proxy: str | None = None  # None: environment proxies are ignored
    per_host_concurrency: int = Field(default=2, ge=1, le=16)
    per_host_delay: Gap = 1.0
    respect_robots: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"bad network {net!r}: {exc}") from None
        return value


class Retention(_Strict):
    max_age: Duration | None = None
    max_items: int | None = Field(default=None, ge=1)


class FeedDefaults(_Strict):
    interval: Duration = 900.0
    min_interval: Duration = 300.0
    max_interval: Duration = 86400.0
    fetch_articles: bool = True
    retention: Retention = Retention()


class FeedEntry(_Strict):
    url: str
    title: str | None = None
    interval: Duration | None = None
    min_interval: Duration | None = None
    max_interval: Duration | None = None
    fetch_articles: bool | None = None
    tags: tuple[str, ...] = ()
    retention: Retention | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)


class ServiceSettings(_Strict):
    """The service's own knobs: how many polls at once, how often the dispatcher ticks."""

    concurrency: int = Field(default=128, ge=1, le=512)
    tick: Duration = 5.0
    lease: Duration = 300.0
    article_batch: int = Field(default=50, ge=1)
    parse_workers: int = Field(default=0, ge=0, le=64)  # 0: parse in 2 threads, N: processes
    processes: int = Field(default=1, ge=1, le=64)  # polling processes: 1 per core to use
    # uvloop where it is installed (aggregator/runtime/eventloop.py), or asyncio's own loop.
    event_loop: EventLoopChoice = "auto"
    # /healthz and /metrics (aggregator/runtime/health.py): HOST:PORT, off when unset.
    listen: str | None = None
    # The web view (issue 16): ``run`` serves it too when ``web``; ``aggregator serve`` always.
    web: bool = False
    web_listen: str = "127.0.0.1:8322"
    # Who may reach a server of ours bound beyond loopback (aggregator/config/listen.py).
    listen_token: str | None = Field(default=None, repr=False)
    listen_public: bool = False

    @field_validator("event_loop")
    @classmethod
    def _loop(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError(UVLOOP_MISSING)
        return value

    @field_validator("web_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("listen_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 16 or any(c.isspace() for c in value)):
            raise ValueError("a token is at least 16 characters, no spaces "
                             "(e.g. the output of `openssl rand -hex 16`)")
        return value

    @field_validator("listen")
    @classmethod
    def _metrics_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @model_validator(mode="after")
    def _exposed(self) -> ServiceSettings:
        """Metrics name feeds and hosts: beyond loopback only with a token, or said on purpose."""
        exposed = self.listen is not None and not parse_listen(self.listen).loopback
        if exposed and not self.listen_token and not self.listen_public:
            raise ValueError(f"listen: {self.listen} is reachable from other machines: set "
                             "service.listen_token (a bearer token) or service.listen_public: true")
        return self


class DatabaseTimeouts(_Strict):
    """How long to wait for PostgreSQL (``storage.dburl.Timeouts``); SQLite ignores them."""

    connect: Duration = 10.0  # a server that accepts and never answers is given up after this
    statement: Gap = 600.0  # the server cancels a longer statement; 0: never. Not migrations.


class Settings(_Strict):
    database: str = DEFAULT_DATABASE
    database_timeouts: DatabaseTimeouts = DatabaseTimeouts()
    database_auto_migrate: bool = True  # false: only `aggregator db upgrade` migrates
    http: HttpSettings = HttpSettings()
    defaults: FeedDefaults = FeedDefaults()
    service: ServiceSettings = ServiceSettings()
    sites: tuple[dict[str, Any], ...] = ()
    feeds: tuple[FeedEntry, ...] = ()

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        return check_database_url(value)

    def timeouts(self) -> Timeouts:
        """The database timeouts as the store takes them."""
        t = self.database_timeouts
        return Timeouts(connect=t.connect, statement=t.statement or None)

    def feed_configs(self) -> list[FeedConfig]:
        """The feeds with defaults applied: what the store keeps in its feeds table."""
        return [self._feed_config(feed) for feed in self.feeds]

    def _feed_config(self, feed: FeedEntry) -> FeedConfig:
        d = self.defaults
        retention = feed.retention or d.retention
        min_interval = feed.min_interval or d.min_interval
        max_interval = feed.max_interval or d.max_interval
        interval = min(max(feed.interval or d.interval, min_interval), max_interval)
        url, auth = split_credentials(feed.url)  # the archive knows the feed without them
        return FeedConfig(
            url=url,
            auth=auth,
            title=feed.title,
            tags=feed.tags,
            interval=interval,
            min_interval=min_interval,
            max_interval=max(max_interval, min_interval),
            fetch_articles=d.fetch_articles if feed.fetch_articles is None else feed.fetch_articles,
            retention_days=retention.max_age / 86400 if retention.max_age else None,
            retention_count=retention.max_items,
        )


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; ``AGGREGATOR_DATABASE`` in ``env`` overrides ``database``
    (so one file can serve a test database or a second instance)."""
    file = Path(path)
    tree = _load_yaml(read_config(file), file)
    settings = _validate(tree, file)
    _check_duplicates(settings, tree, file)
    database = (env if env is not None else os.environ).get("AGGREGATOR_DATABASE")
    return settings.model_copy(
        update={"database": resolve_database(database or settings.database, file.parent)}
    )


def resolve_database(url: str, base: Path) -> str:
    """A relative SQLite path is taken relative to the config file, not the working directory."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix) :].partition("?")[0] in ("", ":memory:"):
        return url  # an in-memory one is refused as it is, not turned into the file's folder
    path = Path(url[len(prefix) :])
    return url if path.is_absolute() else prefix + str((base / path).resolve())


def _load_yaml(text: str, file: Path) -> Any:
    tree = load_yaml(text, file)
    if tree is None:
        return LineDict()
    if not isinstance(tree, dict):
        raise ConfigError(f"{file}:1: the top level must be a mapping of settings")
    return tree


def _validate(tree: Any, file: Path) -> Settings:
    try:
        return Settings.model_validate(_plain(tree))
    except ValidationError as exc:
        lines = [_describe(error, tree, file) for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def _describe(error: Mapping[str, Any], tree: Any, file: Path) -> str:
    loc = tuple(error["loc"])
    key = _dotted(loc)
    line = _line_of(tree, loc)
    where = f"{file}:{line}" if line else str(file)
    return f"{where}: {key}: {message(error, Settings)}"


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-before[parse_duration(), float]", "float", "constrained-str"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _line_of(tree: Any, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that the YAML tree knows."""
    node, line = tree, None
    for part in loc:
        found = (isinstance(node, LineDict) and part in node) or (
            isinstance(node, LineList) and isinstance(part, int) and part < len(node))
        if not found:
            break
        line = node.lines[part]
        node = node[part]
    return line


def _plain(node: Any) -> Any:
    """The loader's line-keeping types → plain dicts, lists and scalars for pydantic."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def feed_key(url: str) -> str:
    """What makes two configured feeds one (``_check_duplicates``, ``opml import``)."""
    bare = strip_credentials(url)  # the archive knows a feed without them (issue 11)
    return normalize_url(bare, drop_tracking=False) or bare


def _check_duplicates(settings: Settings, tree: Any, file: Path) -> None:
    """Two feeds are one when their URLs meet as the archive's links do (storage.identity):
    host case, default port, fragment, escapes of unreserved characters, IDN, query order.
    The path's case counts, and no query parameter is dropped (``?rss=`` may select a feed)."""
    seen: dict[str, int] = {}
    for index, feed in enumerate(settings.feeds):
        key = feed_key(feed.url)
        if key in seen:
            first = settings.feeds[seen[key]].url
            alike = ("" if first == feed.url
                     else f" as {redact_url(first)}; both are {redact_url(key)}")  # fmt: skip
            raise ConfigError(
                f"{file}:{_line_of(tree, ('feeds', index))}: feeds[{index}].url: the same feed "
                f"twice ({redact_url(feed.url)}, first at line "
                f"{_line_of(tree, ('feeds', seen[key]))}{alike})"
            )
        seen[key] = index

"""The HTTP client: a fetch returns a value; it stores nothing. Only it and its pool speak HTTP.

Security bar (DESIGN.md): every hop is followed by hand (at most 5) so that each one is checked by
the SSRF guard in :mod:`.netguard`; only http and https; environment proxies ignored;
the decoded body is capped and decompressed by hand from the raw stream (:mod:`.hop`: httpx would
inflate a whole chunk of a gzip bomb before any cap acts); a total deadline bounds each request,
because read timeouts never fire on a server that sends one byte every half second.

Requests skip httpx's client (auth, cookie and redirect machinery we do not use) and go to
httpcore's connections through :mod:`.httppool` (one pool per origin, HTTP/1.1 kept alive).
httpx still parses URLs (cached per URL string) and joins redirect targets. With a configured
proxy, httpcore's proxy pool is used as httpx would build it. httpx itself loads at its first
use: a URL already in canonical form, what almost every feed has, never needs it.

Non-2xx answers are returned, not raised: the polling policy reads their status and headers.
:class:`FetchError` means there is no usable response at all.

Credentials (:class:`BasicAuth`, from a configured ``user:password@``) go as an ``Authorization``
header to their own origin only (scheme, host and port, RFC 6454): a redirect to another origin,
or from https down to http, gets none (issue 11).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpcore

from aggregator.errors import FetchError
from aggregator.fetch.hop import Cap, Hop, read_hop
from aggregator.fetch.httppool import Origin, OriginPools
from aggregator.fetch.netguard import (
    ALLOW_HINT,
    BlockedAddress,
    BlockedFetch,
    GuardedBackend,
    Resolver,
    parse_networks,
)
from aggregator.fetch.response import (
    HttpSettingsLike,
    Response,
    request_headers,
)
from aggregator.fetch.urlcheck import simple_url, url_problem

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_REDIRECTS", "BasicAuth", "HttpClient", "HttpSettingsLike", "Response"]

MAX_REDIRECTS = 5
MAX_IN_FLIGHT = 256  # requests at once per client; more wait (outside their deadline)
_SCHEMES = frozenset({"http", "https"})
_NETWORK_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)

_ProxyPool = httpcore.AsyncHTTPProxy | httpcore.AsyncSOCKSProxy


@dataclass(frozen=True, slots=True)
class _Target:
    """A parsed URL and what a request to it needs, computed once per URL string."""

    text: str
    scheme: str
    core: httpcore.URL
    host_header: tuple[bytes, bytes]
    problem: str | None  # why no request can reach it (bad port, malformed host), or None
    parsed: httpx.URL | None  # None: ``text`` was canonical already (see ``url``)

    @property
    def url(self) -> httpx.URL:
        """httpx's form, for what only it knows (IDNA host, joining a redirect's Location)."""
        import httpx  # loaded by the first URL that needs it (see _url_errors)

        return self.parsed if self.parsed is not None else httpx.URL(self.text)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials (RFC 7617) for the origin of ``url``; never shown in a repr."""

    url: str
    user: str = field(repr=False)
    password: str = field(repr=False)

    def header(self) -> tuple[bytes, bytes]:
        token = base64.b64encode(f"{self.user}:{self.password}".encode())
        return (b"Authorization", b"Basic " + token)


class HttpClient:
    """One per service: pooled connections, the guard in the pool, the caps in :meth:`get`."""

    def __init__(
        self,
        settings: HttpSettingsLike,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``resolver`` replaces DNS (tests, split-horizon setups); ``ssl_context`` the CA store."""
        self._settings = settings
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._backend = GuardedBackend(
            guard=not settings.allow_private_networks,
            allowed=parse_networks(settings.allowed_networks),
            resolver=resolver,
        )
        # With a proxy the proxy connects, so the guard can only vet each hop's name beforehand.
        self._preflight = settings.proxy is not None and not settings.allow_private_networks
        context = _tls_context(ssl_context)
        # Nothing here reads HTTP_PROXY & co.: a proxy is used only when `proxy` is configured.
        self._pool: _ProxyPool | OriginPools = (
            _proxy_pool(settings.proxy, context())
            if settings.proxy is not None
            else OriginPools(functools.partial(Origin, self._backend, context))
        )
        self._headers = [  # what httpx's client sent by default, in its order
            (b"Accept", b"*/*"),
            (b"Accept-Encoding", b"gzip, deflate"),
            (b"Connection", b"keep-alive"),
            (b"User-Agent", settings.user_agent.encode("ascii")),
        ]
        every = settings.timeout
        self._timeouts = {"timeout": {
            "connect": settings.connect_timeout, "read": every, "write": every, "pool": every,
        }}

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        max_bytes: int | None = None,
        truncate: bool = False,
        auth: BasicAuth | None = None,
    ) -> Response:
        """GET ``url`` within the total deadline; conditional when validators are given.

        A body over the cap raises, unless ``truncate`` asks for its first ``max_bytes`` instead
        (robots.txt: RFC 9309 §2.5 parses the first 500 KiB). ``auth`` is sent to hops on its
        own origin only.
        """
        cap = Cap(self._settings.max_body_bytes if max_bytes is None else max_bytes, truncate)
        headers = self._request_headers(request_headers(etag, last_modified, accept))
        deadline = self._settings.timeout
        async with self._slots:
            started = time.monotonic()
            try:
                async with asyncio.timeout(deadline):
                    return await self._follow(url, headers, cap, started, auth)
            except TimeoutError:
                raise FetchError(f"total deadline of {deadline:g}s exceeded for {url}") from None

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _request_headers(self, extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
        """The defaults (Accept first), then the validators; ``extra`` is ASCII already."""
        if not extra:
            return self._headers
        headers = self._headers
        if (accept := extra.pop("Accept", None)) is not None:
            headers = [(b"Accept", accept.encode()), *headers[1:]]
        return headers + [(k.encode(), v.encode()) for k, v in extra.items()]

    async def _follow(
        self,
        url: str,
        headers: list[tuple[bytes, bytes]],
        cap: Cap,
        started: float,
        auth: BasicAuth | None,
    ) -> Response:
        """Follow redirects hop by hop so that each one is vetted and recorded."""
        current = _checked(url, url)
        seen = {current.text}
        targets: list[str] = []
        statuses: list[int] = []
        authorized = _authorized(headers, auth)
        while True:
            same_origin = auth is not None and _origin_of(auth.url) == current.core.origin
            hop = await self._hop(current, authorized if same_origin else headers, cap, url,
                                  first=not targets)
            location = hop.location()
            if location is None:
                return Response(
                    url=url,
                    final_url=current.text,
                    status=hop.status,
                    headers=hop.headers,
                    body=hop.body,
                    elapsed=time.monotonic() - started,
                    redirects=tuple(targets),
                    redirect_statuses=tuple(statuses),
                )
            if len(targets) >= MAX_REDIRECTS:
                raise FetchError(f"too many redirects (more than {MAX_REDIRECTS}) for {url}")
            current = _next_url(current, location, url)
            if current.text in seen:
                raise FetchError(f"redirect loop at {current.text} for {url}")
            seen.add(current.text)
            targets.append(current.text)
            statuses.append(hop.status)

    async def _hop(
        self, target: _Target, headers: list[tuple[bytes, bytes]], cap: Cap, url: str, first: bool
    ) -> Hop:
        # The first hop is the URL asked for, even where its parsed form differs from the text
        # (an IDN host in punycode, an escaped space): only a redirect makes it "redirected".
        where = url if first else f"{target.text} (redirected from {url})"
        try:
            if self._preflight:
                await self._backend.vetted_addresses(target.url.host, target.core.origin.port)
            return await self._read(target, [target.host_header, *headers], cap, where)
        except BlockedAddress as exc:
            raise BlockedFetch(
                f"blocked address {exc.address} ({exc.reason}) for {where}{ALLOW_HINT}"
            ) from None
        except httpcore.TimeoutException as exc:
            raise FetchError(f"{_timeout_kind(exc)} for {where}") from None
        except _NETWORK_ERRORS as exc:
            raise FetchError(f"network error ({_describe(exc)}) for {where}") from None

    async def _read(
        self, target: _Target, headers: list[tuple[bytes, bytes]], cap: Cap, where: str
    ) -> Hop:
        """One request and its answer; the pool's own API, else httpcore's (a proxy)."""
        if isinstance(self._pool, OriginPools):
            head, body = await self._pool.exchange(target.core, headers, self._timeouts["timeout"])
            try:
                return await read_hop(head.status_code, head.headers.raw_items(), body, cap, where)
            finally:
                await body.aclose()
        request = httpcore.Request(b"GET", target.core, headers=headers, extensions=self._timeouts)
        response = await self._pool.handle_async_request(request)
        try:
            assert isinstance(response.stream, AsyncIterable)
            return await read_hop(response.status, response.headers, response.stream, cap, where)
        finally:
            await response.aclose()


def _tls_context(given: ssl.SSLContext | None) -> Callable[[], ssl.SSLContext]:
    """The TLS context, made on the first https connection: loading the CA store costs 17 ms
    of CPU and 2 MB, for nothing in a run whose feeds are all http."""

    @functools.cache
    def context() -> ssl.SSLContext:
        import httpx

        made = given or httpx.create_ssl_context(trust_env=False)  # no SSL_CERT_* env
        made.set_alpn_protocols(["http/1.1"])  # as httpcore sets it (no HTTP/2 here)
        return made

    return context


def _proxy_pool(proxy_url: str, context: ssl.SSLContext) -> _ProxyPool:
    """What httpx's transport builds for a configured proxy (the proxy connects, not us)."""
    import httpx

    proxy = httpx.Proxy(proxy_url)
    url = httpcore.URL(
        scheme=proxy.url.raw_scheme,
        host=proxy.url.raw_host,
        port=proxy.url.port,
        target=proxy.url.raw_path,
    )
    if proxy.url.scheme in ("socks5", "socks5h"):
        return httpcore.AsyncSOCKSProxy(
            proxy_url=url,
            proxy_auth=proxy.raw_auth,
            ssl_context=context,
            max_connections=MAX_IN_FLIGHT,
            max_keepalive_connections=64,
        )
    return httpcore.AsyncHTTPProxy(
        proxy_url=url,
        proxy_auth=proxy.raw_auth,
        proxy_headers=proxy.headers.raw,
        proxy_ssl_context=proxy.ssl_context,
        ssl_context=context,
        max_connections=MAX_IN_FLIGHT,
        max_keepalive_connections=64,
    )


def _url_errors() -> tuple[type[Exception], ...]:
    """What parsing a URL may raise. httpx loads where it is first needed, here only once
    something was raised: with the modules it brings (http.cookiejar, urllib.request) it was
    20 ms of CPU at every start, unused by a poll of canonical http URLs (issue 14)."""
    import httpx

    return (httpx.InvalidURL, TypeError, ValueError)


def _checked(raw: str, url: str) -> _Target:
    """Parse a URL and refuse anything but http(s) with a host."""
    try:
        parsed = _parse(raw)
    except _url_errors() as exc:
        raise FetchError(f"invalid URL ({exc}) for {url}") from None
    scheme = parsed.scheme
    if scheme not in _SCHEMES:
        what = "redirect to unsupported scheme" if raw != url else "unsupported scheme"
        raise FetchError(f"{what} {scheme or '(none)'!r} for {url}")
    if not parsed.core.host:  # url.raw_host, not .host (that decodes IDNA, raises on bad xn--)
        raise FetchError(f"invalid URL (no host) for {url}")
    if parsed.problem is not None:  # the rule check-config applies (aggregator.fetch.urlcheck)
        what = f"invalid URL {url}" if raw == url else f"redirect to invalid URL {raw} for {url}"
        raise FetchError(f"{what}: {parsed.problem}")
    return parsed


@functools.lru_cache(maxsize=2048)  # about 1 KB each; a feed's URL comes back every poll
def _parse(raw: str) -> _Target:
    """httpx's URL parsing (IDNA, percent-encoding): pure, and 13 us, 7 % of a 304's CPU.

    A URL already in canonical form (most) is split by one regex instead, in 2 us: a whole
    ``poll --once`` meets each URL once, so the cache above does not help it.
    """
    return _simple_target(raw) or _general_target(raw)


def _simple_target(raw: str) -> _Target | None:
    simple = simple_url(raw)
    if simple is None:
        return None
    scheme, host, port, target = simple
    core = httpcore.URL(scheme=scheme.encode(), host=host.encode(), port=port,
                        target=target.encode())  # fmt: skip
    netloc = host if port is None else f"{host}:{port}"
    return _Target(raw, scheme, core, (b"Host", netloc.encode()), None, None)


def _general_target(raw: str) -> _Target:
    import httpx

    url = httpx.URL(raw)
    core = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    text = str(url)
    return _Target(text, url.scheme, core, (b"Host", url.netloc), url_problem(text), url)


def _authorized(
    headers: list[tuple[bytes, bytes]], auth: BasicAuth | None
) -> list[tuple[bytes, bytes]]:
    return headers if auth is None else [*headers, auth.header()]


def _origin_of(url: str) -> httpcore.Origin | None:
    """The origin credentials belong to (None for a URL that cannot be parsed: sent nowhere)."""
    try:
        return _parse(url).core.origin
    except _url_errors():
        return None


def _next_url(current: _Target, location: str, url: str) -> _Target:
    try:
        target = current.url.join(location.strip())
    except _url_errors() as exc:
        raise FetchError(f"invalid redirect Location {location!r} ({exc}) for {url}") from None
    return _checked(str(target), url)


def _timeout_kind(exc: Exception) -> str:
    if isinstance(exc, httpcore.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpcore.PoolTimeout):
        return "timeout waiting for a connection"
    if isinstance(exc, httpcore.WriteTimeout):
        return "write timeout"
    return "read timeout"


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

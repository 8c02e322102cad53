"""The web view's application: routes, templates, and the headers every answer carries.

Read-only by construction: the store it is given is opened read-only (its connections refuse
writes), and every route answers GET and HEAD only. What a page shows is escaped by Jinja2's
autoescape; stored HTML reaches a page only through the ``clean`` filter (``storage.safehtml``,
the policy the archive stores under), and links only when they are http(s). The
Content-Security-Policy allows no script at all, so a payload that slipped through anyway
could not run.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator.web import feedroutes, pages, search
from aggregator.web.render import Web, environment

if TYPE_CHECKING:
    from storage.store import Store

PAGE_SIZE = 50
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")  # fmt: skip
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


def create_app(
    store: Store, *, token: str | None = None, hosts: list[str] | None = None,
    page_size: int = PAGE_SIZE, clock: Callable[[], datetime] | None = None,
) -> Starlette:  # fmt: skip
    """The application over ``store`` (open it read-only: ``Store.open(..., read_only=True)``).

    ``token``: every request must carry ``Authorization: Bearer <token>``. ``hosts``: the
    ``Host`` names accepted (None: any); a server on loopback accepts only loopback names,
    so that a web page elsewhere cannot reach it through DNS rebinding."""

    templates = Jinja2Templates(env=environment())
    every = [*pages.ROUTES, *search.ROUTES, *feedroutes.ROUTES]
    routes = [Route(path, endpoint, methods=["GET", "HEAD"]) for path, endpoint in every]
    routes.append(Route("/static/style.css", _stylesheet, methods=["GET", "HEAD"]))
    middleware = [Middleware(SecurityHeaders), Middleware(BearerToken, token=token)]
    if hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers=pages.EXCEPTION_HANDLERS)  # fmt: skip
    app.state.web = Web(store, templates, page_size, clock or (lambda: datetime.now(UTC)))
    return app


_STYLE: bytes | None = None


def _stylesheet(request: Request) -> Response:
    global _STYLE
    if _STYLE is None:
        _STYLE = files("aggregator.web").joinpath("static", "style.css").read_bytes()
    return Response(_STYLE, media_type="text/css",
                    headers={"cache-control": "public, max-age=3600"})  # fmt: skip


class SecurityHeaders:
    """Every answer (pages, errors, feeds, raw captures) carries the strict headers; a handler
    may tighten the policy (a raw capture adds ``sandbox``), never loosen it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BearerToken:
    """With a token set, a request without ``Authorization: Bearer <token>`` gets 401."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is not None and not self._allowed(scope):
            response = PlainTextResponse("a bearer token is required (Authorization: Bearer …)",
                                         status_code=401,
                                         headers={"www-authenticate": "Bearer"})  # fmt: skip
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        assert self.token is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                kind, _, given = value.partition(b" ")
                return kind.lower() == b"bearer" and hmac.compare_digest(given.strip(),
                                                                         self.token)
        return False

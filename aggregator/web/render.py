"""What the pages share: the ``Web`` state, and the template filters that decide what HTML and
which links reach a page (stored HTML only through ``clean``; links only when http or https).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from storage.safehtml import sanitize_fragment

if TYPE_CHECKING:
    from storage.store import Store


@dataclass(frozen=True, slots=True)
class Web:
    """What the handlers share: the archive, the templates, the page size and the clock."""

    store: Store
    templates: Jinja2Templates
    page_size: int
    clock: Callable[[], datetime]

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("now", self.clock())
        return self.templates.TemplateResponse(request, name, context, status_code=status)


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def environment() -> Environment:
    env = Environment(loader=PackageLoader("aggregator.web", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters["clean"] = clean_html
    env.filters["link"] = safe_link
    env.filters["when"] = when
    env.filters["ago"] = ago
    return env


def clean_html(fragment: str | None) -> Markup:
    """Stored HTML under the archive's policy, marked safe for the template: the one way HTML
    reaches a page (an archive written before issue 11 may hold it unclean)."""
    return Markup(sanitize_fragment(fragment)) if fragment else Markup("")


def safe_link(url: str | None) -> str | None:
    """``url`` if a browser may follow it (http or https), else None: a feed's
    ``javascript:`` link is shown as text, never made a link."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def when(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            return value
    if value.tzinfo is None:  # the archive's times are UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime) -> str:
    """'3 h ago', 'in 12 min': how far a time is from now, roughly."""
    if value is None:
        return ""
    seconds = (value - now).total_seconds()
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{size / length:.0f} {unit}"
            break
    else:
        amount = "moments" if size < 5 else f"{size:.0f} s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"

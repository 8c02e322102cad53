"""The web view (issue 16): a read-only, server-rendered window on the archive, and its feeds out.

Only ``cli`` and ``runtime`` use it. It loads starlette, jinja2 and uvicorn, so its names load
on first use: ``aggregator serve`` and ``run`` with ``service.web`` pay for them, nothing else.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WebView", "create_app", "serve", "serve_until"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aggregator.web.app import create_app

        return create_app
    if name in ("WebView", "serve", "serve_until"):
        from aggregator.web import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The lucidtrace server: ingest, query API and web pages in one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from lucidtrace.store.engine import create_engine
from lucidtrace.ui.routes import api, auth_pages, health, ingest, pages, trace_pages
from lucidtrace.ui.settings import ServerSettings

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)
"""Sent with every response: only the app's own scripts and styles, nothing inline."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(
    settings: ServerSettings | None = None, *, engine: sa.Engine | None = None
) -> FastAPI:
    """The server app on ``engine`` (default: opened from ``settings.database_url``, migrated)."""
    settings = settings or ServerSettings()
    store = engine if engine is not None else create_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is None:
            store.dispose()

    app = FastAPI(
        title="lucidtrace",
        summary="Agent traces, audit trails and faithfulness findings",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = store

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    for module in (health, ingest, auth_pages, api, pages, trace_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

"""The lucidtrace server: ingest, query API and web pages in one FastAPI app."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lucidtrace.store.engine import create_engine, ensure_schema
from lucidtrace.ui.auth import api_principal
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
    """The server app on ``engine`` (default: opened from ``settings.database_url``, migrated).

    The store it opens is migrated to this version's schema, PostgreSQL included (under the
    migrations' advisory lock, so servers starting together migrate once).
    """
    settings = settings or ServerSettings()
    store = engine if engine is not None else _open_store(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is None:
            store.dispose()

    app = _App(
        title="lucidtrace",
        summary="Agent traces, audit trails and faithfulness findings",
        lifespan=lifespan,
        # Swagger UI and ReDoc load scripts from a CDN, which the CSP (and offline use) rules
        # out; the schema itself is served below, behind the API's auth.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # ``/traces/`` is not redirected to ``/traces``: the redirect would be built from the
        # request's Host header, which a client chooses.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = store
    secret = settings.session_secret or secrets.token_urlsafe(32)
    app.state.session_secret = secret.encode("utf-8")
    app.state.ingest_gate = ingest.IngestGate(settings.max_concurrent_ingest)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(api_principal)])
    def openapi_schema() -> dict[str, Any]:
        """The OpenAPI schema of the API."""
        return app.openapi()

    for module in (health, ingest, auth_pages, api, pages, trace_pages):
        app.include_router(module.router)
    pages.register_error_pages(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class _App(FastAPI):
    """The FastAPI app with :class:`_Guard` outside every other layer.

    Starlette runs ``@app.middleware`` and ``app.add_middleware`` layers inside its
    ``ServerErrorMiddleware``: the 500 that answers an unhandled exception would leave without
    the security headers. Wrapping the whole stack puts them on every response.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return _Guard(super().build_middleware_stack())


class _Guard:
    """Security headers on every response; NUL characters in the URL refused with a 400.

    No stored value contains NUL (ingest replaces it) and PostgreSQL refuses it in text
    parameters, so a path or query parameter holding one is refused here, once for every route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        query = scope.get("query_string", b"")
        if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
            response = JSONResponse(
                {"detail": "NUL characters (%00) are not allowed in the URL's path or parameters"},
                status_code=400,
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _open_store(url: str | None) -> sa.Engine:
    engine = create_engine(url, upgrade=False)
    try:
        ensure_schema(engine, upgrade_existing=True)
    except BaseException:
        engine.dispose()
        raise
    return engine

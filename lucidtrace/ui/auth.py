"""Who is asking: every route declares one of these dependencies (tested by a route table).

* :func:`public`: no credentials (health checks, the sign-in page, static assets).
* :func:`ingest_principal`: an API key (``Authorization: Bearer KEY`` or ``X-API-Key``).
* :func:`api_principal`: an API key, or a signed-in session cookie (then unsafe methods need
  the CSRF token).
* :func:`page_principal`: a signed-in session cookie; without one the browser is sent to the
  sign-in page.

With auth off every caller acts in the default project. The project always comes from the
credentials, never from the request's content.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request

from lucidtrace.store.models import DEFAULT_PROJECT_ID
from lucidtrace.ui.deps import settings_of

__all__ = ["Principal", "api_principal", "ingest_principal", "page_principal", "public"]


@dataclass(frozen=True)
class Principal:
    """The caller: its project and how it proved it (``key``, ``session`` or ``open``)."""

    project_id: str
    via: str


_OPEN = Principal(project_id=DEFAULT_PROJECT_ID, via="open")


def public(request: Request) -> None:
    """An explicit decision that a route needs no credentials."""


def ingest_principal(request: Request) -> Principal:
    """The project of an ingest request, from its API key."""
    if not settings_of(request).auth:
        return _OPEN
    raise HTTPException(status_code=401, detail="an API key is required")


def api_principal(request: Request) -> Principal:
    """The project of a JSON API request, from its API key or session."""
    if not settings_of(request).auth:
        return _OPEN
    raise HTTPException(status_code=401, detail="an API key or a signed-in session is required")


def page_principal(request: Request) -> Principal:
    """The project of a web page request, from its session."""
    if not settings_of(request).auth:
        return _OPEN
    raise HTTPException(status_code=401, detail="sign in first")

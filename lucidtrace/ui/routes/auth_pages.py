"""Signing in to the web UI with an API key, and signing out.

``GET /login`` shows a form (API key, CSRF token tied to a sign-in cookie); ``POST /login``
checks the key, sets the signed session cookie and redirects (303) to ``next``, a path on this
site only. ``POST /logout`` (a signed-in session and its CSRF token) clears the cookie. With auth
off there is nobody to sign in: ``/login`` redirects to ``/``.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from lucidtrace.ui.auth import (
    Principal,
    end_key_sessions,
    end_session,
    login_token,
    new_login_nonce,
    page_principal,
    principal_for_key,
    public,
    safe_next,
    set_login_cookie,
    start_session,
    verify_login_token,
)
from lucidtrace.ui.deps import settings_of
from lucidtrace.ui.templating import render

__all__ = ["router"]

router = APIRouter(tags=["sign-in"], include_in_schema=False)


@router.get("/login", dependencies=[Depends(public)], response_model=None)
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in form."""
    if not settings_of(request).auth:
        return RedirectResponse("/", status_code=303)
    return _form(request, next_path=safe_next(next))


def _form(
    request: Request, *, next_path: str, error: str | None = None, status: int = 200
) -> Response:
    nonce = new_login_nonce()
    response = render(
        request,
        "login.html",
        status_code=status,
        headers={"Cache-Control": "no-store"},
        next=next_path,
        error=error,
        login_token=login_token(request, nonce),
    )
    set_login_cookie(request, response, nonce)
    return response


@router.post("/login", dependencies=[Depends(public)], response_model=None)
async def login(
    request: Request,
    api_key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in with an API key; redirects to ``next``."""
    if not settings_of(request).auth:
        return RedirectResponse("/", status_code=303)
    target = safe_next(next)
    if not verify_login_token(request, csrf_token):
        return _form(
            request,
            next_path=target,
            error="The sign-in form expired; please try again.",
            status=403,
        )
    try:
        principal: Principal = await anyio.to_thread.run_sync(
            principal_for_key, request, api_key.strip(), "read"
        )
    except HTTPException as exc:
        return _form(request, next_path=target, error=f"Not signed in: {exc.detail}.", status=401)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, principal)
    return response


@router.post("/logout", response_model=None)
def logout(request: Request, principal: Annotated[Principal, Depends(page_principal)]) -> Response:
    """Sign out (needs the session's CSRF token); redirects to the sign-in page.

    Every session of the key signed in with ends, in this browser and any other.
    """
    if not settings_of(request).auth:
        return RedirectResponse("/", status_code=303)
    if principal.key_id is not None:
        end_key_sessions(request, principal.key_id)
    response = RedirectResponse("/login", status_code=303)
    end_session(response)
    return response

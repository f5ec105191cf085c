"""Who is asking: every route declares one of these dependencies (tested by a route table).

* :func:`public`: no credentials (health checks, the sign-in page, static assets).
* :func:`ingest_principal`: an API key with the ``ingest`` scope (``Authorization: Bearer KEY``
  or ``X-API-Key: KEY``).
* :func:`api_principal`: an API key with the ``read`` scope, or a signed-in session cookie (then
  unsafe methods need the CSRF token, in the ``X-CSRF-Token`` header or the ``csrf_token``
  form field).
* :func:`page_principal`: a signed-in session cookie (unsafe methods need the CSRF token);
  without one the browser is sent (303) to ``/login?next=<the page>``.

With auth off every caller acts in the default project. The project always comes from the
credentials, never from the request's content. A missing, unknown or revoked key is a 401 with
a JSON ``detail`` saying which.

For the pages: :func:`csrf_token` gives the CSRF token of the current session (empty when auth
is off or nobody is signed in); put it in every form that posts::

    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">

The session cookie is signed with HMAC-SHA256 (``session_secret``, or a random per-process key),
``HttpOnly``, ``SameSite=Lax``, ``Secure`` on https, and expires; it carries the key id and the
project, and every request checks that the key is still live, so revoking a key ends its
sign-ins.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import sqlalchemy as sa
from fastapi import HTTPException, Request, Response
from sqlalchemy.orm import Session

from lucidtrace.store.models import DEFAULT_PROJECT_ID, ApiKey
from lucidtrace.ui.deps import engine_of, settings_of
from lucidtrace.ui.keys import lookup_key, touch_key

__all__ = [
    "CSRF_FORM_FIELD",
    "CSRF_HEADER",
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Principal",
    "api_principal",
    "csrf_token",
    "end_key_sessions",
    "end_session",
    "ingest_principal",
    "login_token",
    "new_login_nonce",
    "page_principal",
    "principal_for_key",
    "public",
    "safe_next",
    "session_secret",
    "set_login_cookie",
    "start_session",
    "verify_login_token",
]

logger = logging.getLogger("lucidtrace")

SESSION_COOKIE = "lucidtrace_session"
"""The signed-in session."""

LOGIN_COOKIE = "lucidtrace_login"
"""A random value set by the sign-in form; its token must come back with the form (CSRF)."""

CSRF_HEADER = "X-CSRF-Token"
"""Header carrying the CSRF token on unsafe requests of a signed-in session."""

CSRF_FORM_FIELD = "csrf_token"
"""Form field carrying the CSRF token."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOGIN_COOKIE_MAX_AGE = 3600


@dataclass(frozen=True)
class Principal:
    """The caller: its project and how it proved it (``key``, ``session`` or ``open``)."""

    project_id: str
    via: str
    key_id: int | None = None


_OPEN = Principal(project_id=DEFAULT_PROJECT_ID, via="open")


# ----------------------------------------------------------------------------- the four


def public(request: Request) -> None:
    """An explicit decision that a route needs no credentials."""


def ingest_principal(request: Request) -> Principal:
    """The project of an ingest request, from its API key."""
    if not settings_of(request).auth:
        return _OPEN
    key = _presented_key(request)
    if key is None:
        raise _unauthorized("an API key is required: send 'Authorization: Bearer KEY'")
    return principal_for_key(request, key, scope="ingest")


async def api_principal(request: Request) -> Principal:
    """The project of a JSON API request, from its API key or session."""
    if not settings_of(request).auth:
        return _OPEN
    key = _presented_key(request)
    if key is not None:
        return await anyio.to_thread.run_sync(principal_for_key, request, key, "read")
    session = await _session_principal(request)
    if session is None:
        raise _unauthorized(
            "an API key ('Authorization: Bearer KEY') or a signed-in session is required"
        )
    principal, payload = session
    await _check_csrf(request, payload)
    return principal


async def page_principal(request: Request) -> Principal:
    """The project of a web page request, from its session (else a redirect to sign in)."""
    if not settings_of(request).auth:
        return _OPEN
    session = await _session_principal(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = f"/login?next={quote(safe_next(target), safe='/')}"
        raise HTTPException(status_code=303, detail="sign in first", headers={"Location": location})
    principal, payload = session
    await _check_csrf(request, payload)
    return principal


# ----------------------------------------------------------------------------- keys


def principal_for_key(request: Request, key: str, scope: str) -> Principal:
    """The principal of an API key (blocking: reads the store).

    Raises:
        HTTPException: 401 for an unknown or revoked key, 403 for a key without ``scope``.
    """
    engine = engine_of(request)
    with Session(engine) as session:
        row = lookup_key(session, key, include_revoked=True)
        if row is None:
            raise _unauthorized("unknown API key")
        if row.revoked_ns is not None:
            raise _unauthorized("this API key has been revoked")
        if scope not in (row.scopes or ()):
            raise HTTPException(status_code=403, detail=f"this API key lacks the {scope!r} scope")
        principal = Principal(project_id=row.project_id, via="key", key_id=row.id)
        if touch_key(session, row):
            _record_use(engine, row.id, row.last_used_ns)
    return principal


def _record_use(engine: sa.Engine, key_id: int, when: int | None) -> None:
    # Its own short write transaction: a failure here must not cost the request.
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(ApiKey).where(ApiKey.id == key_id).values(last_used_ns=when))
    except sa.exc.SQLAlchemyError as exc:
        logger.debug("lucidtrace: could not record API key use: %s", type(exc).__name__)


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


# ----------------------------------------------------------------------------- sessions


def session_secret(request: Request) -> bytes:
    """The key that signs this app's cookies."""
    secret: bytes = request.app.state.session_secret
    return secret


def _sign(secret: bytes, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(secret, b"session|" + body, hashlib.sha256).digest()
    return f"{body.decode()}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _unsign(secret: bytes, token: str) -> dict[str, Any] | None:
    body, _, mac = token.partition(".")
    if not body or not mac or len(token) > 1000:
        return None
    expected = hmac.new(secret, b"session|" + body.encode(), hashlib.sha256).digest()
    given = base64.urlsafe_b64encode(expected).decode().rstrip("=")
    if not hmac.compare_digest(given, mac):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
        return None
    if payload["e"] <= time.time():
        return None
    return payload


def _session_payload(request: Request) -> dict[str, Any] | None:
    token = request.cookies.get(SESSION_COOKIE)
    return _unsign(session_secret(request), token) if token else None


async def _session_principal(request: Request) -> tuple[Principal, dict[str, Any]] | None:
    payload = _session_payload(request)
    if payload is None:
        return None
    key_id, project_id = payload.get("k"), payload.get("p")
    if not isinstance(key_id, int) or not isinstance(project_id, str):
        return None

    def live() -> bool:
        with Session(engine_of(request)) as session:
            row = session.get(ApiKey, key_id)
            return (
                row is not None
                and row.revoked_ns is None
                and row.project_id == project_id
                and "read" in (row.scopes or ())
                and _issued_after(payload, row.sessions_not_before_ns)
            )

    if not await anyio.to_thread.run_sync(live):
        return None
    return Principal(project_id=project_id, via="session", key_id=key_id), payload


def _issued_after(payload: dict[str, Any], not_before_ns: int | None) -> bool:
    """Whether a session was started after its key's last sign-out (``not_before_ns``)."""
    if not_before_ns is None:
        return True
    issued = payload.get("i")
    return isinstance(issued, int) and not isinstance(issued, bool) and issued > not_before_ns


def start_session(request: Request, response: Response, principal: Principal) -> None:
    """Sign ``principal`` in: set the session cookie on ``response``."""
    max_age = settings_of(request).session_max_age_seconds
    payload = {
        "k": principal.key_id,
        "p": principal.project_id,
        "e": int(time.time()) + max_age,
        "i": time.time_ns(),
        "n": secrets.token_urlsafe(16),
    }
    response.set_cookie(
        SESSION_COOKIE,
        _sign(session_secret(request), payload),
        max_age=max_age,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def end_session(response: Response) -> None:
    """Sign out: clear the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def end_key_sessions(request: Request, key_id: int) -> None:
    """End every session of an API key started until now (blocking: writes the store).

    A copy of the session cookie kept elsewhere stops working too: sessions are signed, not
    stored, so the key records the time before which its sessions are refused.
    """
    with engine_of(request).begin() as conn:
        conn.execute(
            sa.update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(sessions_not_before_ns=time.time_ns())
        )


def _csrf_for(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"csrf|" + nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The CSRF token of the current session (empty when auth is off or nobody signed in)."""
    if not settings_of(request).auth:
        return ""
    payload = _session_payload(request)
    if payload is None or not isinstance(payload.get("n"), str):
        return ""
    return _csrf_for(session_secret(request), payload["n"])


async def _check_csrf(request: Request, payload: dict[str, Any]) -> None:
    if request.method in _SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FORM_FIELD)
            given = value if isinstance(value, str) else None
    expected = _csrf_for(session_secret(request), str(payload.get("n", "")))
    if not given or not hmac.compare_digest(given, expected):
        raise HTTPException(
            status_code=403,
            detail=f"missing or wrong CSRF token: send the {CSRF_HEADER} header or the "
            f"{CSRF_FORM_FIELD} form field of the page",
        )


# ----------------------------------------------------------------------------- sign-in form


def new_login_nonce() -> str:
    """A fresh value for the sign-in cookie (see :func:`set_login_cookie`, :func:`login_token`)."""
    return secrets.token_urlsafe(16)


def set_login_cookie(request: Request, response: Response, nonce: str) -> None:
    """Set the sign-in cookie whose token the sign-in form carries."""
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=_LOGIN_COOKIE_MAX_AGE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def login_token(request: Request, nonce: str) -> str:
    """The sign-in form's CSRF token for a sign-in cookie value."""
    return hmac.new(session_secret(request), b"login|" + nonce.encode(), hashlib.sha256).hexdigest()


def verify_login_token(request: Request, token: str | None) -> bool:
    """Whether the sign-in form's token matches the sign-in cookie."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not token:
        return False
    return hmac.compare_digest(login_token(request, nonce), token)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another origin."""
    if not target or not isinstance(target, str):
        return "/"
    if any(ord(char) < 32 or ord(char) == 127 for char in target):
        return "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    if target.startswith(("/login", "/logout")):
        return "/"
    return target

"""The Jinja2 environment of the web pages and the :func:`render` helper.

Every page route renders through :func:`render`::

    from lucidtrace.ui.templating import render

    @router.get("/traces/{trace_id}", response_class=HTMLResponse)
    def trace_page(request: Request, principal: Principal = Depends(page_principal)):
        return render(request, "trace.html", principal=principal, trace=detail)

Templates extend ``base.html`` (blocks ``title``, ``content``, ``scripts``; set ``nav`` in the
context to ``"traces"``, ``"sessions"`` or ``"findings"`` to highlight a nav entry) and
live in ``lucidtrace/ui/templates``. Autoescape is on for every template, whatever its
name; never use ``|safe`` on trace content. The content security policy forbids inline
scripts, ``style="..."`` and ``on*=`` attributes: put styles in a class and behaviour in a
file under ``/static``; pass data to scripts as
``<script type="application/json" id="...">{{ data|tojson }}</script>``.

Context that :func:`render` always adds: ``request``, ``principal`` (``None`` when not
given), ``csrf_token`` (for forms: ``<input type="hidden" name="csrf_token"
value="{{ csrf_token }}">``; empty when auth is off), ``auth_enabled`` and ``static_url``
(a function: ``{{ static_url('app.css') }}`` adds a cache-busting version).

Filters:

* ``duration``: nanoseconds -> ``"1.24 s"``, ``"312 ms"``, ``"4 min 2 s"``; ``None`` -> an en dash.
* ``reltime``: epoch nanoseconds -> ``"3 min ago"`` (``"in 2 s"`` for the future).
* ``abstime``: epoch nanoseconds -> ``"2026-11-22 23:54:57 UTC"``.
* ``isotime``: epoch nanoseconds -> ISO 8601 for ``<time datetime=...>``.
* ``timestamp``: epoch nanoseconds -> ``<time datetime=ISO title=ABSOLUTE>RELATIVE</time>``.
* ``verdict_badge``: ``"flagged"`` / ``"clear"`` / ``"unchecked"`` -> a badge
  (``<span class="badge badge-flagged">flagged</span>``); an optional ``reasons`` argument (a
  list of check names) becomes the badge's title.
* ``status_badge``: span/trace status (``ok``, ``error``, ``unset``) -> a badge.
* ``safe_url``: a URL -> the URL if its scheme is http or https, else ``None``.
* ``external_link``: a URL (and optional text) -> ``<a href=... rel="noopener noreferrer
  nofollow" target="_blank">`` when the scheme is http/https, else the escaped text only.
* ``pretty_json``: any JSON-able value -> indented JSON text (escaped on output as usual).
* ``number``: an int -> ``"12,345"``.

Globals: ``url_with(request, **changes)`` -> the current path with its query string
changed (``None`` removes a parameter): for sort and pagination links that keep filters.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from lucidtrace.ui.auth import csrf_token

__all__ = [
    "NO_VALUE",
    "TEMPLATES_DIR",
    "abstime",
    "duration",
    "environment",
    "external_link",
    "isotime",
    "reltime",
    "render",
    "safe_url",
    "url_with",
    "verdict_badge",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
_STATIC_DIR = Path(__file__).parent / "static"
_VERDICTS = ("flagged", "clear", "unchecked")
_STATUSES = ("ok", "error", "unset")
_SAFE_SCHEMES = ("http", "https")
_NS = 1_000_000_000
NO_VALUE = "\u2013"
"""Shown for a missing time or duration (an en dash)."""


def duration(ns: int | float | None) -> str:
    """Nanoseconds as a short human duration (``None`` or negative: an en dash)."""
    if ns is None or ns < 0:
        return NO_VALUE
    seconds = ns / _NS
    if seconds < 1e-3:
        return f"{ns / 1000:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _to_datetime(ns: int | None) -> datetime | None:
    if ns is None:
        return None
    try:
        return datetime.fromtimestamp(ns / _NS, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def abstime(ns: int | None) -> str:
    """Epoch nanoseconds as ``YYYY-MM-DD HH:MM:SS UTC``."""
    moment = _to_datetime(ns)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else NO_VALUE


def isotime(ns: int | None) -> str:
    """Epoch nanoseconds as ISO 8601 in UTC (empty when unknown)."""
    moment = _to_datetime(ns)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else ""


def reltime(ns: int | None, *, now_ns: int | None = None) -> str:
    """Epoch nanoseconds relative to now (``"3 min ago"``, ``"in 2 s"``)."""
    if ns is None:
        return NO_VALUE
    now = time.time_ns() if now_ns is None else now_ns
    delta = (now - ns) / _NS
    future = delta < 0
    delta = abs(delta)
    if delta < 1:
        return "just now"
    if delta >= 60 * 86400:
        return abstime(ns)
    size, unit = next(
        ((size, unit) for size, unit in ((86400, "d"), (3600, "h"), (60, "min")) if delta >= size),
        (1, "s"),
    )
    text = f"{math.floor(delta / size)} {unit}"
    return f"in {text}" if future else f"{text} ago"


def _timestamp(ns: int | None) -> Markup:
    if ns is None:
        return Markup(NO_VALUE)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        isotime(ns), abstime(ns), reltime(ns)
    )


def verdict_badge(verdict: str | None, reasons: Iterable[str] | None = None) -> Markup:
    """A badge for a trace verdict; ``reasons`` (check names) go into its title."""
    value = verdict if verdict in _VERDICTS else "unchecked"
    names = sorted({str(reason) for reason in reasons or ()})
    title = f"flagged by: {', '.join(names)}" if names else value
    return Markup('<span class="badge badge-{}" title="{}">{}</span>').format(value, title, value)


def _status_badge(status: str | None) -> Markup:
    value = status if status in _STATUSES else "unset"
    return Markup('<span class="badge status-{}">{}</span>').format(value, value)


def safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else ``None``.

    Blocks ``javascript:``, ``data:``, protocol-relative (``//evil``) and backslash forms and
    anything with control characters or whitespace, which browsers strip before parsing.
    """
    if not isinstance(url, str) or not url:
        return None
    if any(ord(char) < 0x21 or char == "\\" or ord(char) == 0x7F for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc:
        return None
    return url


def external_link(url: Any, text: Any = None) -> Markup:
    """A link for a URL found in a trace when its scheme is http/https; else escaped text."""
    label = url if text is None else text
    target = safe_url(url)
    if target is None:
        return Markup("{}").format(label if label is not None else "")
    return Markup(
        '<a href="{}" rel="noopener noreferrer nofollow" target="_blank" class="external">{}</a>'
    ).format(target, label)


def _pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NO_VALUE if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def url_with(request: Request, **changes: Any) -> str:
    """The request's path with its query changed (``None`` drops a key; empty values go too)."""
    params: dict[str, str] = {
        key: value for key, value in request.query_params.items() if value != ""
    }
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


def _static_version() -> str:
    try:
        mtimes = [entry.stat().st_mtime_ns for entry in _STATIC_DIR.iterdir()]
    except OSError:
        return "0"
    return format(max(mtimes, default=0) // _NS, "x")


def _build_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )
    env.filters.update(
        duration=duration,
        reltime=reltime,
        abstime=abstime,
        isotime=isotime,
        timestamp=_timestamp,
        verdict_badge=verdict_badge,
        status_badge=_status_badge,
        safe_url=safe_url,
        external_link=external_link,
        pretty_json=_pretty_json,
        number=_number,
    )
    version = _static_version()
    env.globals.update(
        url_with=url_with,
        static_url=lambda name: f"/static/{escape(name)}?v={version}",
    )
    return env


environment = _build_environment()
"""The shared environment (autoescape on for every template)."""


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with ``context`` plus request, principal and CSRF token.

    Args:
        request: The request being answered.
        template: A template name under ``lucidtrace/ui/templates``.
        status_code: The response status.
        headers: Extra response headers.
        **context: Template variables; ``principal`` is put in as ``None`` when absent.
    """
    settings = getattr(request.app.state, "settings", None)
    values: dict[str, Any] = {
        "principal": None,
        "nav": None,
        **context,
        "request": request,
        "csrf_token": csrf_token(request),
        "auth_enabled": bool(getattr(settings, "auth", False)),
    }
    html = environment.get_template(template).render(values)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers=dict(headers or {}),
    )

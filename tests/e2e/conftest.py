"""Browser fixtures: headless Chromium (Debian's, driven by Playwright) and a guarded page.

The ``browser`` fixture (in ``tests/conftest.py``, shared by every browser test) launches
``/usr/bin/chromium`` (or ``LUCIDTRACE_TEST_CHROMIUM``, see :func:`chromium_path`) through
Playwright's sync API; nothing is downloaded. ``guarded_page`` is a fresh page whose guard
records every dialog, every request to another origin (aborted before it leaves) and every console
error, for a test to assert on.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CHROMIUM_ENV = "LUCIDTRACE_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    """The Chromium executable the browser tests drive, if there is one."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if os.path.exists(configured) else None
    if os.path.exists(DEFAULT_CHROMIUM):
        return DEFAULT_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Guard:
    """What a page did that it should not have: dialogs, foreign requests, console errors."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_nothing_ran(self, page: Any) -> None:
        """No dialog, no request off the origin, no payload's sentinel set, no script error."""
        assert self.dialogs == [], f"dialogs opened: {self.dialogs[:3]}"
        assert self.foreign_requests == [], f"requests left the origin: {self.foreign_requests[:3]}"
        assert page.evaluate("typeof window.__xss") == "undefined", "an injected script ran"
        assert self.page_errors == [], f"uncaught script errors: {self.page_errors[:3]}"


@dataclass
class GuardedPage:
    """A page and its guard."""

    page: Any
    guard: Guard


def open_guarded_page(browser: Any, base_url: str) -> tuple[Any, GuardedPage]:
    """A fresh context and page on ``base_url`` with a :class:`Guard` attached."""
    context = browser.new_context(base_url=base_url, java_script_enabled=True)
    page = context.new_page()
    origin = urlsplit(base_url).netloc
    guard = Guard(origin=origin)

    def on_route(route: Any) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in {"http", "https", "ws", "wss"} and target.netloc != origin:
            guard.foreign_requests.append(route.request.url)
            route.abort()
            return
        route.continue_()

    def on_dialog(dialog: Any) -> None:
        guard.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if message.type == "error":
            guard.console_errors.append(message.text)

    context.route("**/*", on_route)
    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: guard.page_errors.append(str(error)))
    return context, GuardedPage(page=page, guard=guard)

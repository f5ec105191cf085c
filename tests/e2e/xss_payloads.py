"""A corpus of hostile strings to put in every field a trace can carry.

Each script payload, if it ever ran, sets ``window.__xss`` (and most also call ``alert``), so a
browser test can assert ``window.__xss`` stays undefined and no dialog opened. Payloads that try
to load something name ``EVIL_HOST``, so a test can also assert no request left the origin.
Shared by every page's tests (list pages, trace detail).
"""

from __future__ import annotations

__all__ = ["EVIL_HOST", "PAYLOADS", "SENTINEL", "URL_PAYLOADS", "payload_for"]

EVIL_HOST = "evil.invalid"
"""A host no test may ever contact."""

SENTINEL = "__xss"
"""The window property every script payload sets."""

_RUN = "window.__xss=1;alert(1)"

PAYLOADS: tuple[str, ...] = (
    f"<script>{_RUN}</script>",
    f"<img src=x onerror={_RUN}>",
    f'<img src="x" onerror="{_RUN}">',
    f"<svg onload={_RUN}>",
    f"<svg><script>{_RUN}</script></svg>",
    f'"><script>{_RUN}</script>',
    f"'><script>{_RUN}</script>",
    f"</script><script>{_RUN}</script>",
    f"</textarea><script>{_RUN}</script>",
    f"</title><script>{_RUN}</script>",
    f"'-{_RUN}-'",
    f'";{_RUN};//',
    f'" onmouseover="{_RUN}" x="',
    f"' onfocus='{_RUN}' autofocus='",
    f'" autofocus onfocus="{_RUN}',
    f'<iframe srcdoc="<script>parent.{_RUN}</script>"></iframe>',
    f"<iframe src=javascript:{_RUN}></iframe>",
    f'<a href="javascript:{_RUN}">click</a>',
    f"javascript:{_RUN}",
    f"JaVaScRiPt:{_RUN}",
    f"jav\tascript:{_RUN}",
    f"data:text/html,<script>{_RUN}</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    f"//{EVIL_HOST}/x.js",
    f"/\\{EVIL_HOST}/x.js",
    f"https://{EVIL_HOST}/track.png",
    f'<img src="https://{EVIL_HOST}/pixel.png">',
    f'<link rel="stylesheet" href="https://{EVIL_HOST}/x.css">',
    f"<style>@import 'https://{EVIL_HOST}/x.css';</style>",
    f'<div style="background:url(https://{EVIL_HOST}/bg.png)">styled</div>',
    f"x}}*{{background:url(https://{EVIL_HOST}/css)}}/*",
    f"<body onload={_RUN}>",
    f"<details open ontoggle={_RUN}>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={_RUN}>",
    f"<object data=javascript:{_RUN}>",
    f'<embed src="javascript:{_RUN}">',
    f'<form action="javascript:{_RUN}"><button>go</button></form>',
    f'<meta http-equiv="refresh" content="0;url=javascript:{_RUN}">',
    f"<base href=https://{EVIL_HOST}/>",
    "{{7*7}}",
    "${7*7}",
    "{{constructor.constructor('window.__xss=1')()}}",
    "#{7*7}",
    "{% raw %}{{ config }}{% endraw %}",
    f"\u202e<script>{_RUN}</script>\u202c",
    f"zero\u200bwidth<scr\u200bipt>{_RUN}</scr\u200bipt>",
    f"[link](javascript:{_RUN})",
    f"![img](https://{EVIL_HOST}/md.png)",
    f'<noscript><p title="</noscript><img src=x onerror={_RUN}>">',
)
"""Hostile strings: HTML/attribute/script breakouts, URL schemes, CSS, template syntax."""

URL_PAYLOADS: tuple[str, ...] = tuple(
    payload
    for payload in PAYLOADS
    if payload.lower().startswith(("javascript", "jav", "data:", "//", "/\\", "https:"))
)
"""The payloads shaped like URLs (for fields that hold a source or link)."""


def payload_for(index: int) -> str:
    """The corpus entry at ``index`` (wrapping), for spreading payloads over many fields."""
    return PAYLOADS[index % len(PAYLOADS)]

"""The template helpers: escaping, links from traces, times and durations."""

from __future__ import annotations

import pytest

from lucidtrace.ui.templating import (
    NO_VALUE,
    abstime,
    duration,
    environment,
    external_link,
    reltime,
    safe_url,
    verdict_badge,
)

SECOND = 1_000_000_000


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "jav\tascript:alert(1)",
        "jav\nascript:alert(1)",
        " javascript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.invalid/x",
        "/\\evil.invalid/x",
        "https:/\\evil.invalid",
        "https://evil.invalid\\@good.example",
        "http://",
        "file:///etc/passwd",
        "mailto:a@b.c",
        "",
        None,
        42,
        "http://[::1",
    ],
)
def test_unsafe_urls_never_become_links(url: object) -> None:
    assert safe_url(url) is None
    rendered = str(external_link(url, "source"))
    assert "<a" not in rendered
    assert rendered == "source"


@pytest.mark.parametrize(
    "url", ["https://example.org/a?b=c#d", "http://example.org", "HTTPS://X.org"]
)
def test_http_urls_become_links_that_leak_nothing(url: str) -> None:
    assert safe_url(url) == url
    link = str(external_link(url))
    assert link.startswith("<a href=")
    assert 'rel="noopener noreferrer nofollow"' in link
    assert 'target="_blank"' in link


def test_link_text_and_url_are_escaped() -> None:
    link = str(external_link('https://x.org/"><script>', "<b>doc</b>"))
    assert "<script>" not in link
    assert "&lt;b&gt;doc&lt;/b&gt;" in link
    assert "&#34;&gt;&lt;script&gt;" in link


def test_autoescape_is_on_for_every_template_name() -> None:
    template = environment.from_string("{{ value }}")
    assert template.render(value="<img src=x onerror=alert(1)>") == (
        "&lt;img src=x onerror=alert(1)&gt;"
    )


def test_tojson_data_blocks_cannot_close_the_script_element() -> None:
    template = environment.from_string(
        '<script type="application/json" id="d">{{ data|tojson }}</script>'
    )
    rendered = template.render(data={"x": "</script><script>alert(1)</script>"})
    assert rendered.count("</script>") == 1
    assert "\\u003c/script\\u003e" in rendered


def test_verdict_badge_escapes_check_names_in_its_title() -> None:
    badge = str(verdict_badge("flagged", ['"><script>x</script>', "plan-action"]))
    assert "<script>" not in badge
    assert "plan-action" in badge
    assert 'class="badge badge-flagged"' in badge
    assert str(verdict_badge("<b>")) == (
        '<span class="badge badge-unchecked" title="unchecked">unchecked</span>'
    )


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (None, NO_VALUE),
        (-5, NO_VALUE),
        (1_500, "2 µs"),
        (312 * 1_000_000, "312 ms"),
        (int(1.234 * SECOND), "1.23 s"),
        (242 * SECOND, "4 min 2 s"),
        (3 * 3600 * SECOND + 60 * SECOND, "3 h 1 min"),
    ],
)
def test_durations_read_naturally(ns: int | None, text: str) -> None:
    assert duration(ns) == text


def test_times_are_relative_with_an_absolute_fallback() -> None:
    now = 1_800_000_000 * SECOND
    assert reltime(now - 3 * 60 * SECOND, now_ns=now) == "3 min ago"
    assert reltime(now + 2 * SECOND, now_ns=now) == "in 2 s"
    assert reltime(now, now_ns=now) == "just now"
    assert reltime(now - 400 * 86400 * SECOND, now_ns=now) == abstime(now - 400 * 86400 * SECOND)
    assert abstime(0) == "1970-01-01 00:00:00 UTC"
    assert abstime(None) == NO_VALUE

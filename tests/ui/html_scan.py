"""Reading rendered pages: table rows, and what the content security policy would refuse."""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["PageScan", "row_names", "scan"]

_DANGEROUS_TAGS = {"iframe", "object", "embed", "base", "frame", "frameset", "applet", "style"}
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "srcdoc", "data", "xlink:href", "poster"}


class PageScan(HTMLParser):
    """Collects every inline script, style attribute, event handler and unsafe URL of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.json_blocks: list[str] = []
        self._in_json = False
        self._in_script = False
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Check one opening tag."""
        names = dict(attrs)
        for name, value in attrs:
            self._check_attribute(tag, name, value)
        if tag in _DANGEROUS_TAGS:
            self.problems.append(f"<{tag}> element")
        if tag == "meta" and (names.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("meta refresh")
        if tag == "link" and (
            names.get("rel") not in {"stylesheet", "icon"}
            or not (names.get("href") or "").startswith("/static/")
        ):
            self.problems.append(f"<link> {names}")
        if tag == "script":
            self._in_script = True
            self._script_text = []
            if names.get("type") == "application/json":
                self._in_json = True
            elif not (names.get("src") or "").startswith("/static/"):
                self.problems.append(f"inline or foreign <script> {names}")
        if tag == "a" and names.get("target") == "_blank":
            rel = set((names.get("rel") or "").split())
            if not {"noopener", "noreferrer", "nofollow"} <= rel:
                self.problems.append(f"external link without rel noopener: {names}")

    def _check_attribute(self, tag: str, name: str, value: str | None) -> None:
        if name.startswith("on"):
            self.problems.append(f"event handler {name}= on <{tag}>")
        if name == "style":
            self.problems.append(f"style= on <{tag}>")
        if name in _URL_ATTRIBUTES and value is not None:
            cleaned = re.sub(r"[\x00-\x20]", "", value).lower()
            allowed = cleaned.startswith(("/", "#", "?", "http://", "https://"))
            if not allowed or cleaned.startswith(("//", "/\\")):
                self.problems.append(f"unsafe URL {value!r} in {name}= on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        """Close a script block."""
        if tag == "script":
            if self._in_json:
                self.json_blocks.append("".join(self._script_text))
            elif "".join(self._script_text).strip():
                self.problems.append("script with inline code")
            self._in_script = False
            self._in_json = False

    def handle_data(self, data: str) -> None:
        """Collect script text."""
        if self._in_script:
            self._script_text.append(data)


def scan(html: str) -> PageScan:
    """Parse ``html`` and return what was found."""
    parser = PageScan()
    parser.feed(html)
    parser.close()
    return parser


_ROW_LINK = re.compile(r'<a class="row-link" href="[^"]*">(.*?)</a>', re.S)


def row_names(html: str) -> list[str]:
    """The names in a list page's rows, in order (still HTML-escaped)."""
    return [match.strip() for match in _ROW_LINK.findall(html)]

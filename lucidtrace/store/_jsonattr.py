"""Lenient handling of attribute values on their way into JSON columns.

Span attributes come from any OpenTelemetry source, so nothing about them is trusted: values may be
bytes, tuples, non-finite floats, strings that PostgreSQL cannot store (NUL characters, lone
surrogates), JSON strings that do not parse or nest thousands of levels deep. The helpers here never
raise on such input: they keep the content (re-encoded where the database needs it) and append a
short description of what they did to a ``problems`` list, which the mapper stores with the span.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_DEPTH = 64
"""Nesting kept as JSON structure; deeper values are stored as their JSON text (content kept)."""

_REPLACEMENT = "\ufffd"


def clean_text(text: str, problems: list[str] | None = None, *, where: str = "") -> str:
    """Return ``text`` in a form both SQLite and PostgreSQL store: no NUL, valid UTF-8."""
    if "\x00" in text:
        text = text.replace("\x00", _REPLACEMENT)
        if problems is not None:
            problems.append(f"{where or 'value'}: NUL characters replaced by U+FFFD")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
            if problems is not None:
                problems.append(f"{where or 'value'}: invalid unicode (lone surrogates) replaced")
    return text


def clean_json(value: Any, problems: list[str] | None = None, *, where: str = "") -> Any:
    """:func:`clean_text` applied to every string of a JSON value (keys too), recursively.

    Returns ``value`` itself when nothing needed cleaning (the common case costs one scan).
    """
    if isinstance(value, str):
        if "\x00" in value or not value.isascii():
            return clean_text(value, problems, where=where)
        return value
    if isinstance(value, dict):
        out = {
            clean_json(k, problems, where=where): clean_json(v, problems, where=where)
            for k, v in value.items()
        }
        same = len(out) == len(value) and all(k in value and value[k] is v for k, v in out.items())
        return value if same else out
    if isinstance(value, list | tuple):
        items = [clean_json(v, problems, where=where) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


_UNSAFE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def may_decode_unsafe(values: Iterable[Any]) -> bool:
    r"""Whether decoding these (cleaned) attribute values as JSON can give NUL or surrogates.

    Cleaned text holds neither; only a JSON escape (``\u0000``, ``\ud800``...) can bring them
    back, so rows derived from values without one need no second cleaning pass.
    """
    search = _UNSAFE_ESCAPE.search
    for value in values:
        if type(value) is str:
            if "\\u" in value and search(value):
                return True
        elif isinstance(value, list | tuple) and any(
            type(v) is str and "\\u" in v and search(v) for v in value
        ):
            return True
    return False


def clean_row(
    row: dict[str, Any], problems: list[str], *, where: str, skip: frozenset[str] = frozenset()
) -> None:
    """Clean every text and JSON value of a row in place (``skip``: columns already clean).

    Values that the convention readers decoded from JSON text (a tool result, a document) can
    hold NUL characters or lone surrogates again; this is the last step before a row is stored.
    """
    for key, value in row.items():
        if key in skip or value is None or isinstance(value, bool | int | float):
            continue
        cleaned = clean_json(value, problems, where=f"{where} {key}")
        if cleaned is not value:
            row[key] = cleaned


def to_jsonable(  # noqa: PLR0911 - one return per kind of value reads best
    value: Any, problems: list[str], *, where: str = "", depth: int = 0
) -> Any:
    """Convert an attribute value into plain JSON data, losing no content.

    Bytes become text when they are UTF-8 and ``{"base64": ...}`` otherwise; tuples and other
    sequences become lists; non-finite floats become the strings ``"NaN"``/``"Infinity"``; keys
    become strings; values nested deeper than :data:`MAX_DEPTH` are kept as one JSON string.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value, problems, where=where)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        problems.append(f"{where or 'value'}: non-finite float stored as a string")
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return clean_text(raw.decode("utf-8"), problems, where=where)
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if depth >= MAX_DEPTH:
        problems.append(f"{where or 'value'}: nested deeper than {MAX_DEPTH}, kept as JSON text")
        return clean_text(_dump_deep(value), problems, where=where)
    if isinstance(value, Mapping):
        return {
            clean_text(str(k), problems, where=where): to_jsonable(
                v, problems, where=where, depth=depth + 1
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, problems, where=where, depth=depth + 1) for v in value]
    problems.append(f"{where or 'value'}: {type(value).__name__} stored as its text")
    return clean_text(str(value), problems, where=where)


def attributes_to_jsonable(
    attributes: Mapping[str, Any], problems: list[str], *, where: str
) -> dict[str, Any]:
    """:func:`to_jsonable` for a flat attribute mapping, fast when values are plain scalars."""
    out: dict[str, Any] = {}
    for raw_key, raw in attributes.items():
        kind = type(raw)
        value = raw
        if kind is str:
            if "\x00" in raw or not raw.isascii():
                value = clean_text(raw, problems, where=where)
        elif not (raw is None or kind is int or kind is bool or kind is float):
            value = to_jsonable(raw, problems, where=where, depth=1)
        elif kind is float and not math.isfinite(raw):
            value = to_jsonable(raw, problems, where=where)
        key = raw_key
        if type(raw_key) is not str or not raw_key.isascii() or "\x00" in raw_key:
            key = clean_text(str(raw_key), problems, where=where)
        out[key] = value
    return out


def _dump_deep(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        return repr(value)


def parse_json(value: Any, problems: list[str], *, where: str) -> Any:
    """Parse a JSON-string attribute leniently; structured values pass through.

    Returns ``None`` (and records a problem) when a string is not valid JSON or nests too deeply.
    """
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        problems.append(f"{where}: not valid JSON ({type(exc).__name__})")
        return None


def as_text(value: Any) -> str | None:
    """A value as display text: strings unchanged, anything else as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def unwrap_json_text(value: str) -> str:
    """The text of a value serialized as JSON: a JSON string is decoded, anything else kept."""
    if value.startswith('"') and value.endswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, str):
            return decoded
    return value

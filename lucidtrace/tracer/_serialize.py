"""Turning arbitrary Python values into JSON strings for span attributes, without ever failing.

Captured inputs and outputs are whatever the user's code passes around: objects without a JSON
form, self-referencing structures, huge strings, generators of millions of items. Every value
gets a JSON string: non-serialisable objects become their ``repr``, cycles and overly deep
nesting become markers, and anything cut is cut visibly (``...[truncated N chars]``).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from lucidtrace.environment_variables import LUCIDTRACE_MAX_VALUE_CHARS
from lucidtrace.tracer._log import log_once
from lucidtrace.tracer._settings import env_int

MAX_DEPTH = 32
"""Containers nested deeper than this are replaced by a marker."""

MAX_ITEMS = 10_000
"""Most items kept from one list, tuple, set or mapping."""

MAX_REPR_CHARS = 10_000
"""Most characters kept from the ``repr`` of an object without a JSON form."""

_SCALARS = (str, int, float, bool, type(None))


class _Budget:
    """How many more characters of text the value being converted may still contribute."""

    __slots__ = ("left",)

    def __init__(self, chars: int) -> None:
        self.left = chars


_max_chars = [1_000_000]


def refresh_limits() -> None:
    """Read ``LUCIDTRACE_MAX_VALUE_CHARS`` again (``configure()`` calls this)."""
    _max_chars[0] = env_int(LUCIDTRACE_MAX_VALUE_CHARS, 1_000_000)


_mask: list[Callable[[str], str] | None] = [None]

CUT_MASK_MARGIN = 4_096
"""Characters past a cut that are masked with the text before it, so that a secret straddling
the cut is masked whole rather than left as a prefix too short to be recognised."""


def set_mask(mask: Callable[[str], str] | None) -> None:
    """The masking to run on a value's text before it is cut (``configure()`` sets it)."""
    _mask[0] = mask


def _cut(text: str, budget: _Budget) -> str:
    if len(text) <= budget.left:
        budget.left -= len(text)
        return text
    keep = max(budget.left, 0)
    budget.left = 0
    head = text[: keep + CUT_MASK_MARGIN]
    mask = _mask[0]
    if mask is not None:
        try:
            head = mask(head)
        except Exception:  # masking fails closed: keep nothing of the value
            head = ""
    return f"{head[:keep]}...[truncated {len(text) - keep} chars]"


def _safe_repr(value: object, budget: _Budget) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ is the user's bug, not a reason to fail
        text = f"<unrepresentable {type(value).__qualname__}>"
    if len(text) > MAX_REPR_CHARS:
        text = f"{text[:MAX_REPR_CHARS]}...[truncated {len(text) - MAX_REPR_CHARS} chars]"
    return _cut(text, budget)


def _convert(value: object, depth: int, path: set[int], budget: _Budget) -> Any:  # noqa: PLR0911, PLR0912
    if isinstance(value, str):
        return _cut(value, budget)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # JSON has no NaN or infinity; their names keep the information.
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return _convert(value.value, depth, path, budget)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if depth >= MAX_DEPTH:
        return "[max depth]"
    marker = id(value)
    if marker in path:
        return "[cycle]"
    if isinstance(value, Mapping):
        path.add(marker)
        try:
            out: dict[str, Any] = {}
            for i, (key, item) in enumerate(value.items()):
                if i >= MAX_ITEMS:
                    out["..."] = f"[{len(value) - MAX_ITEMS} more items]"
                    break
                name = key if isinstance(key, str) else _safe_repr(key, budget)
                out[name] = _convert(item, depth + 1, path, budget)
            return out
        finally:
            path.discard(marker)
    if isinstance(value, list | tuple | set | frozenset):
        path.add(marker)
        try:
            items: list[Any] = []
            for i, item in enumerate(value):
                if i >= MAX_ITEMS:
                    items.append(f"[{len(value) - MAX_ITEMS} more items]")
                    break
                items.append(_convert(item, depth + 1, path, budget))
            return items
        finally:
            path.discard(marker)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        path.add(marker)
        try:
            return {
                f.name: _convert(getattr(value, f.name, None), depth + 1, path, budget)
                for f in dataclasses.fields(value)
            }
        finally:
            path.discard(marker)
    dump = getattr(type(value), "model_dump", None)  # pydantic v2 models
    if callable(dump):
        try:
            dumped = dump(value, mode="json")
        except Exception:  # a model that cannot dump itself still has a repr
            return _safe_repr(value, budget)
        path.add(marker)
        try:
            return _convert(dumped, depth + 1, path, budget)
        finally:
            path.discard(marker)
    return _safe_repr(value, budget)


def to_json(value: object, *, max_chars: int | None = None) -> str:
    """Serialise ``value`` to a JSON string; never raises.

    Args:
        value: Anything.
        max_chars: Cap on the text kept from the value (default: ``LUCIDTRACE_MAX_VALUE_CHARS``).

    Returns:
        A valid JSON document.
    """
    budget = _Budget(_max_chars[0] if max_chars is None else max_chars)
    try:
        if type(value) is str:
            return json.dumps(_cut(value, budget), ensure_ascii=False)
        return json.dumps(_convert(value, 0, set(), budget), ensure_ascii=False, allow_nan=False)
    except Exception:  # the converter is total in intent; this is the last line of defence
        log_once("serialize", "lucidtrace could not serialise a %s value", type(value).__name__)
        return json.dumps(f"<unserialisable {type(value).__qualname__}>")


def is_scalar(value: object) -> bool:
    """Whether ``value`` is a str, int, float, bool or None."""
    return isinstance(value, _SCALARS)

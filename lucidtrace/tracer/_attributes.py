"""Trace-level attributes (session, user, tags, metadata) carried in the context.

:func:`trace_attributes` stores them in a context variable; lucidtrace's span processor stamps
them on every span that starts inside, lucidtrace's own and third-party instrumentation's alike
(the same idea as OpenInference's ``using_session``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry.util.types import AttributeValue

from lucidtrace.tracer import semconv
from lucidtrace.tracer._serialize import to_json


class _TraceAttributes:
    """The values in force, and the span attributes they turn into (computed once)."""

    __slots__ = ("attributes", "metadata", "session_id", "tags", "user_id")

    def __init__(
        self,
        session_id: str | None,
        user_id: str | None,
        tags: tuple[str, ...],
        metadata: dict[str, Any],
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.tags = tags
        self.metadata = metadata
        attributes: dict[str, AttributeValue] = {}
        if session_id is not None:
            attributes[semconv.SESSION_ID] = session_id
        if user_id is not None:
            attributes[semconv.USER_ID] = user_id
        if tags:
            attributes[semconv.TAGS] = tags
        if metadata:
            attributes[semconv.METADATA] = to_json(metadata)
        self.attributes = attributes


CURRENT: ContextVar[_TraceAttributes | None] = ContextVar(
    "lucidtrace_trace_attributes", default=None
)
"""The trace attributes in force in the current context (None: none)."""


def merged(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> _TraceAttributes:
    """The attributes in force with these added: inner values win, tags and metadata merge."""
    outer = CURRENT.get()
    all_tags = list(outer.tags) if outer else []
    for tag in tags or ():
        text = str(tag)
        if text not in all_tags:
            all_tags.append(text)
    all_metadata = dict(outer.metadata) if outer else {}
    if metadata:
        if not isinstance(metadata, Mapping):
            msg = f"metadata must be a mapping (a dict); got {type(metadata).__name__}"
            raise TypeError(msg)
        all_metadata.update({str(k): v for k, v in metadata.items()})
    if isinstance(tags, str):
        msg = "tags must be a list of strings, not one string: use tags=[...]"
        raise TypeError(msg)
    return _TraceAttributes(
        str(session_id) if session_id is not None else (outer.session_id if outer else None),
        str(user_id) if user_id is not None else (outer.user_id if outer else None),
        tuple(all_tags),
        all_metadata,
    )


@contextmanager
def trace_attributes(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Stamp session, user, tags and metadata on every span started inside the block.

    Nested blocks add to the outer ones: an inner ``session_id``/``user_id`` wins, tags are
    appended and metadata keys merged. Works across ``await`` and, with
    :mod:`lucidtrace.context`, across threads.

    Example:
        >>> with lt.trace_attributes(session_id="chat-42", user_id="ana", tags=["beta"]):
        ...     run("How many people live in Iceland?")
    """
    token = CURRENT.set(
        merged(session_id=session_id, user_id=user_id, tags=tags, metadata=metadata)
    )
    try:
        yield
    finally:
        CURRENT.reset(token)

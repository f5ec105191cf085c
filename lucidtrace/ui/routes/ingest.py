"""Ingest: ``POST /v1/traces`` (OTLP/HTTP, protobuf or JSON) and ``POST /api/v1/spans`` (batches).

Both read the body under the server's limits (as sent and after gzip), decode it to span records,
and store them through the one ingest mapper in the project of the caller's API key (never one
named in the payload). Success is answered only once the transaction committed; a span the
database refuses costs only itself and is reported (OTLP ``partial_success``, or per item in the
batch answer). Of two spans of one request with the same span id, a later one of the same trace
replaces the earlier (reported as ``replaced``, not counted as rejected, in both answers); one of
another trace is refused, as is a span whose id is stored under another trace. A request over a
limit, malformed, or in an unsupported type stores nothing.
When :attr:`~lucidtrace.ui.settings.ServerSettings.max_concurrent_ingest` requests are already
being stored, more are answered 503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from lucidtrace.store import SpanRecord
from lucidtrace.store.fallback import FallbackResult, ingest_with_fallback
from lucidtrace.store.wire import BATCH_PATH, WireFormatError, batch_from_wire
from lucidtrace.tracer.exporters import failure_reason
from lucidtrace.ui.auth import Principal, ingest_principal
from lucidtrace.ui.deps import engine_of, settings_of
from lucidtrace.ui.otlp import (
    LimitError,
    Limits,
    PayloadError,
    check_records,
    decode_json,
    decode_protobuf,
    encode_response,
    records_from_request,
)
from lucidtrace.ui.settings import ServerSettings

__all__ = ["OTLP_PATH", "IngestGate", "decompress", "router"]

logger = logging.getLogger("lucidtrace")

router = APIRouter(tags=["ingest"])

OTLP_PATH = "/v1/traces"
"""The OTLP/HTTP traces endpoint."""

_PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
_JSON_TYPES = frozenset({"application/json"})
_GZIP = frozenset({"gzip", "x-gzip"})
_IDENTITY = frozenset({"", "identity"})
_MESSAGE_ERRORS = 5
_REPLACED = "replaced by a later span with the same span and trace id in this request"


class IngestGate:
    """At most ``limit`` ingest requests at once; a request beyond is refused, never queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._busy = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self._busy >= self.limit:
                return False
            self._busy += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self._busy = max(0, self._busy - 1)

    @property
    def busy(self) -> int:
        """Slots taken now."""
        return self._busy


class _RefusedError(Exception):
    """An answer other than success (status, message, extra fields)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self, settings: ServerSettings) -> JSONResponse:
        headers = {}
        if self.status == 503:
            headers["Retry-After"] = str(settings.retry_after_seconds)
        return JSONResponse(
            {"detail": self.message, **self.extra}, status_code=self.status, headers=headers
        )


@dataclass(frozen=True)
class _Stored:
    records: list[SpanRecord]
    result: FallbackResult


@router.post(
    OTLP_PATH,
    summary="OTLP/HTTP traces (protobuf or JSON, optionally gzip)",
    response_class=Response,
)
async def otlp_traces(
    request: Request, principal: Annotated[Principal, Depends(ingest_principal)]
) -> Response:
    """Store an OTLP ``ExportTraceServiceRequest``; answers an ``ExportTraceServiceResponse``."""
    settings = settings_of(request)
    media = _media_type(request)
    try:
        if media not in _PROTOBUF_TYPES | _JSON_TYPES:
            raise _RefusedError(
                415,
                f"unsupported content type {media!r}: send application/x-protobuf or "
                "application/json",
            )
        stored = await _ingest(request, principal, media, settings)
    except _RefusedError as refused:
        return refused.response(settings)
    result = stored.result
    errors = _errors(result)
    message = "; ".join(errors[:_MESSAGE_ERRORS])
    body, content_type = encode_response(result.failed_count, message, as_json=media in _JSON_TYPES)
    return Response(body, media_type=content_type)


@router.post(BATCH_PATH, summary="lucidtrace span batches (JSON, optionally gzip)")
async def span_batch(
    request: Request, principal: Annotated[Principal, Depends(ingest_principal)]
) -> JSONResponse:
    """Store a ``lucidtrace.spans.v1`` batch; answers the status of each span."""
    settings = settings_of(request)
    media = _media_type(request)
    try:
        if media not in _JSON_TYPES:
            raise _RefusedError(415, f"unsupported content type {media!r}: send application/json")
        stored = await _ingest(request, principal, "batch", settings)
    except _RefusedError as refused:
        return refused.response(settings)
    failed = _failures(stored.result)
    replaced = {id(record) for record in stored.result.replaced}
    items: list[dict[str, str | None]] = []
    for record in stored.records:
        error = failed.get(id(record))
        if error is not None:
            items.append({"span_id": record.span_id, "status": "rejected", "error": error})
        elif id(record) in replaced:
            items.append({"span_id": record.span_id, "status": "replaced", "error": _REPLACED})
        else:
            items.append({"span_id": record.span_id, "status": "stored", "error": None})
    rejected = sum(1 for item in items if item["status"] == "rejected")
    return JSONResponse(
        {
            "accepted": len(items) - rejected,
            "rejected": rejected,
            "replaced": len(replaced),
            "items": items,
        }
    )


# ----------------------------------------------------------------------------- the pipeline


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _ingest(
    request: Request, principal: Principal, media: str, settings: ServerSettings
) -> _Stored:
    """Read, decode and store one request under the gate; raises :class:`_RefusedError`."""
    gate: IngestGate = request.app.state.ingest_gate
    if not gate.try_acquire():
        raise _RefusedError(
            503,
            f"the server is storing {gate.limit} requests already (max_concurrent_ingest); "
            f"retry after {settings.retry_after_seconds} s",
        )
    try:
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in _GZIP | _IDENTITY:
            raise _RefusedError(
                415, f"unsupported content encoding {encoding!r}: send gzip or none"
            )
        body = await _read_body(request, settings.max_body_bytes)
        records = await anyio.to_thread.run_sync(_decode, body, encoding in _GZIP, media, settings)
        engine = engine_of(request)
        result = await anyio.to_thread.run_sync(
            lambda: ingest_with_fallback(engine, records, project_id=principal.project_id)
        )
        if any(group.transient for group in result.failed):
            # The store is unavailable: nothing is lost by asking for the batch again, since
            # storing what did land a second time changes nothing.
            raise _RefusedError(
                503,
                "the store is unavailable: "
                + next(failure_reason(g.error) for g in result.failed if g.transient),
            )
        if settings.ingest_checks and result.stored:
            await anyio.to_thread.run_sync(_run_checks, request, principal, result.trace_ids)
        return _Stored(records, result)
    finally:
        gate.release()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise _RefusedError(400, "Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> _RefusedError:
    return _RefusedError(
        413,
        f"request body larger than max_body_bytes ({limit} bytes); send smaller batches",
        limit="max_body_bytes",
        value=limit,
    )


def decompress(data: bytes, limit: int) -> bytes:
    """Gunzip ``data`` (one or more members), stopping as soon as the output passes ``limit``.

    Raises:
        LimitError: The decompressed body would be larger than ``limit`` bytes (413).
        PayloadError: The data is not valid, complete gzip.
    """
    out = bytearray()
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = data
    try:
        while True:
            out += decoder.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise LimitError(
                    f"request body larger than max_decompressed_bytes ({limit} bytes) once "
                    "decompressed",
                    limit="max_decompressed_bytes",
                    value=limit,
                    status=413,
                )
            if decoder.eof:
                pending = decoder.unused_data
                if not pending:
                    return bytes(out)
                decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)  # another gzip member
                continue
            pending = decoder.unconsumed_tail
            if not pending:
                raise PayloadError("malformed gzip: the data ends before the stream does")
    except zlib.error as exc:
        raise PayloadError(f"malformed gzip: {exc}") from None


def _decode(body: bytes, gzipped: bool, media: str, settings: ServerSettings) -> list[SpanRecord]:
    limits = Limits(
        max_spans=settings.max_spans_per_request,
        max_attributes=settings.max_attributes_per_span,
        max_depth=settings.max_attribute_depth,
    )
    try:
        if gzipped:
            body = decompress(body, settings.max_decompressed_bytes)
        elif len(body) > settings.max_decompressed_bytes:
            raise LimitError(
                f"request body larger than max_decompressed_bytes "
                f"({settings.max_decompressed_bytes} bytes)",
                limit="max_decompressed_bytes",
                value=settings.max_decompressed_bytes,
                status=413,
            )
        if media == "batch":
            return _decode_batch(body, limits)
        request = decode_protobuf(body) if media in _PROTOBUF_TYPES else decode_json(body)
        return records_from_request(request, limits)
    except LimitError as exc:
        raise _RefusedError(exc.status, str(exc), limit=exc.limit, value=exc.value) from None
    except PayloadError as exc:
        raise _RefusedError(400, str(exc)) from None


def _decode_batch(body: bytes, limits: Limits) -> list[SpanRecord]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"malformed JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("spans"), list):
        limits.spans(len(data["spans"]))  # before building records for a huge batch
    try:
        records = batch_from_wire(data)
    except WireFormatError as exc:
        raise PayloadError(str(exc)) from None
    check_records(records, limits)
    return records


def _failures(result: FallbackResult) -> dict[int, str]:
    failed: dict[int, str] = {}
    for record, why in result.rejected:
        failed[id(record)] = why
    for group in result.failed:
        reason = f"the store refused this span: {failure_reason(group.error)}"
        for record in group.records:
            failed[id(record)] = reason
    return failed


def _errors(result: FallbackResult) -> list[str]:
    errors = [f"span {record.span_id}: {why}" for record, why in result.rejected]
    errors.extend(
        f"{len(group.records)} span(s) refused by the store: {failure_reason(group.error)}"
        for group in result.failed
    )
    errors.extend(
        f"span {record.span_id}: {_REPLACED} (not rejected)" for record in result.replaced
    )
    return errors


def _run_checks(request: Request, principal: Principal, trace_ids: Sequence[str]) -> None:
    """The trace-only checks on the traces just stored; a failure costs no stored span."""
    try:
        from lucidtrace.probes.checks.runner import check_ingested  # noqa: PLC0415 - optional

        check_ingested(engine_of(request), project_id=principal.project_id, trace_ids=trace_ids)
    except Exception as exc:
        logger.warning(
            "lucidtrace: checks on ingested traces failed (the spans are stored): %s",
            failure_reason(exc),
        )

"""Ship spans to a lucidtrace server through a durable on-disk spool.

:class:`HttpSpanExporter` is an OpenTelemetry ``SpanExporter`` in two halves:

* ``export()`` (called by lucidtrace's processor on its worker thread, never on the agent's
  thread) turns a batch into the wire format (:mod:`lucidtrace.store.wire`), gzips it and writes
  it to the spool as one segment, ``fsync``-ed: that is the group commit, one per batch. It never
  touches the network. Past the spool's byte cap the batch is dropped and counted.
* a sender thread posts the segments, oldest first, to ``{endpoint}/api/v1/spans`` and deletes a
  segment only after the server answered 200 (it commits before answering). Connection errors,
  5xx, 408 and 429 are retried with exponential backoff and jitter, honouring ``Retry-After``;
  401/403 (a bad key) are logged and retried slowly, keeping the spool; 413 splits the batch in
  two; any other 4xx means the server refuses the batch for good: it is moved to the spool's
  ``dead/`` directory and logged once with the server's message.

Only the standard library is used for HTTP, so the core install can ship spans.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from lucidtrace.tracer._log import log_once, logger
from lucidtrace.tracer.spool import Claim, CorruptSegmentError, Spool, default_spool_dir

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["DEFAULT_SPOOL_MAX_BYTES", "HttpSpanExporter", "SenderStats"]

DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
"""Default cap of the spool: 256 MiB of compressed batches."""

BATCH_PATH = "/api/v1/spans"  # the same value as lucidtrace.store.wire.BATCH_PATH
_RETRY_STATUSES = frozenset({408, 429})
_AUTH_STATUSES = frozenset({401, 403})
_MAX_MESSAGE_CHARS = 300
_USER_AGENT = "lucidtrace-python"


@dataclass(frozen=True)
class SenderStats:
    """What the sender did since the exporter started.

    Attributes:
        sent: Spans the server acknowledged.
        rejected: Spans the server acknowledged but refused one by one (per-item errors).
        dead_lettered: Spans in batches the server refused (moved to the spool's ``dead/``).
        spool_dropped: Spans dropped because the spool was full.
        pending: Spans on disk waiting to be sent (all processes sharing the spool).
        pending_bytes: Bytes of those segments.
    """

    sent: int
    rejected: int
    dead_lettered: int
    spool_dropped: int
    pending: int
    pending_bytes: int


class _Response:
    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, body: bytes, retry_after: float | None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after


class HttpSpanExporter(SpanExporter):
    """Spool spans on disk and send them to a lucidtrace server.

    Args:
        endpoint: Base URL of the server (``http://host:6006``); batches go to
            ``{endpoint}/api/v1/spans``.
        api_key: Ingest key, sent as ``Authorization: Bearer``.
        spool_dir: The spool directory (default:
            :func:`~lucidtrace.tracer.spool.default_spool_dir`).
        spool_max_bytes: Cap of the spool; batches past it are dropped and counted.
        timeout: Seconds to wait on the server for one request.
        min_backoff: First wait after a failed attempt, in seconds (doubled per failure).
        max_backoff: Longest wait between attempts, and the most of a ``Retry-After`` honoured.
        auth_backoff: Wait between attempts while the server refuses the key.
        poll_interval: Seconds between looks for segments written by other processes.

    Raises:
        ValueError: ``endpoint`` is not an http(s) URL.
        OSError: The spool directory cannot be created or written.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        timeout: float = 10.0,
        min_backoff: float = 0.5,
        max_backoff: float = 60.0,
        auth_backoff: float = 60.0,
        poll_interval: float = 1.0,
    ) -> None:
        # Imported now, not on the first export: the import takes a while, and a forked worker
        # that exports once and exits should not spend its exit timeout on it.
        from lucidtrace.store._records import record_from_readable_span  # noqa: PLC0415
        from lucidtrace.store.wire import record_to_wire  # noqa: PLC0415

        self._convert = (record_from_readable_span, record_to_wire)
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            msg = f"endpoint must be an http:// or https:// URL, got {endpoint!r}"
            raise ValueError(msg)
        self.endpoint = endpoint.rstrip("/")
        self._url = parsed
        self._path = parsed.path.rstrip("/") + BATCH_PATH
        self._api_key = api_key
        directory = Path(spool_dir) if spool_dir is not None else default_spool_dir(endpoint)
        self.spool = Spool(directory, max_bytes=spool_max_bytes)
        self._timeout = timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._auth_backoff = auth_backoff
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._lost_segments = 0  # segments dead-lettered or moved aside by this sender
        self._lost_reported = 0  # ... as of the last wait_sent() that returned
        self._attempts_failed = 0  # failed attempts in a row
        self._failures_seen = 0  # total failed attempts, for waiters that give up on one
        self._sent = 0
        self._rejected = 0
        self._dead = 0
        self._dropped = 0
        self._dropping = False
        self._closed = False
        self._stopping = False
        self._new_work = False
        self._nudged = False
        self._conn: http.client.HTTPConnection | None = None
        self._claim: Claim | None = None
        self._start_sender()
        reinit = _weak_method(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (m := reinit()) is not None and m())

    # ------------------------------------------------------------------ processor side

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans`` to the spool; SUCCESS once they are on disk."""
        _, failed = self.export_counted(spans)
        return SpanExportResult.FAILURE if failed else SpanExportResult.SUCCESS

    def export_counted(self, spans: Sequence[ReadableSpan]) -> tuple[int, int]:
        """Write ``spans`` to the spool as one segment; (spans on disk, spans lost)."""
        if self._closed or not spans:
            return 0, len(spans)
        record_from_readable_span, record_to_wire = self._convert
        wire_spans = []
        for span in spans:
            try:
                wire_spans.append(record_to_wire(record_from_readable_span(span)))
            except Exception:
                log_once(
                    "http-export-read",
                    "lucidtrace: a finished span cannot be read; it is lost (counted in "
                    "get_stats())",
                    exc_info=True,
                )
        unreadable = len(spans) - len(wire_spans)
        if not wire_spans:
            return 0, unreadable
        try:
            payload = _encode_batch(wire_spans)
            name = self.spool.append(payload, len(wire_spans))
        except Exception as exc:
            log_once(
                f"spool-write:{type(exc).__name__}",
                "lucidtrace: writing to the spool %s failed (%s); %d span(s) lost (counted in "
                "get_stats())",
                self.spool.directory,
                exc,
                len(wire_spans),
            )
            return 0, len(spans)
        if name is None:
            self._count_drop(len(wire_spans))
            return 0, len(spans)
        with self._changed:
            self._new_work = True
            if self._dropping:
                self._dropping = False
                logger.warning(
                    "lucidtrace: the spool has room again; %d span(s) were dropped in all",
                    self._dropped,
                )
            self._changed.notify_all()
        return len(wire_spans), unreadable

    def _count_drop(self, count: int) -> None:
        with self._lock:
            self._dropped += count
            first = not self._dropping
            self._dropping = True
        if first:
            logger.warning(
                "lucidtrace: the spool %s is full (%d of %d bytes: is the server %s down?); "
                "new spans are dropped and counted in lucidtrace.get_stats().dropped until "
                "it drains. Raise spool_max_bytes to keep more.",
                self.spool.directory,
                self.spool.size_bytes,
                self.spool.max_bytes,
                self.endpoint,
            )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: every export is on disk when it returns.

        Waiting for the server is :meth:`wait_sent`; the processor calls this method on its own
        thread, which must not wait on the network.
        """
        return True

    def shutdown(self) -> None:
        """Stop writing and sending; segments not yet sent stay on disk for the next run."""
        self._closed = True
        self.stop(timeout=1.0)

    # ------------------------------------------------------------------ control

    @property
    def stats(self) -> SenderStats:
        """Counters of the exporter and the spool."""
        return SenderStats(
            sent=self._sent,
            rejected=self._rejected,
            dead_lettered=self._dead,
            spool_dropped=self._dropped,
            pending=self.spool.pending_spans,
            pending_bytes=self.spool.size_bytes,
        )

    def wait_sent(self, timeout: float | None, *, give_up_on_failure: bool = False) -> bool:
        """Wait until every segment in the spool now is acknowledged by the server.

        That is every span this process wrote so far, and those that earlier runs (or other
        processes sharing the spool) left there: they all ended before the call.

        Args:
            timeout: Seconds to wait at most (None: no limit).
            give_up_on_failure: Return False as soon as one attempt fails after the call (the
                server is down: waiting the timeout out would only delay the caller).

        Returns:
            True when all of them were acknowledged; False at the timeout, when one failed
            attempt ended the wait, or when, since the previous call, the server refused a batch
            (dead-lettered) or a damaged segment was moved aside.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        ready = self.spool.names()
        if not ready:
            return self._no_loss_since_last_wait()
        mark = ready[-1]  # names sort by time: later segments (and parts of split ones) sort after
        with self._changed:
            failures = self._failures_seen
            self._nudged = True  # a sender in backoff tries again now
            self._changed.notify_all()
        while any(name <= mark for name in self.spool.names()):
            if not self._sender.is_alive():
                return False
            left = None if deadline is None else deadline - time.monotonic()
            with self._changed:
                if give_up_on_failure and self._failures_seen > failures:
                    return False  # an attempt failed since the call: the server is down
                if left is not None and left <= 0:
                    return False
                self._changed.wait(0.1 if left is None else min(left, 0.1))
        return self._no_loss_since_last_wait()

    def _no_loss_since_last_wait(self) -> bool:
        with self._lock:
            seen, self._lost_reported = self._lost_reported, self._lost_segments
            return self._lost_segments == seen

    def stop(self, timeout: float | None = 1.0) -> None:
        """Stop the sender thread (a request in flight is abandoned; its segment stays)."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if threading.current_thread() is not self._sender:
            self._sender.join(timeout)

    # ------------------------------------------------------------------ sender thread

    def _start_sender(self) -> None:
        self._sender = threading.Thread(
            target=self._run, name="lucidtrace-http-sender", daemon=True
        )
        self._sender.start()

    def _after_fork(self) -> None:
        # The child owns neither the parent's lock nor its connection: close both copies.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        self._close_connection()  # closes this process's copy; the parent's stays open
        if not self._closed and not self._stopping:
            self._start_sender()

    def _run(self) -> None:
        from opentelemetry.context import (  # noqa: PLC0415 - SDK already loaded
            _SUPPRESS_INSTRUMENTATION_KEY,
            attach,
            detach,
            set_value,
        )

        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            while not self._stopping:
                try:
                    delay = self._send_ready()
                except Exception:  # a bug or a full disk must not end the sender for good
                    log_once(
                        "http-sender-error",
                        "lucidtrace: the HTTP sender hit an unexpected error; retrying",
                        exc_info=True,
                    )
                    self._close_connection()
                    delay = self._max_backoff
                if delay is None:  # nothing left: wait for a new segment, or poll for others'
                    self._sleep(self._poll_interval, wake_on_new_work=True)
                else:  # backing off: only stop() or wait_sent() cut it short
                    self._sleep(delay, wake_on_new_work=False)
        finally:
            self._close_connection()
            detach(token)

    def _sleep(self, seconds: float, *, wake_on_new_work: bool) -> None:
        deadline = time.monotonic() + seconds
        with self._changed:
            while not (self._stopping or self._nudged or (wake_on_new_work and self._new_work)):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            self._nudged = False

    def _send_ready(self) -> float | None:
        """Send the waiting segments in order; a delay before the next try, or None."""
        with self._lock:
            self._new_work = False
        for name in self.spool.list_ready():
            if self._stopping:
                return None
            claim = self.spool.claim(name)
            if claim is None:
                continue  # another process is sending it, or it is gone
            self._claim = claim
            try:
                delay = self._send_claimed(claim)
            finally:
                self._claim = None
                claim.release()
            if delay is not None:
                return delay
        return None

    def _send_claimed(self, claim: Claim) -> float | None:
        try:
            segment = claim.read()
        except (CorruptSegmentError, OSError) as exc:
            target = self.spool.quarantine(claim, f"unreadable: {exc}")
            logger.warning(
                "lucidtrace: spool segment %s is damaged (%s); moved aside to %s",
                claim.name,
                exc,
                target,
            )
            self._done(claim.name, dead=True)
            return None
        try:
            response = self._post(segment.payload)
        except (OSError, http.client.HTTPException) as exc:
            self._close_connection()
            return self._failed(f"{type(exc).__name__}: {exc}", None)
        return self._handle(claim, segment.spans, segment.payload, response)

    def _handle(
        self, claim: Claim, spans: int, payload: bytes, response: _Response
    ) -> float | None:
        """Act on the server's answer; a delay before the next attempt, or None."""
        status = response.status
        delay: float | None = None
        if status == 200:
            self._acknowledged(claim, spans, response.body)
        elif status in _AUTH_STATUSES:
            self._note_failure()
            log_once(
                f"http-auth:{status}",
                "lucidtrace: the server %s refused the API key (HTTP %d: %s); spans stay in "
                "the spool %s and are retried every %.0f s. Set LUCIDTRACE_API_KEY or "
                "configure(api_key=...) to a valid ingest key.",
                self.endpoint,
                status,
                _server_message(response.body),
                self.spool.directory,
                self._auth_backoff,
            )
            delay = self._auth_backoff
        elif spans > 1 and (status == 413 or _over_span_limit(status, response.body)):
            self._split(claim, payload)
        elif 400 <= status < 500 and status not in _RETRY_STATUSES:
            self._dead_letter(claim, spans, status, _server_message(response.body))
        else:
            delay = self._failed(
                f"HTTP {status}: {_server_message(response.body)}", response.retry_after
            )
        return delay

    def _acknowledged(self, claim: Claim, spans: int, body: bytes) -> None:
        self.spool.remove(claim)
        rejected = _rejected_count(body)
        if rejected:
            log_once(
                "http-rejected",
                "lucidtrace: the server %s refused %d span(s) of a batch: %s",
                self.endpoint,
                rejected,
                _first_item_error(body),
            )
        with self._lock:
            self._sent += spans - rejected
            self._rejected += rejected
            if self._attempts_failed:
                logger.info("lucidtrace: the server %s is reachable again", self.endpoint)
            self._attempts_failed = 0
        self._done(claim.name, dead=bool(rejected))

    def _split(self, claim: Claim, payload: bytes) -> None:
        try:
            spans = json.loads(gzip.decompress(payload))["spans"]
        except (ValueError, KeyError, TypeError, EOFError, OSError) as exc:
            self._dead_letter(claim, 0, 413, f"too large, and cannot be split: {exc}")
            return
        half = len(spans) // 2
        parts = [(_encode_batch(part), len(part)) for part in (spans[:half], spans[half:])]
        self.spool.replace(claim, parts)
        log_once(
            "http-413",
            "lucidtrace: the server %s found a batch too large; sending it in parts",
            self.endpoint,
        )

    def _dead_letter(self, claim: Claim, spans: int, status: int, message: str) -> None:
        target = self.spool.dead_letter(claim, f"HTTP {status}: {message}")
        with self._lock:
            self._dead += spans
        log_once(
            f"http-dead:{status}",
            "lucidtrace: the server %s refused a batch of %d span(s) (HTTP %d: %s); it is kept "
            "in %s and not retried (counted in get_stats().failed)",
            self.endpoint,
            spans,
            status,
            message,
            target.parent,
        )
        self._done(claim.name, dead=True)

    def _done(self, name: str, *, dead: bool) -> None:
        with self._changed:
            if dead:
                self._lost_segments += 1
            self._changed.notify_all()

    def _note_failure(self) -> None:
        with self._changed:
            self._attempts_failed += 1
            self._failures_seen += 1
            self._changed.notify_all()

    def _failed(self, reason: str, retry_after: float | None) -> float:
        self._note_failure()
        failures = self._attempts_failed
        if failures == 1:
            logger.warning(
                "lucidtrace: cannot send spans to %s (%s); they stay in the spool %s and are "
                "retried with backoff",
                self.endpoint,
                reason,
                self.spool.directory,
            )
        if retry_after is not None:
            return min(max(retry_after, 0.0), self._max_backoff)
        ceiling = min(self._max_backoff, self._min_backoff * 2.0 ** min(failures - 1, 30))
        jitter: float = random.uniform(0.5, 1.0)  # spreads the retries of many processes
        return ceiling * jitter

    # ------------------------------------------------------------------ HTTP

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host = self._url.hostname or ""
            port = self._url.port
            if self._url.scheme == "https":
                self._conn = http.client.HTTPSConnection(host, port, timeout=self._timeout)
            else:
                self._conn = http.client.HTTPConnection(host, port, timeout=self._timeout)
        return self._conn

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _post(self, payload: bytes) -> _Response:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": _USER_AGENT,
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=payload, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed meanwhile: one fresh try.
                self._close_connection()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self._close_connection()
            return _Response(response.status, body, _retry_after(response.getheader("Retry-After")))
        raise http.client.HTTPException("unreachable")  # pragma: no cover


def _encode_batch(wire_spans: list[dict[str, Any]]) -> bytes:
    from lucidtrace.store.wire import WIRE_FORMAT  # noqa: PLC0415 - light

    body = json.dumps(
        {"format": WIRE_FORMAT, "spans": wire_spans}, separators=(",", ":"), default=str
    ).encode("utf-8")
    return gzip.compress(body, compresslevel=5, mtime=0)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _server_message(body: bytes) -> str:
    """The server's explanation in a reply body, on one short line."""
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        decoded = json.loads(text)
        if isinstance(decoded, dict):
            for key in ("detail", "error", "message"):
                if key in decoded:
                    value = decoded[key]
                    text = value if isinstance(value, str) else json.dumps(value)
                    break
    text = " ".join(text.split()) or "(no message)"
    return text[: _MAX_MESSAGE_CHARS - 3] + "..." if len(text) > _MAX_MESSAGE_CHARS else text


def _over_span_limit(status: int, body: bytes) -> bool:
    """A 400 that says the batch has more spans than the server takes in one request."""
    if status != 400:
        return False
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        decoded = json.loads(body)
        return isinstance(decoded, dict) and decoded.get("limit") == "max_spans_per_request"
    return False


def _first_item_error(body: bytes) -> str:
    """The error of the first rejected item of a 200 reply (else the whole reply, shortened)."""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        decoded = json.loads(body)
        items = decoded.get("items") if isinstance(decoded, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("status") == "rejected":
                return _server_message(json.dumps({"error": item.get("error")}).encode())
    return _server_message(body)


def _rejected_count(body: bytes) -> int:
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            value = decoded.get("rejected")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, list):
                return len(value)
    return 0


def _weak_method(method: Callable[[], None]) -> Callable[[], Callable[[], None] | None]:
    import weakref  # noqa: PLC0415

    return weakref.WeakMethod(method)

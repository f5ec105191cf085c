"""lucidtrace's span processor: the caller appends to a queue, a worker thread exports.

What it promises, where OpenTelemetry's ``BatchSpanProcessor`` does not:

* nothing is dropped silently: the queue holds up to ``max_queue_size`` spans (default
  100,000, not 2,048); a span ending while it is full is counted (:attr:`stats`) and logged;
* ``force_flush(timeout)`` returns once every span that ended before the call has been handed to
  the exporter, or returns False when the timeout passes; it never hangs;
* ``shutdown(timeout)`` is bounded the same way: a hung exporter is abandoned (its thread is a
  daemon) rather than holding up the process;
* masking runs on the worker thread, over every span, before the exporter sees it;
* after ``os.fork`` the child gets a fresh worker and an empty queue.

The caller's thread only appends to a ``deque`` (thread safe, no lock taken) and wakes the
worker once a batch is ready, so it never waits on the exporter.
"""

from __future__ import annotations

import multiprocessing.util
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
    attach,
    detach,
    set_value,
)
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from lucidtrace.environment_variables import LUCIDTRACE_EXIT_TIMEOUT
from lucidtrace.tracer import _attributes
from lucidtrace.tracer._log import log_once, logger
from lucidtrace.tracer._settings import env_float
from lucidtrace.tracer.masking import MIN_SECRET_CHARS, Masker

DEFAULT_MAX_QUEUE_SIZE = 100_000
DEFAULT_EXPORT_BATCH_SIZE = 512
DEFAULT_FLUSH_INTERVAL = 1.0


@dataclass(frozen=True)
class ProcessorStats:
    """Counters of a processor since it started.

    Attributes:
        queued: Spans waiting for export now.
        exported: Spans the exporter accepted.
        failed: Spans lost because the exporter failed or raised.
        dropped: Spans dropped because the queue was full.
    """

    queued: int
    exported: int
    failed: int
    dropped: int


class _FlushRequest:
    __slots__ = ("done", "lost")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.lost = 0  # spans failed or dropped so far, when the worker reached the request


def _plain_mapping(attributes: Any) -> Mapping[str, Any]:
    """The dict under an SDK ``BoundedAttributes``, or ``attributes`` itself.

    Iterating ``BoundedAttributes`` takes a lock and copies, microseconds per span on the export
    thread, which competes with the agent for the GIL. Ended spans are immutable, so reading the
    dict unlocked is safe.
    """
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


def _plain_sequence(items: Any) -> Sequence[Any]:
    """The deque under an SDK ``BoundedList`` (same reason as :func:`_plain_mapping`)."""
    inner = getattr(items, "_dq", None)
    return inner if isinstance(inner, deque) else items


def mask_span(span: ReadableSpan, masker: Masker) -> ReadableSpan:
    """Return ``span`` with every text field masked (the same object when nothing changed)."""
    name = span.name
    if not (masker.short_is_safe and len(name) < MIN_SECRET_CHARS):
        name = masker.mask_value(name)
    attributes = _plain_mapping(span._attributes) if span._attributes else None
    new_attributes = masker.mask_attributes(attributes) if attributes else None
    events = _plain_sequence(span._events)
    new_events: list[Event] | None = None
    for i, event in enumerate(events):
        event_attributes = _plain_mapping(event.attributes) if event.attributes else None
        masked = masker.mask_attributes(event_attributes) if event_attributes else None
        if masked is not None:
            if new_events is None:
                new_events = list(events)
            new_events[i] = Event(event.name, masked, event.timestamp)
    links = _plain_sequence(span._links)
    new_links: list[Link] | None = None
    for i, link in enumerate(links):
        link_attributes = _plain_mapping(link.attributes) if link.attributes else None
        masked = masker.mask_attributes(link_attributes) if link_attributes else None
        if masked is not None:
            if new_links is None:
                new_links = list(links)
            new_links[i] = Link(link.context, masked)
    status = span.status
    if status.description:
        description = masker.mask_value(status.description)
        if description is not status.description:
            status = Status(status.status_code, description)
    if (
        name is span.name
        and new_attributes is None
        and new_events is None
        and new_links is None
        and status is span.status
    ):
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=new_attributes if new_attributes is not None else span.attributes,
        events=new_events if new_events is not None else span.events,
        links=new_links if new_links is not None else span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _in_multiprocessing_child(processor: LucidtraceSpanProcessor) -> None:
    """In a process that ``multiprocessing`` forked (a ``Pool`` worker): flush before it ends.

    Such processes end through ``os._exit`` (no ``atexit``); ``multiprocessing`` runs its
    finalizers when the process function returns, so one is registered here. A worker that is
    killed (``Pool.terminate()`` sends SIGTERM) runs no finalizer, and no signal handler is
    installed to make up for it: a handler that exports would run in the middle of whatever the
    worker was doing and could wait forever on a lock the interrupted code holds. Work that may
    be terminated calls ``lucidtrace.flush()`` when it is done (documented).
    """
    ref = weakref.ref(processor)

    def at_exit() -> None:
        live = ref()
        if live is not None and not live._closed:
            live.shutdown(env_float(LUCIDTRACE_EXIT_TIMEOUT, 10.0))

    multiprocessing.util.Finalize(None, at_exit, exitpriority=100)


class LucidtraceSpanProcessor(SpanProcessor):
    """Queue finished spans; mask and export them in batches on a worker thread.

    Args:
        exporter: Where spans go (``StoreSpanExporter``, or any OpenTelemetry ``SpanExporter``).
        masker: Masking applied to every span before export (default: built-in patterns).
        max_queue_size: Most spans waiting for export; beyond it spans are counted and dropped.
        export_batch_size: Most spans per ``export()`` call; a full batch wakes the worker.
        flush_interval: Seconds the worker waits before exporting a batch that is not full.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        masker: Masker | None = None,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        export_batch_size: int = DEFAULT_EXPORT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        if max_queue_size < 1 or export_batch_size < 1 or flush_interval < 0:
            msg = "max_queue_size and export_batch_size must be >= 1, flush_interval >= 0"
            raise ValueError(msg)
        self._exporter = exporter
        self._masker = masker if masker is not None else Masker()
        self._max_queue_size = max_queue_size
        self._batch_size = export_batch_size
        self._interval = flush_interval
        self._queue: deque[ReadableSpan | _FlushRequest] = deque()
        self._exported = 0
        self._failed = 0
        self._dropped = 0
        self._drop_lock = threading.Lock()
        self._lost_seen = 0  # spans failed or dropped up to the last flush() that returned
        self._stopping = False
        self._closed = False
        self._worker_lock = threading.Lock()
        self._start_worker()
        reinit = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (m := reinit()) is not None and m())
        multiprocessing.util.register_after_fork(self, _in_multiprocessing_child)

    # ------------------------------------------------------------------ caller's thread

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Stamp the trace attributes in force (session, user, tags, metadata) on the span."""
        current = _attributes.CURRENT.get()
        if current is not None and current.attributes:
            span.set_attributes(current.attributes)

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the finished span; this is the whole cost on the caller's thread."""
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._drop()
            return
        queue.append(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake_worker()

    def _ignore(self, span: ReadableSpan) -> None:
        """``on_end`` once shut down."""

    def _drop(self) -> None:
        if self._closed:
            return
        with self._drop_lock:
            self._dropped += 1
            first = self._dropped == 1
        if first:
            logger.warning(
                "lucidtrace: the export queue is full (%d spans); spans are being dropped and "
                "counted in lucidtrace.get_stats(). The exporter is too slow for this load: "
                "raise max_queue_size or check the store.",
                self._max_queue_size,
            )

    def _wake_worker(self) -> None:
        if self._pid != os.getpid():
            # A fork that bypassed os.register_at_fork (uWSGI): the worker did not survive it.
            self._ensure_worker()
        self._wake.set()

    def _ensure_worker(self) -> None:
        """Start a worker if this process has none (after a fork, or if it died)."""
        with self._worker_lock:
            if self._pid != os.getpid() or not self._worker.is_alive():
                self._start_worker()

    # ------------------------------------------------------------------ control

    @property
    def stats(self) -> ProcessorStats:
        """The counters of this processor."""
        queued = sum(1 for item in list(self._queue) if not isinstance(item, _FlushRequest))
        return ProcessorStats(queued, self._exported, self._failed, self._dropped)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every span that ended before this call; False if ``timeout_millis`` passed."""
        return self.flush(timeout_millis / 1000)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Export every span that ended before this call; False if ``timeout`` seconds passed."""
        if self._closed:
            return not self._queue
        if threading.current_thread() is self._worker:
            return False  # called from inside the exporter: waiting would deadlock
        if self._pid != os.getpid() or not self._worker.is_alive():
            self._ensure_worker()
        request = _FlushRequest()
        self._queue.append(request)
        self._wake.set()
        if not request.done.wait(timeout):
            return False
        # Spans lost (failed or dropped) since the last flush: among them are spans that ended
        # before this call, so not everything was stored.
        with self._drop_lock:
            seen, self._lost_seen = self._lost_seen, max(self._lost_seen, request.lost)
        return request.lost <= seen

    def shutdown(self, timeout: float | None = 30.0) -> bool:  # type: ignore[override]
        """Export what is queued, then stop; returns False if ``timeout`` seconds passed.

        The exporter is shut down by the worker after its last export, so an exporter that
        hangs holds up neither this call past ``timeout`` nor the process at exit.
        """
        if self._closed:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._pid != os.getpid() or not self._worker.is_alive():
            self._ensure_worker()
        self._stopping = True
        self._wake.set()
        self._worker.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        self._closed = True
        # Spans ending from now on are ignored instead of piling up in a queue nobody drains.
        self.on_end = self._ignore  # type: ignore[method-assign]
        if self._worker.is_alive():
            left = self.stats.queued
            logger.warning(
                "lucidtrace: shutdown timed out after %.1f s; %d spans were not exported",
                timeout,
                left,
            )
            return False
        return True

    # ------------------------------------------------------------------ worker thread

    def _start_worker(self) -> None:
        self._pid = os.getpid()
        self._wake = threading.Event()
        self._worker = threading.Thread(target=self._run, name="lucidtrace-export", daemon=True)
        self._worker.start()

    def _after_fork(self) -> None:
        # The parent exports what it queued; the child starts empty with its own worker.
        self._queue.clear()
        self._drop_lock = threading.Lock()
        self._worker_lock = threading.Lock()
        if not self._closed:
            self._start_worker()

    def _run(self) -> None:
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            while not self._stopping:
                self._wake.wait(self._interval)
                self._wake.clear()
                self._drain()
            self._drain()
            try:
                self._exporter.shutdown()
            except Exception:  # the exporter's own failure on close is only worth a log line
                log_once("exporter-shutdown", "lucidtrace: exporter shutdown failed", exc_info=True)
        finally:
            detach(token)

    def _drain(self) -> None:
        queue = self._queue
        batch: list[ReadableSpan] = []
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if isinstance(item, _FlushRequest):
                if batch:
                    self._export(batch)
                    batch = []
                self._flush_exporter()
                item.lost = self._failed + self._dropped
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self._batch_size:
                self._export(batch)
                batch = []
        if batch:
            self._export(batch)

    def _flush_exporter(self) -> None:
        try:
            self._exporter.force_flush()
        except Exception:  # an exporter that cannot flush still exported what it was given
            log_once("exporter-flush", "lucidtrace: exporter force_flush failed", exc_info=True)

    def _export(self, batch: list[ReadableSpan]) -> None:
        masker = self._masker
        if masker.active:
            spans: list[ReadableSpan] = []
            for span in batch:
                try:
                    spans.append(mask_span(span, masker))
                except Exception:  # fail closed: an unmaskable span is not exported
                    self._failed += 1
                    log_once("mask-span", "lucidtrace: masking a span failed", exc_info=True)
        else:
            spans = batch
        if not spans:
            return
        counted = getattr(self._exporter, "export_counted", None)
        if counted is not None:  # the store exporter: it stores what it can, and logs the rest
            try:
                stored, failed = counted(spans)
            except Exception:
                stored, failed = 0, len(spans)
                log_once("export", "lucidtrace: the exporter raised", exc_info=True)
            self._exported += stored
            self._failed += failed
            return
        try:
            result = self._exporter.export(spans)
        except Exception:
            self._failed += len(spans)
            log_once(
                "export",
                "lucidtrace: the exporter raised; %d spans were lost (counted in get_stats())",
                len(spans),
                exc_info=True,
            )
            return
        if result is SpanExportResult.SUCCESS:
            self._exported += len(spans)
        else:
            self._failed += len(spans)
            log_once(
                "export-failure",
                "lucidtrace: the exporter reported failure; %d spans were lost",
                len(spans),
            )


class DispatchingSpanProcessor(SpanProcessor):
    """Forwards to the current :class:`LucidtraceSpanProcessor`, or to nothing.

    OpenTelemetry offers no way to remove a processor from a provider, and the global provider
    can be set only once per process; so ``configure()`` adds one of these per provider, once,
    and swaps the processor behind it. The swap rebinds ``on_start``/``on_end`` to the target's
    bound methods, so forwarding costs no extra call on the hot path.

    Args:
        on_shutdown: Called when the provider shuts down.
    """

    def __init__(self, on_shutdown: Callable[[], object] | None = None) -> None:
        self._target: LucidtraceSpanProcessor | None = None
        self._on_shutdown = on_shutdown
        self.set_target(None)

    def set_target(self, processor: LucidtraceSpanProcessor | None) -> None:
        """Forward to ``processor`` from now on (None: do nothing)."""
        self._target = processor
        if processor is None:
            self.on_start = self._idle_start  # type: ignore[method-assign]
            self.on_end = self._idle_end  # type: ignore[method-assign]
        else:
            self.on_start = processor.on_start  # type: ignore[method-assign]
            self.on_end = processor.on_end  # type: ignore[method-assign]

    def _idle_start(self, span: Span, parent_context: Context | None = None) -> None:
        """``on_start`` while nothing is configured."""

    def _idle_end(self, span: ReadableSpan) -> None:
        """``on_end`` while nothing is configured."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the current processor."""
        target = self._target
        return True if target is None else target.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """The provider is shutting down: shut lucidtrace down with it."""
        if self._on_shutdown is not None:
            self._on_shutdown()

"""``configure()``, ``flush()``, ``shutdown()``: the process-wide tracing state.

OpenTelemetry lets a process set its global ``TracerProvider`` once. lucidtrace therefore
installs one small dispatching processor per provider, once, and swaps the real processor behind
it on every ``configure()``/``shutdown()``. The dispatcher rebinds its own ``on_start``/``on_end``
to the current processor's bound methods, so the swap adds no call on the hot path.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api

from lucidtrace.environment_variables import (
    LUCIDTRACE_DATABASE_URL,
    LUCIDTRACE_ENABLED,
    LUCIDTRACE_EXIT_TIMEOUT,
    LUCIDTRACE_EXPORT_BATCH_SIZE,
    LUCIDTRACE_FLUSH_INTERVAL,
    LUCIDTRACE_MASK_DEFAULTS,
    LUCIDTRACE_MAX_QUEUE_SIZE,
)
from lucidtrace.tracer import _serialize
from lucidtrace.tracer._log import logger, reset_log_once
from lucidtrace.tracer._remote import Remote, RemoteSettings, open_remote
from lucidtrace.tracer._settings import env_bool, env_float, env_int
from lucidtrace.tracer.masking import Masker, MaskFn

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

    from lucidtrace.tracer.processor import DispatchingSpanProcessor, LucidtraceSpanProcessor

DEFAULT_DATABASE_FILE = "lucidtrace.db"
"""The embedded store used when neither ``database_url=`` nor the environment names one."""

_EVENTS_PER_SPAN = 10_000  # thoughts are span events; OTel's default of 128 would drop them


@dataclass(frozen=True)
class TracerStats:
    """What happened to the spans lucidtrace handled (see :func:`get_stats`).

    Attributes:
        enabled: Whether tracing is configured now.
        queued: Spans waiting for export.
        exported: Spans the exporter accepted.
        failed: Spans lost because the exporter failed, or refused by the server (logged).
        dropped: Spans dropped because the queue, or the server spool, was full (logged).
        sent: Spans the server acknowledged (with ``endpoint=``).
        unsent: Spans in the spool waiting for the server (with ``endpoint=``; all processes
            sharing the spool directory).
    """

    enabled: bool
    queued: int = 0
    exported: int = 0
    failed: int = 0
    dropped: int = 0
    sent: int = 0
    unsent: int = 0


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tracer: Tracer | None = None
        self.processor: LucidtraceSpanProcessor | None = None
        self.last_processor: LucidtraceSpanProcessor | None = None
        self.own_provider: TracerProvider | None = None
        self.dispatchers: dict[int, tuple[TracerProvider, DispatchingSpanProcessor]] = {}
        self.dispatcher: DispatchingSpanProcessor | None = None
        self.settings: dict[str, Any] | None = None
        self.remote: Remote | None = None  # the server spool and the OTLP destination, if any
        self.last_remote: Remote | None = None
        self.atexit_registered = False


STATE = _State()
"""The process-wide state; ``STATE.tracer is None`` means every lucidtrace call is a no-op."""


def _provider() -> TracerProvider:
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider  # noqa: PLC0415 - SDK on demand

    current = trace_api.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current  # the user's OpenTelemetry setup, or ours from an earlier configure()
    if STATE.own_provider is None:
        STATE.own_provider = TracerProvider(
            span_limits=SpanLimits(max_events=_EVENTS_PER_SPAN), shutdown_on_exit=False
        )
        if isinstance(current, trace_api.ProxyTracerProvider):
            trace_api.set_tracer_provider(STATE.own_provider)
        else:
            logger.info(
                "lucidtrace: the global tracer provider is %s, not an OpenTelemetry SDK "
                "provider; lucidtrace records only its own spans",
                type(current).__name__,
            )
    return STATE.own_provider


def _dispatcher_for(provider: TracerProvider) -> DispatchingSpanProcessor:
    from lucidtrace.tracer.processor import DispatchingSpanProcessor  # noqa: PLC0415 - SDK

    entry = STATE.dispatchers.get(id(provider))
    if entry is not None and entry[0] is provider:
        return entry[1]
    # When the provider shuts down (the user's own atexit, say), lucidtrace shuts down with it.
    dispatcher = DispatchingSpanProcessor(on_shutdown=_at_exit)
    provider.add_span_processor(dispatcher)
    STATE.dispatchers[id(provider)] = (provider, dispatcher)
    return dispatcher


def resolve_database_url(database_url: str | None = None) -> str:
    """The store URL: ``database_url`` > ``LUCIDTRACE_DATABASE_URL`` > ``./lucidtrace.db``.

    The default file is resolved to an absolute path now, so a later ``os.chdir`` does not move it.
    """
    if database_url:
        return database_url
    from_env = os.environ.get(LUCIDTRACE_DATABASE_URL, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{Path(DEFAULT_DATABASE_FILE).resolve()}"


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _store_exporter(database_url: str) -> SpanExporter | None:
    """A store exporter whose store is open and usable now, or None (logged in one line)."""
    try:
        from lucidtrace.tracer.exporters import (  # noqa: PLC0415 - SQLAlchemy
            StoreSpanExporter,
            failure_reason,
        )
    except ImportError as exc:
        logger.error(
            "lucidtrace: the store exporter cannot be imported (%s); tracing stays off", exc
        )
        return None
    exporter: StoreSpanExporter | None = None
    try:
        _check_url(database_url)
        exporter = StoreSpanExporter(database_url)
        exporter.open()
    except Exception as exc:  # a bad URL or unwritable directory must not crash the agent
        from lucidtrace.store.errors import StoreError  # noqa: PLC0415 - imported by the exporter

        reason = str(exc) if isinstance(exc, StoreError) else failure_reason(exc)
        logger.error(
            "lucidtrace: could not open the store at %s: %s; tracing stays off. Point %s or "
            "configure(database_url=...) at a database you can write to.",
            _hide_password(database_url),
            " ".join(reason.split())[:500],
            LUCIDTRACE_DATABASE_URL,
        )
        if exporter is not None:
            exporter.shutdown()
        return None
    return exporter


def _check_url(database_url: str) -> None:
    """Refuse destinations that would lose the traces: an in-memory SQLite database."""
    from lucidtrace.store.engine import normalize_url  # noqa: PLC0415 - SQLAlchemy on demand
    from lucidtrace.store.errors import StoreError  # noqa: PLC0415

    url = normalize_url(database_url)
    scheme, _, rest = url.partition("://")
    if scheme.split("+")[0].lower() == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if path in ("", ":memory:") or "mode=memory" in path:
            msg = (
                f"{database_url!r} is an in-memory SQLite database: its traces would vanish "
                "with the process; use sqlite:///path/to/lucidtrace.db"
            )
            raise StoreError(msg)


def _destination(
    exporter: SpanExporter | None, database_url: str | None, remote: Remote | None
) -> SpanExporter | None:
    """The one exporter behind the processor: each named destination, fanned out.

    The embedded store is the default only when no destination is named; ``database_url``
    adds it to the others. None (logged) when the store cannot be opened.
    """
    destinations: list[SpanExporter] = [] if exporter is None else [exporter]
    if remote is not None:
        destinations.extend(remote.exporters)
    if database_url is not None or not destinations:
        store = _store_exporter(resolve_database_url(database_url))
        if store is None:
            if remote is not None:
                remote.shutdown()
            return None
        destinations.insert(1 if exporter is not None else 0, store)
    if len(destinations) == 1:
        return destinations[0]
    from lucidtrace.tracer._destinations import FanoutSpanExporter  # noqa: PLC0415

    return FanoutSpanExporter(destinations)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - rarely needed

    try:
        return version("lucidtrace")
    except PackageNotFoundError:
        return "0.0.0"


def configure(
    database_url: str | None = None,
    *,
    exporter: SpanExporter | None = None,
    mask: MaskFn | Sequence[MaskFn] | None = None,
    mask_defaults: bool | None = None,
    enabled: bool | None = None,
    max_queue_size: int | None = None,
    export_batch_size: int | None = None,
    flush_interval: float | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int | None = None,
    otlp_endpoint: str | None = None,
    otlp_headers: dict[str, str] | None = None,
) -> None:
    """Start recording traces; calling it again reconfigures cleanly.

    Spans go to the embedded store: ``database_url`` if given, else ``LUCIDTRACE_DATABASE_URL``,
    else ``./lucidtrace.db``. With ``endpoint`` (or ``LUCIDTRACE_ENDPOINT``) they go to a
    lucidtrace server instead, through a durable on-disk spool; with ``otlp_endpoint`` (or
    ``LUCIDTRACE_OTLP_ENDPOINT``) also to an OTLP/HTTP backend. Destinations combine: each named
    one (``exporter``, ``endpoint``, ``database_url``, ``otlp_endpoint``) receives every span, and
    the embedded store is the default only when none is named. If the process already has an
    OpenTelemetry SDK tracer provider,
    lucidtrace adds its processor to it; otherwise it installs its own as the global one. Either
    way, spans from any OpenTelemetry instrumentation in the process land in the same store.

    A store that cannot be opened is logged and leaves tracing off: the agent still runs.

    Args:
        database_url: SQLAlchemy URL of the store (``sqlite:///...``, ``postgresql+psycopg://...``).
        exporter: Any OpenTelemetry ``SpanExporter`` to use instead of the store.
        mask: Extra masking callables (``str -> str``), run after the built-in patterns.
        mask_defaults: Apply the built-in secret patterns (default: ``LUCIDTRACE_MASK_DEFAULTS``,
            else True).
        enabled: False turns tracing off (default: ``LUCIDTRACE_ENABLED``, else True).
        max_queue_size: Spans held while waiting for export (default 100,000); past it spans
            are dropped and counted in :func:`get_stats`.
        export_batch_size: Spans per export (default 512).
        flush_interval: Seconds before a partial batch is exported (default 1.0); with
            ``endpoint``, the longest a finished span waits before it is on disk.
        endpoint: Base URL of a lucidtrace server (default: ``LUCIDTRACE_ENDPOINT``).
        api_key: The server's ingest key (default: ``LUCIDTRACE_API_KEY``).
        spool_dir: Directory of the on-disk spool (default: ``LUCIDTRACE_SPOOL_DIR``, else
            ``~/.cache/lucidtrace/spool/<hash of the endpoint>``).
        spool_max_bytes: Cap of the spool (default: ``LUCIDTRACE_SPOOL_MAX_BYTES``, else 256 MiB);
            past it new spans are dropped and counted.
        otlp_endpoint: An OTLP/HTTP collector that also receives the spans (default:
            ``LUCIDTRACE_OTLP_ENDPOINT``).
        otlp_headers: HTTP headers for ``otlp_endpoint`` (default: ``LUCIDTRACE_OTLP_HEADERS``).

    Raises:
        ValueError: ``database_url`` and ``exporter`` were both given, a size is not positive,
            or an endpoint is not an http(s) URL.
        TypeError: ``mask`` holds something that is not callable.
    """
    if database_url is not None and exporter is not None:
        msg = "pass either database_url= or exporter=, not both"
        raise ValueError(msg)
    masks: tuple[MaskFn, ...]
    if mask is None:
        masks = ()
    elif callable(mask):
        masks = (mask,)
    else:
        masks = tuple(mask)
    if mask_defaults is None:
        mask_defaults = env_bool(LUCIDTRACE_MASK_DEFAULTS, True)
    masker = Masker(masks, mask_defaults=mask_defaults)
    queue_size = (
        max_queue_size
        if max_queue_size is not None
        else env_int(LUCIDTRACE_MAX_QUEUE_SIZE, 100_000)
    )
    batch_size = (
        export_batch_size
        if export_batch_size is not None
        else env_int(LUCIDTRACE_EXPORT_BATCH_SIZE, 512)
    )
    interval = (
        flush_interval if flush_interval is not None else env_float(LUCIDTRACE_FLUSH_INTERVAL, 1.0)
    )
    if queue_size < 1 or batch_size < 1 or interval < 0:
        msg = "max_queue_size and export_batch_size must be >= 1 and flush_interval >= 0"
        raise ValueError(msg)
    if enabled is None:
        enabled = env_bool(LUCIDTRACE_ENABLED, True)
    remote_settings = RemoteSettings.resolve(
        endpoint=endpoint,
        api_key=api_key,
        spool_dir=spool_dir,
        spool_max_bytes=spool_max_bytes,
        otlp_endpoint=otlp_endpoint,
        otlp_headers=otlp_headers,
        max_queue_size=queue_size,
        export_batch_size=batch_size,
    )

    with STATE.lock:
        shutdown()
        STATE.settings = {
            "database_url": database_url,
            "exporter": exporter,
            "mask": masks,
            "mask_defaults": mask_defaults,
            "enabled": enabled,
            "max_queue_size": max_queue_size,
            "export_batch_size": export_batch_size,
            "flush_interval": flush_interval,
            "remote": remote_settings,
        }
        if not enabled:
            return
        _serialize.refresh_limits()
        _serialize.set_mask(masker.mask_text if masker.active else None)
        remote = open_remote(remote_settings) if remote_settings.active else None
        if remote_settings.active and remote is None:
            return  # a destination could not be opened (logged): tracing stays off
        exporter = _destination(exporter, database_url, remote)
        if exporter is None:
            return
        from lucidtrace.tracer.processor import LucidtraceSpanProcessor  # noqa: PLC0415 - SDK

        processor = LucidtraceSpanProcessor(
            exporter,
            masker=masker,
            max_queue_size=queue_size,
            export_batch_size=batch_size,
            flush_interval=interval,
        )
        provider = _provider()
        dispatcher = _dispatcher_for(provider)
        dispatcher.set_target(processor)
        STATE.dispatcher = dispatcher
        STATE.processor = processor
        STATE.remote = remote
        STATE.tracer = provider.get_tracer("lucidtrace", _version())
        if not STATE.atexit_registered:
            atexit.register(_at_exit)
            STATE.atexit_registered = True


def flush(timeout: float | None = 30.0) -> bool:
    """Export every span that ended before this call.

    Args:
        timeout: Seconds to wait at most (None: no limit).

    Returns:
        True when every span that ended before the call is stored; False when ``timeout``
        passed first (the spans stay queued and are exported later), or when spans were lost
        since the previous ``flush()`` (the exporter failed on them, or the queue was full:
        counted in :func:`get_stats`, and logged). With ``endpoint=``, stored means
        acknowledged by the server, for the spans in the spool at the call too (earlier runs'
        included); what is not yet acknowledged stays in the spool (``get_stats().unsent``).
    """
    processor = STATE.processor
    if processor is None:
        return True
    remote = STATE.remote
    if remote is None:
        return processor.flush(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    if not processor.flush(timeout):
        return False
    return remote.wait_sent(_left(deadline))


def _left(deadline: float | None, reserve: float = 0.0) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic() - reserve, 0.0)


def shutdown(timeout: float | None = 30.0) -> bool:
    """Flush, stop the export thread and turn tracing off (every call is a no-op again).

    With ``endpoint=``, spans are on disk when this returns; it waits for the server for what
    is left of ``timeout`` (less when the server fails meanwhile), and what it has not
    acknowledged stays in the spool for the next ``configure()`` with the same spool.

    Returns:
        False when ``timeout`` seconds passed before everything was exported (or sent).
    """
    with STATE.lock:
        processor = STATE.processor
        remote = STATE.remote
        STATE.tracer = None
        STATE.processor = None
        STATE.remote = None
        if STATE.dispatcher is not None:
            STATE.dispatcher.set_target(None)
            STATE.dispatcher = None
        if processor is None:
            return True
        STATE.last_processor = processor
        STATE.last_remote = remote
        if remote is None:
            return processor.shutdown(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Keep a little of the time for the processor to stop after the network waits.
        reserve = 0.0 if timeout is None else min(1.0, timeout / 10)
        sent = processor.flush(_left(deadline, reserve)) and remote.wait_sent(
            _left(deadline, reserve), give_up_on_failure=True
        )
        stopped = processor.shutdown(_left(deadline))
        remote.report_left()
        return sent and stopped


def get_stats() -> TracerStats:
    """Counters of the current (or, after ``shutdown()``, the last) configuration."""
    processor = STATE.processor or STATE.last_processor
    if processor is None:
        return TracerStats(enabled=False)
    stats = processor.stats
    remote = STATE.remote if STATE.processor is not None else STATE.last_remote
    failed, dropped, sent, unsent = stats.failed, stats.dropped, 0, 0
    if remote is not None and remote.http is not None:
        http = remote.http.stats
        # A batch the full spool refused is reported to the processor as lost (so that flush()
        # says so); it is a drop, not an exporter failure.
        failed = max(failed - http.spool_dropped, 0) + http.dead_lettered + http.rejected
        dropped += http.spool_dropped
        sent, unsent = http.sent, http.pending
    return TracerStats(
        enabled=STATE.processor is not None,
        queued=stats.queued,
        exported=stats.exported,
        failed=failed,
        dropped=dropped,
        sent=sent,
        unsent=unsent,
    )


@contextmanager
def suspended() -> Iterator[None]:
    """Set the current configuration aside for the block, and put it back afterwards.

    The configuration set aside keeps exporting what it had queued; whatever is configured
    inside the block is shut down at its end.
    """
    with STATE.lock:
        saved = (STATE.tracer, STATE.processor, STATE.dispatcher, STATE.settings)
        saved_remote = STATE.remote
        STATE.tracer = STATE.processor = STATE.dispatcher = None
        STATE.remote = None
        if saved[2] is not None:
            saved[2].set_target(None)
    try:
        yield
    finally:
        with STATE.lock:
            shutdown(timeout=10.0)
            STATE.tracer, STATE.processor, STATE.dispatcher, STATE.settings = saved
            STATE.remote = saved_remote
            if saved[2] is not None:
                saved[2].set_target(saved[1])


def _at_exit() -> None:
    shutdown(env_float(LUCIDTRACE_EXIT_TIMEOUT, 10.0))


def _reset_for_tests() -> None:
    """Shut down, forget the last configuration and which failures were logged."""
    shutdown(5.0)
    STATE.last_processor = None
    STATE.last_remote = None
    STATE.settings = None
    reset_log_once()

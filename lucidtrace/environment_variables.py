"""Every environment variable lucidtrace reads.

Each name is defined once here, with what it does and its default; the code reads them through
these constants. Arguments passed to :func:`lucidtrace.configure` take precedence over the
environment, which takes precedence over the defaults.
"""

from __future__ import annotations

from typing import Final

LUCIDTRACE_DATABASE_URL: Final = "LUCIDTRACE_DATABASE_URL"
"""SQLAlchemy URL of the store (``sqlite:///path.db`` or ``postgresql+psycopg://...``).

Used by ``lucidtrace.configure()`` when no ``database_url=`` is given, and by the CLI. Default:
the embedded SQLite file ``./lucidtrace.db`` in the working directory.
"""

LUCIDTRACE_ENABLED: Final = "LUCIDTRACE_ENABLED"
"""Set to ``false`` (or ``0``, ``no``, ``off``) to turn tracing off without touching code.

``configure()`` then leaves every lucidtrace call a no-op. An explicit ``enabled=`` argument to
``configure()`` takes precedence. Default: ``true``.
"""

LUCIDTRACE_MASK_DEFAULTS: Final = "LUCIDTRACE_MASK_DEFAULTS"
"""Set to ``false`` to switch off the built-in secret masking (API keys, bearer tokens, ...).

User callables passed as ``configure(mask=[...])`` still run. ``configure(mask_defaults=...)``
takes precedence. Default: ``true``.
"""

LUCIDTRACE_MAX_QUEUE_SIZE: Final = "LUCIDTRACE_MAX_QUEUE_SIZE"
"""Most finished spans held in memory while waiting for export. Default: ``100000``.

Spans that end while the queue is full are dropped, counted in ``lucidtrace.get_stats()`` and
reported in the log. ``configure(max_queue_size=...)`` takes precedence.
"""

LUCIDTRACE_EXPORT_BATCH_SIZE: Final = "LUCIDTRACE_EXPORT_BATCH_SIZE"
"""Most spans handed to the exporter in one call; reaching it also wakes the export thread.

Default: ``512``. ``configure(export_batch_size=...)`` takes precedence.
"""

LUCIDTRACE_FLUSH_INTERVAL: Final = "LUCIDTRACE_FLUSH_INTERVAL"
"""Seconds the export thread waits before exporting a batch that is not full. Default: ``1.0``.

``configure(flush_interval=...)`` takes precedence.
"""

LUCIDTRACE_EXIT_TIMEOUT: Final = "LUCIDTRACE_EXIT_TIMEOUT"
"""Seconds the interpreter waits at exit for queued spans to be exported. Default: ``10``.

Past it the process exits anyway and the number of spans left unexported is logged.
"""

LUCIDTRACE_MAX_VALUE_CHARS: Final = "LUCIDTRACE_MAX_VALUE_CHARS"
"""Most characters of text kept from one captured input or output value. Default: ``1000000``.

Longer strings are cut, with a visible ``...[truncated N chars]`` marker (never silently).
"""

LUCIDTRACE_DEBUG: Final = "LUCIDTRACE_DEBUG"
"""Set to ``1`` to make the ``lucidtrace`` command print the full traceback of unexpected errors.

The same as the ``--debug`` flag. Default: off (one line per error, and a non-zero exit status).
"""

LUCIDTRACE_MODEL_CACHE: Final = "LUCIDTRACE_MODEL_CACHE"
"""Directory where converted GGUF models are cached (``lucidtrace.probes.load_model``).

The first load of a GGUF file (the default model included) converts it, which takes ~20 s, and
writes the weights (safetensors), config and tokenizer to ``<dir>/<name>-<file hash>``; later
loads read that copy in well under a second. Default: ``~/.cache/lucidtrace/models``.
"""

# -- server (lucidtrace serve) --

LUCIDTRACE_HOST: Final = "LUCIDTRACE_HOST"
"""Interface ``lucidtrace serve`` listens on. Default: ``127.0.0.1`` (this machine only).

``--host`` takes precedence. Use ``0.0.0.0`` to accept connections from other machines (then
turn auth on).
"""

LUCIDTRACE_PORT: Final = "LUCIDTRACE_PORT"
"""TCP port of ``lucidtrace serve``. Default: ``6006``. ``--port`` takes precedence."""

LUCIDTRACE_AUTH: Final = "LUCIDTRACE_AUTH"
"""Set to ``true`` to require an API key or a signed-in session on every server route.

Health checks, the sign-in page and static files stay open. ``--auth/--no-auth`` takes
precedence. Default: ``false``.
"""

LUCIDTRACE_SESSION_SECRET: Final = "LUCIDTRACE_SESSION_SECRET"
"""Key (at least 16 characters) that signs the server's session cookies.

Default: a random key generated at start, so sign-ins end when the server restarts; set it to
keep them, and to the same value on every server behind one address.
"""

LUCIDTRACE_SESSION_MAX_AGE: Final = "LUCIDTRACE_SESSION_MAX_AGE"
"""Seconds a sign-in to the web UI lasts. Default: ``604800`` (7 days)."""

LUCIDTRACE_MAX_BODY_BYTES: Final = "LUCIDTRACE_MAX_BODY_BYTES"
"""Largest ingest request body, as sent (compressed), in bytes; larger ones get 413.

Default: ``16777216`` (16 MiB). ``--max-body-bytes`` takes precedence.
"""

LUCIDTRACE_MAX_DECOMPRESSED_BYTES: Final = "LUCIDTRACE_MAX_DECOMPRESSED_BYTES"
"""Largest ingest body after gzip decompression, in bytes; larger ones get 413.

Decompression stops at the limit, so a gzip bomb costs no more memory than this. Default:
``67108864`` (64 MiB). ``--max-decompressed-bytes`` takes precedence.
"""

LUCIDTRACE_MAX_SPANS_PER_REQUEST: Final = "LUCIDTRACE_MAX_SPANS_PER_REQUEST"
"""Most spans in one ingest request; more get 400 naming the limit. Default: ``10000``."""

LUCIDTRACE_MAX_ATTRIBUTES_PER_SPAN: Final = "LUCIDTRACE_MAX_ATTRIBUTES_PER_SPAN"
"""Most attributes on one span (and on one of its events, and on a resource); more get 400.

Default: ``1000``.
"""

LUCIDTRACE_MAX_ATTRIBUTE_DEPTH: Final = "LUCIDTRACE_MAX_ATTRIBUTE_DEPTH"
"""Deepest nesting of one attribute value (arrays and key-value lists); deeper gets 400.

Default: ``16``.
"""

LUCIDTRACE_MAX_CONCURRENT_INGEST: Final = "LUCIDTRACE_MAX_CONCURRENT_INGEST"
"""Ingest requests the server works on at once; more get 503 with ``Retry-After`` at once.

Default: ``8``.
"""

LUCIDTRACE_RETRY_AFTER: Final = "LUCIDTRACE_RETRY_AFTER"
"""Seconds the server asks a client to wait (``Retry-After``) when it is busy. Default: ``1``."""

LUCIDTRACE_INGEST_CHECKS: Final = "LUCIDTRACE_INGEST_CHECKS"
"""Set to ``true`` to run the trace-only faithfulness checks on traces as they are stored.

Read by the server (``--ingest-checks`` takes precedence) and by the in-process exporter.
Default: ``false``.
"""

# -- HTTP export and spool --

LUCIDTRACE_ENDPOINT: Final = "LUCIDTRACE_ENDPOINT"
"""Base URL of a lucidtrace server (``http://host:6006``) to send spans to.

When set (or ``configure(endpoint=...)`` is given), spans go through the on-disk spool to
``{endpoint}/api/v1/spans`` instead of the embedded store. Default: unset.
"""

LUCIDTRACE_API_KEY: Final = "LUCIDTRACE_API_KEY"
"""Ingest key sent to the server as ``Authorization: Bearer``. ``configure(api_key=...)`` wins.

Default: unset (no ``Authorization`` header).
"""

LUCIDTRACE_SPOOL_DIR: Final = "LUCIDTRACE_SPOOL_DIR"
"""Directory of the on-disk spool of spans waiting for the server.

Default: ``~/.cache/lucidtrace/spool/<hash of the endpoint>`` (``$XDG_CACHE_HOME`` if set), one
spool per server shared by the user's processes. ``configure(spool_dir=...)`` takes precedence.
"""

LUCIDTRACE_SPOOL_MAX_BYTES: Final = "LUCIDTRACE_SPOOL_MAX_BYTES"
"""Most bytes of (compressed) spans the spool keeps. Default: ``268435456`` (256 MiB).

Past it, newly ended spans are dropped, counted in ``lucidtrace.get_stats().dropped`` and logged.
``configure(spool_max_bytes=...)`` takes precedence.
"""

LUCIDTRACE_OTLP_ENDPOINT: Final = "LUCIDTRACE_OTLP_ENDPOINT"
"""An OTLP/HTTP collector or backend (``http://collector:4318``) that also receives the spans.

Added to the other destinations; needs ``opentelemetry-exporter-otlp-proto-http`` (in
``lucidtrace[server]``). ``configure(otlp_endpoint=...)`` takes precedence. Default: unset.
"""

LUCIDTRACE_OTLP_HEADERS: Final = "LUCIDTRACE_OTLP_HEADERS"
"""HTTP headers for the OTLP destination, as ``key=value,key2=value2`` (URL-encoded values).

``configure(otlp_headers={...})`` takes precedence. Default: none.
"""

# -- checks and worker --

LUCIDTRACE_WORKER_LEASE_S: Final = "LUCIDTRACE_WORKER_LEASE_S"
"""Seconds a check job stays with a worker that gives no news; after that (the worker is taken
to have died) another worker may take it again. A running worker renews the lease of its job
every third of this time.

Default: ``300``.
"""

LUCIDTRACE_WORKER_POLL_S: Final = "LUCIDTRACE_WORKER_POLL_S"
"""Seconds ``lucidtrace worker`` waits between looks at an empty job queue. Default: ``2``."""

# -- demo --

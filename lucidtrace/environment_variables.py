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

# -- HTTP export and spool --

# -- checks and worker --

# -- demo --

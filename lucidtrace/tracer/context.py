"""Carrying the current span (and trace attributes) into threads and thread pools.

``asyncio`` tasks copy the context when they are created, so ``asyncio.gather`` of traced
coroutines nests correctly on its own, and so does ``asyncio.to_thread``. Threads and
``concurrent.futures`` pools do not copy it: a span started in a worker thread would begin a
new trace. Use these instead:

>>> from lucidtrace import context
>>> with context.ThreadPoolExecutor(max_workers=4) as pool:      # drop-in replacement
...     results = list(pool.map(traced_tool, queries))
>>> threading.Thread(target=context.wrap(traced_tool), args=(q,)).start()
>>> loop.run_in_executor(None, context.wrap(traced_tool), q)
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = ["Thread", "ThreadPoolExecutor", "wrap"]

P = ParamSpec("P")
R = TypeVar("R")


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the current context: wherever it runs, it runs under the current span.

    The wrapped function may be called many times, from several threads at once.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        # A Context can be entered by one thread at a time; each call runs in its own copy.
        return captured.copy().run(fn, *args, **kwargs)

    return run_in_context


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """``concurrent.futures.ThreadPoolExecutor`` whose tasks run in the submitter's context.

    ``submit`` (and so ``map``) copies the context at submission: each task's spans are
    children of the span that was current when it was submitted.
    """

    def submit(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[R]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the current context."""
        run: Callable[..., R] = contextvars.copy_context().run
        return super().submit(run, fn, *args, **kwargs)


class Thread(threading.Thread):
    """``threading.Thread`` that runs its target in the context of the thread that created it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lucidtrace_context = contextvars.copy_context()

    def run(self) -> None:
        """Run the target in the creator's context."""
        self._lucidtrace_context.run(super().run)

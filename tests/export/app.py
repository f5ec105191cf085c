"""An application process for the export tests: ends spans, then flushes, exits or dies.

``python -m tests.export.app --spans N --how {flush,exit,kill}``; the endpoint, key and spool come
from the environment (``LUCIDTRACE_ENDPOINT``, ``LUCIDTRACE_API_KEY``, ``LUCIDTRACE_SPOOL_DIR``).
Prints one JSON line with the flush result and the tracer's stats.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time

import lucidtrace as lt


def main() -> None:
    """Run the scenario named on the command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, required=True)
    parser.add_argument("--how", choices=("flush", "exit", "kill"), default="flush")
    parser.add_argument("--per-trace", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between traces")
    parser.add_argument("--flush-timeout", type=float, default=120.0)
    args = parser.parse_args()
    lt.configure(export_batch_size=200, flush_interval=0.05)
    ended = 0
    while ended < args.spans:
        with lt.span("agent", kind="agent"):
            ended += 1
            for _ in range(min(args.per_trace, args.spans - ended)):
                with lt.span("step", kind="chain"):
                    pass
                ended += 1
        if args.pause:
            time.sleep(args.pause)
    if args.how == "kill":
        from lucidtrace.tracer._config import STATE

        processor = STATE.processor
        assert processor is not None
        ok = processor.flush(30)  # on disk, not sent
        print(json.dumps({"on_disk": ok}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    if args.how == "exit":
        print(json.dumps({"ended": ended}), flush=True)
        sys.exit(0)  # the interpreter's exit flushes, bounded by LUCIDTRACE_EXIT_TIMEOUT
    ok = lt.flush(timeout=args.flush_timeout)
    print(json.dumps({"flushed": ok, **dataclasses.asdict(lt.get_stats())}), flush=True)
    sys.exit(0 if ok else 3)


if __name__ == "__main__":
    main()

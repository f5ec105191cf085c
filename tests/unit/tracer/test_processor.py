"""The span processor: flush and shutdown deadlines, no silent loss, failure isolation, fork."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lucidtrace as lt
from lucidtrace.tracer.masking import Masker
from lucidtrace.tracer.processor import LucidtraceSpanProcessor

ROOT = Path(__file__).resolve().parents[3]


class SlowExporter(SpanExporter):
    """Takes ``delay`` seconds per export call; counts what it received."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[str] = []
        self.calls = 0
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        time.sleep(self.delay)
        self.received.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut_down = True


class BlockingExporter(SpanExporter):
    """Blocks every export until ``release`` is set (a hung database)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


class RaisingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("database unreachable")

    def shutdown(self) -> None:
        return None


def make_spans(n: int) -> None:
    for i in range(n):
        with lt.span(f"s{i}"):
            pass


def test_flush_delivers_everything_that_ended_before_it() -> None:
    exporter = SlowExporter(delay=0.01)
    lt.configure(exporter=exporter, export_batch_size=50, flush_interval=60)
    make_spans(1_234)
    assert lt.flush(timeout=30)
    assert sorted(exporter.received) == sorted(f"s{i}" for i in range(1_234))
    assert exporter.calls >= 1_234 // 50  # batched, not one call per span
    stats = lt.get_stats()
    assert (stats.exported, stats.dropped, stats.failed, stats.queued) == (1_234, 0, 0, 0)


def test_the_agents_thread_does_not_wait_for_a_slow_exporter() -> None:
    exporter = SlowExporter(delay=0.5)
    lt.configure(exporter=exporter, export_batch_size=10, flush_interval=0)
    started = time.perf_counter()
    make_spans(200)  # 20 full batches: 10 s of exporting
    assert time.perf_counter() - started < 0.5
    exporter.delay = 0  # let the teardown drain quickly


def test_flush_honours_its_timeout_with_a_hung_exporter() -> None:
    exporter = BlockingExporter()
    lt.configure(exporter=exporter, flush_interval=0)
    make_spans(3)
    assert exporter.entered.wait(5)
    started = time.perf_counter()
    assert lt.flush(timeout=0.3) is False
    assert 0.25 < time.perf_counter() - started < 2.0
    exporter.release.set()
    assert lt.flush(timeout=10) is True


def test_shutdown_honours_its_timeout_with_a_hung_exporter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = BlockingExporter()
    lt.configure(exporter=exporter, flush_interval=0)
    make_spans(3)
    assert exporter.entered.wait(5)
    make_spans(2)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        assert lt.shutdown(timeout=0.3) is False
    assert time.perf_counter() - started < 2.0
    assert "shutdown timed out" in caplog.text
    assert "2 spans were not exported" in caplog.text
    exporter.release.set()


def test_queue_cap_drops_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    exporter = BlockingExporter()
    lt.configure(exporter=exporter, max_queue_size=100, export_batch_size=10, flush_interval=0)
    make_spans(10)
    assert exporter.entered.wait(5)  # the worker is stuck on the first batch
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        make_spans(150)
    stats = lt.get_stats()
    assert stats.dropped == 50
    assert stats.queued == 100
    assert caplog.text.count("export queue is full") == 1
    exporter.release.set()
    assert lt.flush(timeout=10) is False  # dropped spans were not stored
    assert lt.get_stats().exported == 110
    assert lt.flush(timeout=10) is True  # nothing lost since the last flush


def test_exporter_that_raises_never_reaches_user_code(caplog: pytest.LogCaptureFixture) -> None:
    lt.configure(exporter=RaisingExporter(), flush_interval=0)

    @lt.traced
    def work(x: int) -> int:
        return x * 2

    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        assert [work(i) for i in range(5)] == [0, 2, 4, 6, 8]
        assert lt.flush(timeout=5) is False  # the spans were lost, and flush says so
        make_spans(3)
        assert lt.flush(timeout=5) is False
    assert lt.get_stats().failed == 8
    assert caplog.text.count("the exporter raised") == 1  # once per kind of failure


def test_exporter_reporting_failure_is_counted() -> None:
    class Failing(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.FAILURE

        def shutdown(self) -> None:
            return None

    lt.configure(exporter=Failing())
    make_spans(4)
    assert lt.flush(timeout=5) is False
    assert lt.get_stats().failed == 4


def test_reconfigure_flushes_and_shuts_down_the_old_exporter() -> None:
    first = SlowExporter(delay=0)
    lt.configure(exporter=first, flush_interval=60)
    make_spans(5)
    second = InMemorySpanExporter()
    lt.configure(exporter=second)
    make_spans(2)
    assert lt.flush(timeout=5)
    assert len(first.received) == 5
    assert first.shut_down
    assert len(second.get_finished_spans()) == 2


def test_shutdown_makes_every_call_a_noop_again() -> None:
    exporter = InMemorySpanExporter()
    lt.configure(exporter=exporter)
    make_spans(1)
    assert lt.shutdown(timeout=5)
    make_spans(3)
    lt.thought("after shutdown")
    assert len(exporter.get_finished_spans()) == 1
    assert lt.get_stats().enabled is False
    assert lt.get_stats().exported == 1


def test_processor_can_be_added_to_any_provider() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    exporter = InMemorySpanExporter()
    processor = LucidtraceSpanProcessor(exporter, masker=Masker(), flush_interval=60)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("x").start_as_current_span(
        "Authorization: Bearer abcdefghijklmnopqrst"
    ):
        pass
    assert provider.force_flush(5_000)
    [span] = exporter.get_finished_spans()
    assert span.name == "Authorization: Bearer [REDACTED:bearer-token]"
    provider.shutdown()


def test_processor_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="max_queue_size"):
        lt.configure(exporter=InMemorySpanExporter(), max_queue_size=-1)
    with pytest.raises(ValueError, match="not both"):
        lt.configure("sqlite://", exporter=InMemorySpanExporter())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12+ warns about fork() in a process with threads; forking one is the point here.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_child_gets_a_fresh_worker(tmp_path: Path) -> None:
    # The child writes what its own exporter received: its worker must be alive after the fork,
    # and it must not re-export what the parent had queued.
    out = tmp_path / "child.txt"
    exporter = SlowExporter(delay=0)
    lt.configure(exporter=exporter, flush_interval=60)
    make_spans(3)  # queued in the parent, not exported yet
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            with lt.span("from-child"):
                pass
            ok = lt.flush(timeout=5)
            out.write_text(f"{ok} {','.join(exporter.received)}")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text() == "True from-child"
    assert lt.flush(timeout=5)
    assert sorted(exporter.received) == ["s0", "s1", "s2"]


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
    )


def test_spans_are_flushed_at_interpreter_exit() -> None:
    code = (
        "import sys, time\n"
        "import lucidtrace as lt\n"
        "from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult\n"
        "class Out(SpanExporter):\n"
        "    def export(self, spans):\n"
        "        time.sleep(0.05)\n"
        "        for s in spans: print('exported', s.name, flush=True)\n"
        "        return SpanExportResult.SUCCESS\n"
        "lt.configure(exporter=Out(), flush_interval=60)\n"
        "for i in range(3):\n"
        "    with lt.span(f'exit-{i}'): pass\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")[:-1]) == [f"exported exit-{i}" for i in range(3)]


def test_exit_is_bounded_by_the_exit_timeout_with_a_hung_exporter() -> None:
    code = (
        "import threading\n"
        "import lucidtrace as lt\n"
        "from opentelemetry.sdk.trace.export import SpanExporter\n"
        "class Hung(SpanExporter):\n"
        "    def export(self, spans): threading.Event().wait()\n"
        "lt.configure(exporter=Hung(), flush_interval=0)\n"
        "with lt.span('x'): pass\n"
    )
    started = time.perf_counter()
    result = _run_python(code, LUCIDTRACE_EXIT_TIMEOUT="0.5")
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 20
    assert "shutdown timed out" in result.stderr


def test_an_existing_sdk_provider_is_reused_so_other_instrumentation_is_captured() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "import lucidtrace as lt\n"
        "users = InMemorySpanExporter(); ours = InMemorySpanExporter()\n"
        "provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(users))\n"
        "trace.set_tracer_provider(provider)\n"
        "lt.configure(exporter=ours)\n"
        "with lt.trace_attributes(session_id='s'):\n"
        "    with trace.get_tracer('third.party').start_as_current_span('openai.chat'):\n"
        "        with lt.span('mine'): pass\n"
        "lt.flush()\n"
        "print(sorted(s.name for s in ours.get_finished_spans()))\n"
        "print(sorted(s.name for s in users.get_finished_spans()))\n"
        "print(sorted((s.name, s.attributes.get('gen_ai.conversation.id'))"
        " for s in ours.get_finished_spans()))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "['mine', 'openai.chat']"
    assert lines[1] == "['mine', 'openai.chat']"  # the user's own exporter still gets them
    assert lines[2] == "[('mine', 's'), ('openai.chat', 's')]"


def test_without_a_provider_lucidtrace_installs_the_global_one() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "import lucidtrace as lt\n"
        "ours = InMemorySpanExporter()\n"
        "lt.configure(exporter=ours)\n"
        "with trace.get_tracer('third.party').start_as_current_span('http.request'): pass\n"
        "lt.configure(exporter=ours)\n"  # reconfiguring keeps the one global provider
        "with trace.get_tracer('third.party').start_as_current_span('again'): pass\n"
        "lt.flush()\n"
        "print(sorted(s.name for s in ours.get_finished_spans()))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert "Overriding" not in result.stderr
    assert result.stdout.strip() == "['http.request']"

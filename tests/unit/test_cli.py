from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Status, StatusCode
from sqlalchemy.orm import Session

from lucidtrace import cli, migrations
from lucidtrace.store import add_finding, create_engine, ingest_spans, record_from_readable_span
from lucidtrace.tracer import semconv as sc

T0 = 1_700_000_000 * 1_000_000_000
MS = 1_000_000
QUICKSTART_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


class FixedTraceId(RandomIdGenerator):
    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id

    def generate_trace_id(self) -> int:
        return self.trace_id


def record_quickstart(
    trace_id: int = QUICKSTART_ID,
    *,
    thought: str = "I need Iceland's population, then its square.",
    answer: str = "About 387,758 people [doc-3].",
    tool_error: bool = False,
    name: str = "run",
) -> Sequence[ReadableSpan]:
    """The spans the README quickstart produces, built with the plain OpenTelemetry SDK."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=FixedTraceId(trace_id))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    root_attrs = {sc.SPAN_KIND: "AGENT", sc.SESSION_ID: "s-1", sc.USER_ID: "u-1", sc.TAGS: ["demo"]}
    root = tracer.start_span(name, attributes=root_attrs, start_time=T0)
    root.add_event(sc.EVENT_THOUGHT, {sc.THOUGHT_TEXT: thought}, timestamp=T0 + 1 * MS)
    ctx = trace.set_span_in_context(root)
    tool = tracer.start_span(
        "execute_tool search",
        context=ctx,
        start_time=T0 + 2 * MS,
        attributes={
            sc.SPAN_KIND: "TOOL",
            sc.TOOL_NAME: "search",
            sc.TOOL_CALL_ARGUMENTS: json.dumps({"query": "Iceland population"}),
        },
    )
    if tool_error:
        tool.set_status(Status(StatusCode.ERROR, "search backend down"))
    else:
        tool.set_attribute(sc.TOOL_CALL_RESULT, json.dumps("387,758 (2024)"))
    tool.end(end_time=T0 + 3 * MS)
    documents = [
        {
            "id": "doc-3",
            "content": "Iceland has 387,758 inhabitants.",
            "score": 0.91,
            "source": "wiki",
        }
    ]
    retriever = tracer.start_span(
        "retrieval",
        context=ctx,
        start_time=T0 + 4 * MS,
        attributes={
            sc.SPAN_KIND: "RETRIEVER",
            sc.RETRIEVAL_QUERY: "Iceland population",
            sc.RETRIEVAL_DOCUMENTS: json.dumps(documents),
        },
    )
    retriever.end(end_time=T0 + 5 * MS)
    root.add_event(
        sc.EVENT_ANSWER,
        {sc.ANSWER_TEXT: answer, sc.ANSWER_CITATIONS: ["doc-3", "doc-9"]},
        timestamp=T0 + 6 * MS,
    )
    root.end(end_time=T0 + 7 * MS)
    provider.shutdown()
    return exporter.get_finished_spans()


def store(url: str, *traces: Sequence[ReadableSpan]) -> None:
    engine = create_engine(url)
    try:
        for spans in traces:
            ingest_spans(engine, [record_from_readable_span(span) for span in spans])
    finally:
        engine.dispose()


def run(url: str | None, *args: str, env: dict[str, str] | None = None) -> Result:
    prefix = ["--database-url", url] if url else []
    return CliRunner(env=env).invoke(cli.main, [*prefix, *args])


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_show_prints_the_audit_trail_in_order(database_url: str) -> None:
    store(database_url, record_quickstart())
    result = run(database_url, "traces", "show", "4bf92f")
    assert result.exit_code == 0, result.output
    out = result.stdout
    positions = [
        out.index(marker)
        for marker in (
            "THOUGHT       I need Iceland's population",
            'ACTION        search  args: {"query": "Iceland population"}',
            "OBSERVATION   search -> 387,758 (2024)",
            "RETRIEVAL     query: Iceland population",
            "[doc-3]  score 0.91  wiki",
            "ANSWER        About 387,758 people [doc-3].",
            "cites: doc-3 (retrieved), doc-9 (NOT retrieved)",
        )
    ]
    assert positions == sorted(positions)
    assert "Iceland has 387,758 inhabitants." in out
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in out
    assert "session s-1" in out
    assert "user u-1" in out
    assert "tags demo" in out
    assert "duration 7 ms" in out


def test_list_shows_a_table_and_json(database_url: str) -> None:
    store(
        database_url, record_quickstart(), record_quickstart(0xABC, name="other", tool_error=True)
    )
    table = run(database_url, "traces", "list")
    assert table.exit_code == 0, table.output
    header = table.stdout.splitlines()[0].split()
    assert header == ["ID", "NAME", "START", "(UTC)", "DURATION", "STEPS", "STATUS", "VERDICT"]
    assert "4bf92f3577b3 " in table.stdout
    assert "2023-11-14 22:13:20" in table.stdout
    listed = json.loads(run(database_url, "traces", "list", "--json").stdout)
    assert {row["trace_id"] for row in listed} == {f"{QUICKSTART_ID:032x}", f"{0xABC:032x}"}
    assert listed[0]["step_count"] == 5
    one = json.loads(run(database_url, "traces", "list", "--json", "--limit", "1").stdout)
    assert len(one) == 1
    assert "1-1 of 2 traces" in run(database_url, "traces", "list", "--limit", "1").stdout
    assert (
        json.loads(run(database_url, "traces", "list", "--json", "--session", "nope").stdout) == []
    )


def test_list_filters_by_verdict(sqlite_url: str) -> None:
    store(sqlite_url, record_quickstart(), record_quickstart(0xABC, name="other"))
    engine = create_engine(sqlite_url)
    with Session(engine) as session, session.begin():
        add_finding(
            session, trace_id=f"{0xABC:032x}", check_name="c", check_version="1", status="flagged"
        )
    engine.dispose()
    result = run(sqlite_url, "traces", "list", "--verdict", "flagged")
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == ["other"]
    shown = run(sqlite_url, "traces", "show", f"{0xABC:032x}").stdout
    assert "Findings (1)" in shown
    assert "FLAGGED" in shown


def test_export_json_carries_the_steps(database_url: str, tmp_path: Path) -> None:
    store(database_url, record_quickstart())
    result = run(database_url, "export", "4bf9", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"trace", "spans", "steps", "documents", "findings"}
    assert [step["type"] for step in document["steps"]] == [
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "RETRIEVAL",
        "ANSWER",
    ]
    assert document["steps"][-1]["citations"] == ["doc-3", "doc-9"]
    assert document["documents"][0]["doc_id"] == "doc-3"
    target = tmp_path / "trace.json"
    written = run(database_url, "export", "4bf9", "-o", str(target))
    assert written.exit_code == 0, written.output
    assert json.loads(target.read_text()) == document
    failed = run(database_url, "export", "4bf9", "-o", str(tmp_path / "missing" / "t.json"))
    assert_one_line_error(failed, "cannot write")


def test_tool_errors_are_marked(sqlite_url: str) -> None:
    store(sqlite_url, record_quickstart(tool_error=True))
    out = run(sqlite_url, "traces", "show", "4bf9").stdout
    assert "OBSERVATION   search -> ERROR: search backend down" in out


def test_hostile_and_long_content_is_neutralised(sqlite_url: str) -> None:
    hostile = "clear\x1b[2J\x1b]0;pwned\x07 back\rover \u202eesrever\u0085 " + "Z" * 5000
    store(sqlite_url, record_quickstart(thought=hostile, name="bad\x1b[31mname\nline2"))
    for args in (("traces", "show", "4bf9"), ("traces", "list"), ("export", "4bf9")):
        out = run(sqlite_url, *args).stdout
        for char in ("\x1b", "\x07", "\r", "\u202e", "\u0085"):
            assert char not in out, (args, repr(char))
    shown = run(sqlite_url, "traces", "show", "4bf9").stdout
    assert "\\x1b[2J" in shown
    assert "more characters: --full shows all" in shown
    assert shown.count("Z") < 2000
    assert run(sqlite_url, "traces", "show", "4bf9", "--full").stdout.count("Z") == 5000
    assert "bad\\x1b[31mname line2" in run(sqlite_url, "traces", "list").stdout
    exported = json.loads(run(sqlite_url, "export", "4bf9").stdout)
    assert exported["steps"][0]["text"] == hostile  # stored and exported whole


def test_unknown_and_ambiguous_ids_are_one_line_errors(sqlite_url: str) -> None:
    store(sqlite_url, record_quickstart(0xABC1 << 112), record_quickstart(0xABC2 << 112))
    assert_one_line_error(run(sqlite_url, "traces", "show", "abc"), "several traces")
    assert_one_line_error(run(sqlite_url, "traces", "show", "fff"), "no trace")
    assert_one_line_error(run(sqlite_url, "export", "not-hex"), "no trace")
    assert run(sqlite_url, "traces", "show", "abc1").exit_code == 0


def _foreign_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    return f"sqlite:///{path}"


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 200)
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("make_url", "args", "fragment"),
    [
        (_foreign_sqlite, ("traces", "list"), "not a lucidtrace store"),
        (_not_a_database, ("traces", "list"), "not a SQLite database"),
        (_not_a_database, ("db", "current"), "not a SQLite database"),
        (lambda p: f"sqlite:///{p / 'absent.db'}", ("traces", "list"), "no lucidtrace store"),
        (lambda p: f"sqlite:///{p / 'absent.db'}", ("db", "current"), "no lucidtrace store"),
        (lambda p: "mysql://u@h/db", ("traces", "list"), "unsupported database"),
        (lambda p: "postgresql://u:pw@h:port/db", ("traces", "list"), "not a database URL"),
        (lambda p: "postgresql://postgres@127.0.0.1:1/x", ("traces", "list"), "cannot connect"),
    ],
)
def test_bad_databases_are_one_line_errors(
    tmp_path: Path, make_url: object, args: tuple[str, ...], fragment: str
) -> None:
    url = make_url(tmp_path)  # type: ignore[operator]
    assert_one_line_error(run(url, *args), fragment)


def test_unwritable_directory_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run(f"sqlite:///{tmp_path / 'file' / 'sub' / 'x.db'}", "db", "upgrade")
    assert_one_line_error(result, "cannot create directory")


def test_db_upgrade_and_current(database_url: str) -> None:
    before = run(database_url, "db", "current")
    if database_url.startswith("sqlite"):
        assert_one_line_error(before, "no lucidtrace store", "db upgrade")
    else:
        assert "no lucidtrace schema" in before.stdout
    first = run(database_url, "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "Upgraded" in first.stdout
    again = run(database_url, "db", "upgrade")
    assert "up to date" in again.stdout
    current = run(database_url, "db", "current")
    assert current.exit_code == 0
    assert f"revision {migrations.head_revision()} (up to date)" in current.stdout


def test_database_url_comes_from_the_environment(sqlite_url: str) -> None:
    store(sqlite_url, record_quickstart())
    result = run(None, "traces", "list", env={"LUCIDTRACE_DATABASE_URL": sqlite_url})
    assert "4bf92f3577b3" in result.stdout


def test_empty_store_says_so(sqlite_url: str) -> None:
    run(sqlite_url, "db", "upgrade")
    result = run(sqlite_url, "traces", "list")
    assert result.exit_code == 0
    assert "No traces in" in result.stdout


def test_version() -> None:
    result = CliRunner().invoke(cli.main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("lucidtrace ")


@click.command()
def boom() -> None:
    raise RuntimeError("kaput\nsecond line")


@click.command()
def needs_server() -> None:
    raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")


def test_unexpected_errors_are_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.LAZY_COMMANDS, "boom", "tests.unit.test_cli:boom")
    monkeypatch.setitem(cli.LAZY_COMMANDS, "serve", "tests.unit.test_cli:needs_server")
    assert "boom" in CliRunner().invoke(cli.main, ["--help"]).stdout
    result = CliRunner().invoke(cli.main, ["boom"])
    assert_one_line_error(result, "RuntimeError: kaput second line", "--debug")
    assert_one_line_error(CliRunner().invoke(cli.main, ["serve"]), "needs fastapi", "pip install")
    debugging = CliRunner().invoke(cli.main, ["--debug", "boom"])
    assert isinstance(debugging.exception, RuntimeError)

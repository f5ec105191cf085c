"""The ``lucidtrace`` command: browse traces, export them, manage the store.

Commands that need heavy optional dependencies are registered in :data:`LAZY_COMMANDS` and
imported only when run, so ``lucidtrace --help`` and the store commands stay fast and work on the
core install. Errors a user can cause end the command with one line on stderr and a non-zero
exit status; ``--debug`` (or ``LUCIDTRACE_DEBUG=1``) shows the traceback of unexpected ones.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace import environment_variables, migrations
from lucidtrace.environment_variables import LUCIDTRACE_DATABASE_URL
from lucidtrace.store.engine import (
    create_engine,
    display_url,
    ensure_schema,
    resolve_database_url,
    sqlite_path,
)
from lucidtrace.store.errors import StoreError, describe_database_error
from lucidtrace.store.models import DEFAULT_PROJECT_ID, VERDICTS
from lucidtrace.store.repository import (
    TraceDetail,
    TraceSummary,
    TrailStep,
    count_traces,
    export_trace,
    get_trace,
    list_traces,
    resolve_trace_id,
)

__all__ = ["DEBUG_ENV", "LAZY_COMMANDS", "CliState", "cli_state", "main"]

DEBUG_ENV = environment_variables.LUCIDTRACE_DEBUG
"""Set to ``1`` to let the CLI show the full traceback of unexpected errors."""

LAZY_COMMANDS: dict[str, str] = {
    "check": "lucidtrace.probes.checks.commands:check_command",
    "demo": "lucidtrace.demo.commands:demo",
    "keys": "lucidtrace.ui.commands:keys",
    "probes": "lucidtrace.probes.checks.model_checks.commands:probes_group",
    "serve": "lucidtrace.ui.commands:serve",
    "worker": "lucidtrace.probes.checks.commands:worker_command",
}
"""Commands imported when run: name -> ``"module:attribute"`` of a click command."""


@dataclass(frozen=True)
class CliState:
    """Global options, shared by every command through the click context."""

    database_url: str | None
    project_id: str
    debug: bool

    def where(self) -> str:
        """The store as shown to the user."""
        try:
            return display_url(resolve_database_url(self.database_url))
        except StoreError:
            return "the database"

    def open_store(self) -> sa.Engine:
        """Open an existing store for reading (an embedded store is migrated if older)."""
        url = resolve_database_url(self.database_url)
        path = sqlite_path(url)
        if path is not None and not path.exists():
            raise StoreError(
                f"no lucidtrace store at {path}: run a traced agent first, or pass "
                f"--database-url (or set {LUCIDTRACE_DATABASE_URL}) to point at your store"
            )
        return create_engine(url)


def cli_state(ctx: click.Context) -> CliState:
    """The global options of the ``lucidtrace`` group (defaults when a command runs on its own)."""
    state = ctx.find_object(CliState)
    if state is None:
        state = CliState(database_url=None, project_id=DEFAULT_PROJECT_ID, debug=False)
    return state


class LucidtraceGroup(click.Group):
    """The root group: lazy commands, and one-line errors instead of tracebacks."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and lazily imported commands, sorted."""
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A command by name, importing a lazy one on first use."""
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            module_name, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            loaded = getattr(importlib.import_module(module_name), attribute)
            if isinstance(loaded, click.Command):
                command = loaded
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning errors into one line on stderr."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort from None
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(1)
        except StoreError as exc:
            raise click.ClickException(one_line(str(exc))) from None
        except sa.exc.DBAPIError as exc:
            state = ctx.find_object(CliState)
            where = state.where() if state else "the database"
            raise click.ClickException(describe_database_error(exc, where)) from None
        except ImportError as exc:
            if _debug(ctx):
                raise
            name = exc.name or "a package"
            raise click.ClickException(
                f"this command needs {name}, which is not installed: "
                "pip install 'lucidtrace[all]' (or the extra named in the docs)"
            ) from None
        except Exception as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(
                f"unexpected error: {one_line(f'{type(exc).__name__}: {exc}')} "
                f"(run with --debug or {DEBUG_ENV}=1 for the traceback)"
            ) from None


def _debug(ctx: click.Context) -> bool:
    state = ctx.find_object(CliState)
    return bool(state and state.debug) or os.environ.get(DEBUG_ENV, "") not in {"", "0"}


def _silence_stdout() -> None:
    # The reader went away (`lucidtrace traces list | head`): drop what is left to print.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _version() -> str:
    try:
        return metadata.version("lucidtrace")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@click.group(
    cls=LucidtraceGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--database-url",
    envvar=LUCIDTRACE_DATABASE_URL,
    metavar="URL",
    help=f"The store: sqlite:///path.db or postgresql://user@host/db "
    f"[env {LUCIDTRACE_DATABASE_URL}; default ./lucidtrace.db].",
)
@click.option(
    "--project",
    default=DEFAULT_PROJECT_ID,
    show_default=True,
    metavar="ID",
    help="Project whose traces to read.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar=DEBUG_ENV,
    help=f"Show the full traceback of unexpected errors [env {DEBUG_ENV}].",
)
@click.version_option(
    _version(), "--version", prog_name="lucidtrace", message="%(prog)s %(version)s"
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, project: str, debug: bool) -> None:
    """lucidtrace: reasoning audit trails of LLM agents."""
    ctx.obj = CliState(database_url=database_url or None, project_id=project, debug=debug)


# ----------------------------------------------------------------------------- traces


@main.group()
def traces() -> None:
    """List traces and show their audit trails."""


@traces.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0), help="Skip this many traces.")
@click.option("--status", type=click.Choice(["unset", "ok", "error"]), help="Only this status.")
@click.option("--verdict", type=click.Choice(VERDICTS), help="Only this verdict.")
@click.option("--session", "session_id", metavar="ID", help="Only this session's traces.")
@click.option("--user", "user_id", metavar="ID", help="Only this user's traces.")
@click.option("--tag", metavar="TAG", help="Only traces with this tag.")
@click.option("--name", metavar="TEXT", help="Only traces whose name contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def traces_list(state: CliState, /, limit: int, offset: int, as_json: bool, **filters: Any) -> None:
    """List traces, newest first."""
    engine = state.open_store()
    try:
        with Session(engine) as session:
            rows = list_traces(
                session, project_id=state.project_id, limit=limit, offset=offset, **filters
            )
            total = count_traces(session, project_id=state.project_id, **filters)
    finally:
        engine.dispose()
    if as_json:
        click.echo(safe_json([row.to_dict() for row in rows]))
        return
    if not rows:
        click.echo(f"No traces in {state.where()}" + (" match these filters." if total else "."))
        return
    click.echo(trace_table(rows))
    if offset + len(rows) < total or offset:
        shown = f"{offset + 1}-{offset + len(rows)}"
        click.echo(f"\n{shown} of {total} traces (use --limit and --offset for more).")


@traces.command("show")
@click.argument("trace_ref", metavar="ID")
@click.option("--full", is_flag=True, help="Print long texts whole instead of abbreviated.")
@click.pass_obj
def traces_show(state: CliState, trace_ref: str, full: bool) -> None:
    """Show the audit trail of trace ID (a full id, a unique prefix, or `latest`)."""
    engine = state.open_store()
    try:
        with Session(engine) as session:
            trace_id = resolve_trace_id(session, project_id=state.project_id, ref=trace_ref)
            detail = get_trace(session, project_id=state.project_id, trace_id=trace_id)
            if detail is None:  # deleted between the two reads
                raise StoreError(f"trace {trace_id} was just deleted")
            text = render_trace(detail, full=full, width=terminal_width())
    finally:
        engine.dispose()
    click.echo(text)


# ----------------------------------------------------------------------------- export


@main.command("export")
@click.argument("trace_ref", metavar="ID")
@click.option(
    "--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True,
    help="Output format.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@click.pass_obj
def export(state: CliState, trace_ref: str, fmt: str, output: Path | None) -> None:
    """Export trace ID with its spans, steps, documents and findings."""
    engine = state.open_store()
    try:
        with Session(engine) as session:
            trace_id = resolve_trace_id(session, project_id=state.project_id, ref=trace_ref)
            document = export_trace(session, project_id=state.project_id, trace_id=trace_id)
    finally:
        engine.dispose()
    if document is None:
        raise StoreError(f"trace {trace_id} was just deleted")
    text = safe_json(document)
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(
            f"cannot write {output}: {exc.strerror or exc}: choose another file with -o"
        ) from None
    click.echo(f"Wrote trace {trace_id} to {output}", err=True)


# ----------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """Create, migrate and inspect the store's schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(state: CliState) -> None:
    """Create the store, or migrate it to this version's schema (back up a shared one first)."""
    engine = create_engine(state.database_url, upgrade=False)
    try:
        before = _current(engine)
        ensure_schema(engine, upgrade_existing=True)
        after = _current(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{state.where()} is up to date (revision {after}).")
    else:
        click.echo(f"Upgraded {state.where()} from {before or 'an empty database'} to {after}.")


@db.command("current")
@click.pass_obj
def db_current(state: CliState) -> None:
    """Show the schema revision of the store and whether it needs an upgrade."""
    url = resolve_database_url(state.database_url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(f"no lucidtrace store at {path}: `lucidtrace db upgrade` creates one")
    engine = create_engine(url, upgrade=False)
    try:
        revision = _current(engine)
    finally:
        engine.dispose()
    head = migrations.head_revision()
    if revision is None:
        note = "no lucidtrace schema: run `lucidtrace db upgrade`"
    elif revision == head:
        note = "up to date"
    elif revision in migrations.known_revisions():
        note = f"older than this lucidtrace ({head}): run `lucidtrace db upgrade`"
    else:
        note = f"newer than this lucidtrace ({head}): upgrade lucidtrace"
    click.echo(f"{state.where()}: revision {revision or '-'} ({note})")


def _current(engine: sa.Engine) -> str | None:
    try:
        return migrations.current_revision(engine)
    except sa.exc.DBAPIError as exc:
        raise StoreError(describe_database_error(exc, display_url(engine.url))) from exc


# ----------------------------------------------------------------------------- rendering
# Trace content is untrusted: control characters (ANSI escapes, carriage returns, bidi
# overrides) are shown as visible escapes so a hostile trace cannot rewrite the terminal.

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_TEXT_LIMIT = 1500
_LINE_LIMIT = 30
_SNIPPET_LIMIT = 160
_STEP_INDENT = 20


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """``text`` with every character that could drive the terminal made visible and inert."""
    return _UNSAFE.sub(_escape, text.replace("\r\n", "\n").replace("\t", "    "))


def one_line(text: str, limit: int = 300) -> str:
    """``text`` cleaned, on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(clean(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def abbreviate(text: str, *, full: bool, limit: int = _TEXT_LIMIT) -> str:
    """``text`` cleaned and, unless ``full``, cut to ``limit`` characters and a few lines."""
    cleaned = clean(text)
    if full:
        return cleaned
    kept = "\n".join(cleaned.split("\n")[:_LINE_LIMIT])[:limit]
    if len(kept) == len(cleaned):
        return cleaned
    return f"{kept}\u2026\n[{len(cleaned) - len(kept)} more characters: --full shows all]"


def safe_json(value: Any) -> str:
    """Indented JSON whose strings cannot drive a terminal (controls and bidi escaped)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False, default=str)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_width() -> int:
    """Columns to wrap to: the terminal's width, within sensible bounds."""
    return max(60, min(160, shutil.get_terminal_size((100, 24)).columns))


def format_time(ns: int | None) -> str:
    """A Unix-nanosecond time as UTC ``YYYY-mm-dd HH:MM:SS``."""
    if ns is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def format_duration(ns: int | None) -> str:
    """A duration in nanoseconds, in the unit that reads best."""
    if ns is None or ns < 0:
        return "-"
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.0f} ms"
    seconds = ns / 1e9
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def trace_table(rows: Iterable[TraceSummary]) -> str:
    """The trace list as an aligned text table (ids shortened to 12 characters)."""
    headers = ("ID", "NAME", "START (UTC)", "DURATION", "STEPS", "STATUS", "VERDICT")
    data = [
        (
            clean(row.trace_id[:12]),
            one_line(row.name or "-", 40),
            format_time(row.start_ns),
            format_duration(row.duration_ns),
            str(row.step_count),
            one_line(row.status, 16),
            one_line(row.verdict, 16),
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (headers, *data)) for i in range(len(headers))]
    right = {3, 4}
    lines = []
    for cells in (headers, *data):
        padded = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _wrap(text: str, width: int, first: str, indent: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, max(20, width - indent)) or [""])
    pad = " " * indent
    return [(first.ljust(indent) if i == 0 else pad) + line for i, line in enumerate(lines)]


def render_trace(detail: TraceDetail, *, full: bool, width: int) -> str:
    """The audit trail of a trace as terminal text: header, numbered steps, findings."""
    trace = detail.trace
    duration = (
        trace.end_ns - trace.start_ns if trace.end_ns and trace.start_ns is not None else None
    )
    out = [
        f"Trace {one_line(trace.name or '(unnamed)', 200)}",
        f"  id        {one_line(trace.trace_id, 64)}",
        f"  status    {one_line(trace.status, 16)}    verdict {one_line(trace.verdict, 16)}"
        f"    duration {format_duration(duration)}    started {format_time(trace.start_ns)} UTC",
    ]
    who = [
        f"{label} {one_line(value, 80)}"
        for label, value in (("session", trace.session_id), ("user", trace.user_id))
        if value
    ]
    if trace.tags:
        who.append("tags " + one_line(", ".join(str(tag) for tag in trace.tags), 120))
    if who:
        out.append("  " + "    ".join(who))
    usage = f"  spans {trace.span_count}    steps {len(detail.steps)}"
    if trace.models:
        usage += "    models " + one_line(", ".join(str(m) for m in trace.models), 80)
    if trace.input_tokens or trace.output_tokens:
        usage += f"    tokens {trace.input_tokens} in / {trace.output_tokens} out"
    out.append(usage)
    if trace.input:
        out.extend(_wrap(abbreviate(trace.input, full=full, limit=300), width, "  input", 12))
    out.append("")
    out.append(f"Audit trail ({len(detail.steps)} steps)" if detail.steps else "No steps recorded.")
    tools = {e.step.span_id: e.step.tool_name for e in detail.steps if e.step.type == "ACTION"}
    retrieved = {doc.doc_id for doc in detail.documents if doc.doc_id}
    for entry in detail.steps:
        out.extend(_render_step(entry, detail, tools, retrieved, full=full, width=width))
    if detail.findings:
        out.append("")
        out.append(f"Findings ({len(detail.findings)})")
        for finding in detail.findings:
            head = f"  {finding.status.upper():<13} {one_line(finding.check_name, 60)} "
            head += one_line(finding.check_version, 20)
            if finding.score is not None:
                head += f"    score {finding.score:.3g}"
                if finding.threshold is not None:
                    head += f" (threshold {finding.threshold:.3g})"
            if finding.proxy:
                head += f"    on proxy model {one_line(finding.model_id or '?', 60)}"
            out.append(head)
            if finding.message:
                out.extend(_wrap(abbreviate(finding.message, full=full), width, "", 16))
    return "\n".join(out)


def _render_step(
    entry: TrailStep,
    detail: TraceDetail,
    tools: dict[str, str | None],
    retrieved: set[str],
    *,
    full: bool,
    width: int,
) -> list[str]:
    step = entry.step
    label = f"{entry.index:>4}  {step.type}"
    text = abbreviate(step.text or "", full=full)
    if step.type == "ACTION":
        body = one_line(step.tool_name or "(unnamed tool)", 200)
        if step.tool_args:
            body += "  args: " + abbreviate(step.tool_args, full=full)
    elif step.type == "OBSERVATION":
        tool = one_line(step.tool_name or tools.get(step.span_id) or "tool", 200)
        body = f"{tool} -> ERROR: {text}" if step.is_error else f"{tool} -> {text}"
    elif step.type == "RETRIEVAL":
        body = f"query: {text}" if step.text else "(no query recorded)"
    else:
        body = text or "(empty)"
    lines = _wrap(body, width, label, _STEP_INDENT)
    deeper = _STEP_INDENT + 2
    if step.type == "RETRIEVAL":
        docs = [doc for doc in detail.documents if doc.span_id == step.span_id]
        count = f"{len(docs)} document" + ("" if len(docs) == 1 else "s")
        lines.extend(_wrap(count, width, "", deeper))
        for doc in docs:
            head = f"[{one_line(doc.doc_id, 80)}]" if doc.doc_id else f"[#{doc.rank}]"
            if doc.score is not None:
                head += f"  score {doc.score:.3g}"
            if doc.source:
                head += f"  {one_line(doc.source, 120)}"
            lines.extend(_wrap(head, width, "", deeper))
            if doc.content:
                snippet = (
                    abbreviate(doc.content, full=True)
                    if full
                    else one_line(doc.content, _SNIPPET_LIMIT)
                )
                lines.extend(_wrap(snippet, width, "", deeper + 4))
    if step.type == "ANSWER" and step.citations:
        cited = [
            f"{one_line(str(c), 80)} ({'retrieved' if str(c) in retrieved else 'NOT retrieved'})"
            for c in step.citations
        ]
        lines.extend(_wrap("cites: " + ", ".join(cited), width, "", deeper))
    return lines


if __name__ == "__main__":
    main()

"""``lucidtrace demo`` (registered lazily in :mod:`lucidtrace.cli`)."""

from __future__ import annotations

import click

from lucidtrace.cli import cli_state

__all__ = ["demo"]


@click.command()
@click.option(
    "--no-serve",
    is_flag=True,
    help="Print the table and exit instead of serving the web UI (for scripts and CI).",
)
@click.option(
    "--model",
    "model",
    default="default",
    show_default=True,
    metavar="default|PATH|openai:MODEL",
    help="The agent's model: the local default (SmolLM2-135M-Instruct), a local model "
    "directory or .gguf file, or an OpenAI model (needs OPENAI_API_KEY; the model checks then "
    "run on the local default model as a proxy).",
)
@click.option(
    "--questions",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Ask only the first N questions.",
)
@click.option(
    "--database-url",
    "database_url",
    default=None,
    metavar="URL",
    help="The store (default: the global --database-url, else LUCIDTRACE_DATABASE_URL, else "
    "./lucidtrace.db).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface of the web UI.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=6006, show_default=True, help="Its port."
)
@click.pass_context
def demo(  # noqa: PLR0917 - click passes every option as an argument
    ctx: click.Context,
    /,
    no_serve: bool,
    model: str,
    questions: int | None,
    database_url: str | None,
    host: str,
    port: int,
) -> None:
    """Run the offline demo agent, check its traces, print the verdicts and serve the UI.

    A ReAct agent on a small local model answers a few questions with a calculator and a search
    tool over a small document corpus; every run is traced into the store, the faithfulness
    battery runs on each trace, and the table of verdicts is printed. The web UI is then served
    (unless --no-serve).
    """
    from lucidtrace.demo.run import DemoError, demo_table, run_demo  # noqa: PLC0415
    from lucidtrace.store.engine import display_url, resolve_database_url  # noqa: PLC0415

    url = resolve_database_url(database_url or cli_state(ctx).database_url)
    try:
        rows = run_demo(database_url=url, model=model, questions=questions, echo=click.echo)
    except DemoError as error:
        raise click.ClickException(str(error)) from None
    click.echo("")
    from lucidtrace.cli import terminal_width  # noqa: PLC0415

    click.echo(demo_table(rows, width=terminal_width()))
    flagged = sum(row.verdict == "flagged" for row in rows)
    click.echo("")
    click.echo(
        f"{len(rows)} trace{'' if len(rows) == 1 else 's'} in {display_url(url)}: "
        f"{flagged} flagged, "
        f"{sum(row.verdict == 'clear' for row in rows)} clear. "
        "`lucidtrace traces show ID` prints one audit trail."
    )
    if no_serve:
        return
    _serve(url, host, port, [row.trace_id for row in rows if row.verdict == "flagged"])


def _serve(url: str, host: str, port: int, flagged: list[str | None]) -> None:
    import uvicorn  # noqa: PLC0415 - only serving needs it

    from lucidtrace.ui import ServerSettings, create_app  # noqa: PLC0415 - imports FastAPI

    app = create_app(ServerSettings(database_url=url, host=host, port=port))
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    click.echo(f"\nThe web UI: {base}/  (Ctrl+C stops it)")
    first = next((trace_id for trace_id in flagged if trace_id), None)
    if first:
        click.echo(f"A flagged trace: {base}/traces/{first}")
    uvicorn.run(app, host=host, port=port, log_level="warning")

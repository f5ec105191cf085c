"""``lucidtrace serve`` and ``lucidtrace keys`` (registered lazily in :mod:`lucidtrace.cli`).

Every ``serve`` option also comes from a ``LUCIDTRACE_*`` variable; a flag given on the command
line wins over the variable, which wins over the default.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.cli import cli_state
from lucidtrace.store.engine import create_engine, display_url, ensure_schema
from lucidtrace.ui.keys import SCOPES, ApiKeyError, create_key, list_keys, revoke_key
from lucidtrace.ui.settings import ServerSettings, SettingsError

__all__ = ["keys", "serve"]


@click.command()
@click.option(
    "--host", default=None, help="Interface to listen on [env LUCIDTRACE_HOST; 127.0.0.1]."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="TCP port [env LUCIDTRACE_PORT; 6006].",
)
@click.option(
    "--database-url",
    "database_url",
    default=None,
    metavar="URL",
    help="The store (default: the global --database-url, else LUCIDTRACE_DATABASE_URL).",
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require API keys and sign-in [env LUCIDTRACE_AUTH; off].",
)
@click.option(
    "--max-body-bytes", type=click.IntRange(1), default=None, help="Largest request body."
)
@click.option(
    "--max-decompressed-bytes",
    type=click.IntRange(1),
    default=None,
    help="Largest body after gzip.",
)
@click.option(
    "--max-spans-per-request", type=click.IntRange(1), default=None, help="Most spans a request."
)
@click.option(
    "--max-attributes-per-span",
    type=click.IntRange(1),
    default=None,
    help="Most attributes on a span.",
)
@click.option(
    "--max-attribute-depth", type=click.IntRange(1), default=None, help="Deepest attribute value."
)
@click.option(
    "--max-concurrent-ingest",
    type=click.IntRange(1),
    default=None,
    help="Ingest requests stored at once; more get 503.",
)
@click.option(
    "--ingest-checks/--no-ingest-checks",
    default=None,
    help="Run the trace-only checks on ingested traces [env LUCIDTRACE_INGEST_CHECKS; off].",
)
@click.option("--log-level", default="info", show_default=True, help="uvicorn's log level.")
@click.pass_context
def serve(ctx: click.Context, /, database_url: str | None, log_level: str, **flags: Any) -> None:
    """Run the server: OTLP and batch ingest, the query API and the web UI."""
    import uvicorn  # noqa: PLC0415 - only this command needs it

    from lucidtrace.ui.app import create_app  # noqa: PLC0415 - imports FastAPI

    try:
        settings = ServerSettings.from_env(
            database_url=database_url or cli_state(ctx).database_url, **flags
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(settings)
    where = display_url(app.state.engine.url)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    click.echo(f"lucidtrace server on http://{host}:{settings.port}/  (store: {where})")
    click.echo(
        f"  OTLP: http://{host}:{settings.port}/v1/traces   auth: "
        + ("on (API keys: lucidtrace keys create --project NAME)" if settings.auth else "off")
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level)


@click.group()
def keys() -> None:
    """Create, list and revoke the server's API keys."""


def _open(ctx: click.Context) -> sa.Engine:
    engine = create_engine(cli_state(ctx).database_url, upgrade=False)
    try:
        ensure_schema(engine, upgrade_existing=engine.dialect.name == "sqlite")
    except BaseException:
        engine.dispose()
        raise
    return engine


@keys.command("create")
@click.option("--project", "project_name", required=True, metavar="NAME", help="Its project.")
@click.option("--name", metavar="LABEL", help="A label for the key (who or what uses it).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    help="What it may do (repeatable; default: ingest and read).",
)
@click.pass_context
def keys_create(
    ctx: click.Context, project_name: str, name: str | None, scopes: tuple[str, ...]
) -> None:
    """Create an API key; the project is created when it does not exist."""
    engine = _open(ctx)
    try:
        with Session(engine) as session, session.begin():
            key, row = create_key(session, project_name, name=name, scopes=scopes or SCOPES)
            prefix, project = row.prefix, row.project_id
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(key)
    click.echo(
        f"API key {prefix} of project {project!r}. Store it now: it is not shown again "
        "(only its hash is kept).",
        err=True,
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List API keys (never their secrets)."""
    engine = _open(ctx)
    try:
        with Session(engine) as session:
            found = list_keys(session)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([vars(info) | {"scopes": list(info.scopes)} for info in found]))
        return
    if not found:
        click.echo("No API keys: create one with lucidtrace keys create --project NAME")
        return
    click.echo(f"{'prefix':<14}{'project':<22}{'name':<20}{'scopes':<14}{'created':<18}state")
    for info in found:
        state = "revoked" if info.revoked_ns is not None else "active"
        click.echo(
            f"{info.prefix:<14}{info.project_id[:21]:<22}{(info.name or '')[:19]:<20}"
            f"{','.join(info.scopes):<14}{_when(info.created_ns):<18}{state}"
        )


@keys.command("revoke")
@click.argument("prefix")
@click.pass_context
def keys_revoke(ctx: click.Context, prefix: str) -> None:
    """Revoke the key with PREFIX (its requests and sign-ins stop working)."""
    engine = _open(ctx)
    try:
        with Session(engine) as session, session.begin():
            info = revoke_key(session, prefix)
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"revoked API key {info.prefix} of project {info.project_id!r}")


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")

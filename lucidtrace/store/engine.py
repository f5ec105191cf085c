"""Opening a lucidtrace store: URL handling, SQLite settings, schema checks.

The embedded store is a SQLite file in WAL mode with ``synchronous=NORMAL``, a busy timeout and
foreign keys on, on every connection. It is created, or migrated to this version's schema, the
first time it is opened. PostgreSQL is reached through psycopg 3; an empty PostgreSQL database is
given the schema on first open, but an older schema there is only migrated by
``lucidtrace db upgrade`` (a shared server is upgraded on purpose, after a backup).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from lucidtrace.environment_variables import LUCIDTRACE_DATABASE_URL
from lucidtrace.store.errors import StoreError, describe_database_error

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "SQLITE_BEGIN_OPTION",
    "SQLITE_BUSY_TIMEOUT_MS",
    "create_engine",
    "display_url",
    "ensure_schema",
    "normalize_url",
    "resolve_database_url",
    "sqlite_path",
]

DATABASE_URL_ENV = LUCIDTRACE_DATABASE_URL
"""Environment variable naming the store when no URL is passed."""

DEFAULT_DATABASE_URL = "sqlite:///./lucidtrace.db"
"""The embedded store: ``lucidtrace.db`` in the working directory."""

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite connection waits for another writer before giving up."""

SQLITE_BEGIN_OPTION = "lucidtrace_sqlite_begin"
"""Connection execution option: ``"IMMEDIATE"`` makes the next SQLite transaction take the write
lock when it begins, so a writer waits for other writers up front instead of failing midway."""

SQLITE_FILE_SUFFIXES = (".db", ".db3", ".sqlite", ".sqlite3")
"""Endings of a bare file path that :func:`normalize_url` takes for a SQLite file."""

POSTGRES_CONNECT_TIMEOUT_S = 10
"""Seconds a PostgreSQL connection attempt may take (unless the URL sets ``connect_timeout``):
a store that cannot be reached fails ``configure()`` quickly instead of hanging."""

_POSTGRES_SCHEMES = ("postgres", "postgresql")
_PASSWORD_IN_URL = re.compile(r"(://[^/@:]*:)[^@/]*@")


def normalize_url(url: str) -> str:
    """Turn what a user typed into the SQLAlchemy URL lucidtrace uses.

    ``postgresql://`` and ``postgres://`` select psycopg 3 (``postgresql+psycopg://``); SQLite URLs
    are kept as they are; a bare file path ending in ``.db``, ``.db3``, ``.sqlite`` or ``.sqlite3``
    means a SQLite file. Anything else without ``://`` is refused (a typo must not become a file).

    Raises:
        StoreError: the text is empty, or neither a URL nor a SQLite file path.
    """
    text = url.strip()
    if not text:
        raise StoreError(
            "the database URL is empty: pass sqlite:///path/to/lucidtrace.db or "
            "postgresql://user@host/dbname"
        )
    if "://" not in text:
        if not text.lower().endswith(SQLITE_FILE_SUFFIXES):
            raise StoreError(
                f"not a database URL: {text!r:.200}: use sqlite:///path/to/lucidtrace.db, a file "
                "path ending in .db, or postgresql://user@host/dbname"
            )
        return f"sqlite:///{text}"
    scheme, rest = text.split("://", 1)
    if scheme.lower() in _POSTGRES_SCHEMES:
        return f"postgresql+psycopg://{rest}"
    return text


def resolve_database_url(url: str | None = None) -> str:
    """The store URL to use: ``url``, else ``LUCIDTRACE_DATABASE_URL``, else ``./lucidtrace.db``."""
    chosen = url if url else os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    return normalize_url(chosen)


def display_url(url: str | sa.URL) -> str:
    """A URL as shown to users: a SQLite file as its path, passwords hidden."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except (sa.exc.ArgumentError, ValueError):
        return _PASSWORD_IN_URL.sub(r"\1***@", str(url))
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The file of a SQLite URL, or None for in-memory SQLite, URI filenames and other databases."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except (sa.exc.ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or _is_memory(parsed):
        return None
    if str(parsed.query.get("uri", "")).lower() in {"true", "1"}:
        return None
    return Path(parsed.database or "").expanduser()


def create_engine(url: str | None = None, *, upgrade: bool = True) -> sa.Engine:
    """Open a store.

    Args:
        url: Database URL; see :func:`resolve_database_url` for the default.
        upgrade: Make the store usable before returning: create the schema in an empty database
            and migrate an older SQLite store. With False nothing is checked or touched (used by
            ``lucidtrace db`` and by code that runs migrations itself).

    Raises:
        StoreError: The URL is bad, the directory is not writable, the database is not a
            lucidtrace store, or its schema is older or newer than this version of lucidtrace.
    """
    resolved = resolve_database_url(url)
    try:
        parsed = sa.make_url(resolved)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(
            f"not a database URL: {display_url(resolved)}: use sqlite:///path/to/file.db "
            "or postgresql://user@host/dbname"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed)
    elif backend == "postgresql":
        engine = _postgres_engine(parsed)
    else:
        raise StoreError(
            f"unsupported database {backend!r} in {display_url(parsed)}: lucidtrace stores "
            "traces in SQLite (sqlite:///path) or PostgreSQL (postgresql://...)"
        )
    if upgrade:
        try:
            ensure_schema(engine, upgrade_existing=backend == "sqlite")
        except StoreError:
            engine.dispose()
            raise
    return engine


def ensure_schema(engine: sa.Engine, *, upgrade_existing: bool) -> None:
    """Make sure a database holds this version's schema, creating it in an empty database.

    Args:
        engine: An engine from :func:`create_engine`.
        upgrade_existing: Migrate an older lucidtrace schema too (otherwise that is an error).

    Raises:
        StoreError: The database is not a lucidtrace store, cannot be read, or holds a schema
            newer than this version (or older, when ``upgrade_existing`` is false).
    """
    try:
        _ensure_schema(engine, upgrade_existing=upgrade_existing)
    except sa.exc.DBAPIError as exc:
        raise StoreError(describe_database_error(exc, display_url(engine.url))) from exc


def _is_memory(parsed: sa.URL) -> bool:
    return parsed.database in (None, "", ":memory:") or "mode=memory" in (parsed.database or "")


def _sqlite_engine(parsed: sa.URL) -> sa.Engine:
    path = sqlite_path(parsed)
    options: dict[str, Any] = {}
    if path is None:
        if _is_memory(parsed):
            # One shared connection: every session and thread sees the same in-memory database.
            options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        _prepare_sqlite_file(path)
        parsed = parsed.set(database=str(path))
    engine = sa.create_engine(parsed, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN: pysqlite's own transaction handling
        # skips DDL and SELECTs, which makes migrations and multi-query reads non-atomic.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # journal_mode=WAL is stored in the file: it is set once the file is known to be a
            # lucidtrace store (by the migrations), never on a file that might be someone else's.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
        if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
            mode = "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _prepare_sqlite_file(path: Path) -> None:
    if path.is_dir():
        raise StoreError(
            f"{path} is a directory: point --database-url at a file, e.g. sqlite:///{path}/lucidtrace.db"
        )
    if path.exists():
        return
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create directory {parent} for the store ({exc.strerror or exc}): choose a "
            f"writable location with --database-url or {DATABASE_URL_ENV}"
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(
            f"directory {parent} is not writable: choose a writable location for the store with "
            f"--database-url or {DATABASE_URL_ENV}"
        )


def _postgres_engine(parsed: sa.URL) -> sa.Engine:
    try:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"PostgreSQL support needs the {exc.name or 'psycopg'} driver: "
            "pip install 'lucidtrace[postgres]'"
        ) from exc
    except sa.exc.NoSuchModuleError as exc:
        raise StoreError(
            f"unknown PostgreSQL driver in {display_url(parsed)}: use postgresql://user@host/dbname"
        ) from exc


def _ensure_schema(engine: sa.Engine, *, upgrade_existing: bool) -> None:
    from lucidtrace import migrations  # noqa: PLC0415 - migrations import this module
    from lucidtrace.store.models import Base  # noqa: PLC0415 - keeps URL helpers light

    where = display_url(engine.url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    revision = migrations.current_revision(engine) if migrations.VERSION_TABLE in tables else None
    if revision is None:
        # Never touch a database that holds someone else's tables: a SQLite file must be ours
        # alone; a PostgreSQL database may be shared, but not with tables of our names.
        foreign = tables if sqlite else tables & set(Base.metadata.tables)
        foreign.discard(migrations.VERSION_TABLE)
        if foreign:
            raise StoreError(
                f"{where} is not a lucidtrace store (it holds tables such as "
                f"{sorted(foreign)[0]!r}): point --database-url at a new file or database"
            )
        migrations.upgrade(engine)
        return
    head = migrations.head_revision()
    if revision == head:
        if sqlite:
            with engine.connect() as conn:
                # Outside any transaction: SQLite cannot switch journal mode inside one.
                driver_connection = conn.connection.driver_connection
                assert driver_connection is not None
                driver_connection.execute("PRAGMA journal_mode=WAL")
        return
    if revision not in migrations.known_revisions():
        raise StoreError(
            f"{where} has schema revision {revision!r}, newer than this lucidtrace expects "
            f"({head!r}): upgrade lucidtrace (pip install -U lucidtrace)"
        )
    if upgrade_existing:
        migrations.upgrade(engine)
        return
    raise StoreError(
        f"{where} has schema revision {revision!r}, older than this lucidtrace expects "
        f"({head!r}): back it up, then run `lucidtrace db upgrade`"
    )

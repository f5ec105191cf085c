"""Alembic migrations of the lucidtrace store, shipped inside the package.

The Alembic configuration is built in code from this directory, so migrations run the same from a
source checkout and from an installed wheel, with no ``alembic.ini``.

Every run is one transaction that other migrators wait for: on PostgreSQL behind an advisory
lock, on SQLite behind ``BEGIN IMMEDIATE``. On SQLite, foreign keys are switched off while tables
are rebuilt (batch mode copies a table and drops the old one, which would otherwise cascade into
its children) and checked with ``PRAGMA foreign_key_check`` before the transaction commits.

To write a new revision, change :mod:`lucidtrace.store.models`, then autogenerate against a
database at head and review the result::

    from alembic import command
    from lucidtrace.migrations import alembic_config
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message="what changed", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from lucidtrace.store.engine import SQLITE_BEGIN_OPTION
from lucidtrace.store.errors import StoreError

__all__ = [
    "LOCK_KEY",
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "known_revisions",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent
"""The Alembic script directory (``env.py`` and ``versions/``)."""

VERSION_TABLE = "lucidtrace_alembic_version"
"""The table recording the schema revision; its own name so it never meets another app's."""

LOCK_KEY = 0x6C7563_69647472
"""PostgreSQL advisory-lock key held while migrating (``"lucidtr"`` in hex)."""


def alembic_config(script_location: Path | str | None = None) -> Config:
    """An Alembic configuration for the migrations in this package.

    Args:
        script_location: Another script directory (tests use a copy with extra revisions).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    cfg.set_main_option("version_table", VERSION_TABLE)
    return cfg


@functools.lru_cache(maxsize=8)
def _script(script_location: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(script_location))


def head_revision() -> str:
    """The revision that this version of lucidtrace expects (the head of the history)."""
    head = _script(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise StoreError("lucidtrace ships no migrations: reinstall the package")
    return head


def known_revisions() -> frozenset[str]:
    """Every revision of the shipped history."""
    return frozenset(rev.revision for rev in _script(str(MIGRATIONS_DIR)).walk_revisions())


def current_revision(engine: sa.Engine) -> str | None:
    """The revision a database is at, or None when it holds no lucidtrace schema."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(
    engine: sa.Engine, revision: str = "head", *, script_location: Path | str | None = None
) -> None:
    """Migrate a database up to ``revision`` (default: the head), creating it when empty."""
    _run(engine, lambda cfg: command.upgrade(cfg, revision), script_location)


def downgrade(
    engine: sa.Engine, revision: str, *, script_location: Path | str | None = None
) -> None:
    """Migrate a database down to ``revision`` (``"base"`` drops every lucidtrace table)."""
    _run(engine, lambda cfg: command.downgrade(cfg, revision), script_location)


def _run(
    engine: sa.Engine, action: Callable[[Config], None], script_location: Path | str | None
) -> None:
    cfg = alembic_config(script_location)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # PRAGMA foreign_keys is ignored inside a transaction: set it on the raw connection
            # before anything begins one.
            _raw_sqlite(conn, "PRAGMA journal_mode=WAL")
            _raw_sqlite(conn, "PRAGMA foreign_keys=OFF")
            conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                cfg.attributes["connection"] = conn
                action(cfg)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StoreError(
                            f"migration left {len(broken)} rows with dangling references "
                            f"(first in table {broken[0][0]}); nothing was changed"
                        )
        finally:
            if sqlite:
                _raw_sqlite(conn, "PRAGMA foreign_keys=ON")
                conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})


def _raw_sqlite(conn: sa.Connection, statement: str) -> None:
    driver_connection = conn.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute(statement)

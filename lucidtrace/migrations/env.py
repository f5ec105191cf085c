"""Alembic environment of the lucidtrace store.

Runs only on a connection handed over by :mod:`lucidtrace.migrations` (which owns the transaction,
the migration lock and SQLite's foreign-key handling); there is no offline mode.
"""

from __future__ import annotations

from alembic import context

from lucidtrace.store.models import Base
from lucidtrace.store.search import include_schema_name

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run lucidtrace migrations through lucidtrace.migrations.upgrade() "
        "or `lucidtrace db upgrade`, not the alembic command"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=config.get_main_option("version_table") or "lucidtrace_alembic_version",
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=True,
    compare_type=True,
    # The full-text search tables and expression indexes are not models: autogenerate must not
    # take them for strays.
    include_name=include_schema_name,
    # The caller's transaction makes DDL atomic on SQLite too.
    transactional_ddl=True,
)

with context.begin_transaction():
    context.run_migrations()

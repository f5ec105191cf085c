"""Full-text search over steps and trace input/output; indexes for the trace list and overview.

Also ``api_keys.sessions_not_before_ns``: signing out ends every session of the key issued
before that time.

SQLite: two external-content FTS5 tables (``steps_fts`` over ``steps.text``, ``traces_fts`` over
``traces.input`` and ``traces.output``), kept in step by triggers on insert, delete and update,
and filled from the rows already stored. PostgreSQL: GIN expression indexes on the same text as
``tsvector`` (``simple`` configuration). On both, punctuation separates words (``foo.bar`` is the
two words ``foo`` and ``bar``), so a query finds the same rows on either database.

The FTS tables and expression indexes are not SQLAlchemy models: they are listed in
:mod:`lucidtrace.store.search` so the models == migrations comparison can leave them out.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENIZE = "unicode61 remove_diacritics 0"

_SQLITE_UP = [
    f"CREATE VIRTUAL TABLE steps_fts USING fts5("
    f"text, content='steps', content_rowid='rowid', tokenize='{_TOKENIZE}')",
    "CREATE TRIGGER steps_fts_ai AFTER INSERT ON steps BEGIN "
    "INSERT INTO steps_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER steps_fts_ad AFTER DELETE ON steps BEGIN "
    "INSERT INTO steps_fts(steps_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END",
    "CREATE TRIGGER steps_fts_au AFTER UPDATE OF text ON steps "
    "WHEN old.text IS NOT new.text BEGIN "
    "INSERT INTO steps_fts(steps_fts, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO steps_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "INSERT INTO steps_fts(steps_fts) VALUES ('rebuild')",
    f"CREATE VIRTUAL TABLE traces_fts USING fts5("
    f"input, output, content='traces', content_rowid='rowid', tokenize='{_TOKENIZE}')",
    "CREATE TRIGGER traces_fts_ai AFTER INSERT ON traces BEGIN "
    "INSERT INTO traces_fts(rowid, input, output) VALUES (new.rowid, new.input, new.output); END",
    "CREATE TRIGGER traces_fts_ad AFTER DELETE ON traces BEGIN "
    "INSERT INTO traces_fts(traces_fts, rowid, input, output) "
    "VALUES ('delete', old.rowid, old.input, old.output); END",
    "CREATE TRIGGER traces_fts_au AFTER UPDATE OF input, output ON traces "
    "WHEN old.input IS NOT new.input OR old.output IS NOT new.output BEGIN "
    "INSERT INTO traces_fts(traces_fts, rowid, input, output) "
    "VALUES ('delete', old.rowid, old.input, old.output); "
    "INSERT INTO traces_fts(rowid, input, output) VALUES (new.rowid, new.input, new.output); END",
    "INSERT INTO traces_fts(traces_fts) VALUES ('rebuild')",
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS traces_fts_au",
    "DROP TRIGGER IF EXISTS traces_fts_ad",
    "DROP TRIGGER IF EXISTS traces_fts_ai",
    "DROP TABLE IF EXISTS traces_fts",
    "DROP TRIGGER IF EXISTS steps_fts_au",
    "DROP TRIGGER IF EXISTS steps_fts_ad",
    "DROP TRIGGER IF EXISTS steps_fts_ai",
    "DROP TABLE IF EXISTS steps_fts",
]

# Punctuation becomes a space before the parser sees the text, as FTS5's unicode61 does; only
# the first 100000 characters are indexed (a tsvector holds at most 1 MiB).
_PG_STEPS = (
    "to_tsvector('simple'::regconfig, "
    "regexp_replace(left(COALESCE(text, ''), 100000), '[^[:alnum:]]+', ' ', 'g'))"
)
_PG_TRACES = (
    "to_tsvector('simple'::regconfig, "
    "regexp_replace(left(COALESCE(input, '') || ' ' || COALESCE(output, ''), 100000), "
    "'[^[:alnum:]]+', ' ', 'g'))"
)

_PG_UP = [
    f"CREATE INDEX ix_steps_search ON steps USING gin ({_PG_STEPS})",
    f"CREATE INDEX ix_traces_search ON traces USING gin ({_PG_TRACES})",
]

_PG_DOWN = [
    "DROP INDEX IF EXISTS ix_traces_search",
    "DROP INDEX IF EXISTS ix_steps_search",
]


def upgrade() -> None:
    # The trace list sorts by (start, trace id), filtered or not by verdict: indexes that hold
    # the whole sort key serve a page, however deep, without sorting.
    op.drop_index(op.f("ix_traces_project_id_start_ns"), table_name="traces")
    op.drop_index(op.f("ix_traces_project_id_verdict"), table_name="traces")
    op.create_index(
        op.f("ix_traces_project_id_start_ns_trace_id"),
        "traces",
        ["project_id", "start_ns", "trace_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_traces_project_id_verdict_start_ns_trace_id"),
        "traces",
        ["project_id", "verdict", "start_ns", "trace_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_findings_project_id_check_name_created_ns"),
        "findings",
        ["project_id", "check_name", "created_ns"],
        unique=False,
    )
    op.add_column("api_keys", sa.Column("sessions_not_before_ns", sa.BigInteger(), nullable=True))
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_UP if dialect == "sqlite" else _PG_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_DOWN if dialect == "sqlite" else _PG_DOWN:
        op.execute(statement)
    op.drop_index(op.f("ix_findings_project_id_check_name_created_ns"), table_name="findings")
    op.drop_index(op.f("ix_traces_project_id_verdict_start_ns_trace_id"), table_name="traces")
    op.drop_index(op.f("ix_traces_project_id_start_ns_trace_id"), table_name="traces")
    op.create_index(
        op.f("ix_traces_project_id_verdict"), "traces", ["project_id", "verdict"], unique=False
    )
    op.create_index(
        op.f("ix_traces_project_id_start_ns"), "traces", ["project_id", "start_ns"], unique=False
    )
    op.drop_column("api_keys", "sessions_not_before_ns")

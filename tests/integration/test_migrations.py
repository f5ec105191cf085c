"""Migrations: up/down/up on populated databases, and models == migrations (SQLite, PostgreSQL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from lucidtrace import migrations
from lucidtrace.store import StoreError, create_engine
from lucidtrace.store.models import (
    ApiKey,
    Attribution,
    Base,
    CheckJob,
    Document,
    Finding,
    Project,
    Span,
    Step,
    Trace,
)
from lucidtrace.store.search import include_schema_name

pytestmark = pytest.mark.integration

TRACE = "ab" * 16
SPAN = "cd" * 8

# A later revision that rebuilds tables the way SQLite batch mode does (copy, drop, rename):
# with foreign keys on during the rebuild, dropping `traces` would cascade into its children.
REBUILD_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def _recreate():
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade():
    for table in ("traces", "projects", "findings"):
        with op.batch_alter_table(table, recreate=_recreate()) as batch:
            batch.add_column(sa.Column("extra", sa.Integer(), nullable=True))


def downgrade():
    for table in ("traces", "projects", "findings"):
        with op.batch_alter_table(table, recreate=_recreate()) as batch:
            batch.drop_column("extra")
"""

FAILING_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "9002"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("traces", sa.Column("half_done", sa.Integer(), nullable=True))
    raise RuntimeError("migration failed halfway")


def downgrade():
    pass
"""


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url, upgrade=False)
    yield engine
    engine.dispose()


def _populate(engine: sa.Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(Project(id="default", name="default", created_ns=1))
        session.flush()
        # Only the columns of the first revision: later ones add columns to api_keys.
        session.execute(
            sa.insert(ApiKey).values(
                project_id="default", key_hash="h" * 64, prefix="lt_", created_ns=1
            )
        )
        session.add(Trace(project_id="default", trace_id=TRACE, name="t", updated_ns=1))
        session.flush()
        session.add(
            Span(
                project_id="default",
                span_id=SPAN,
                trace_id=TRACE,
                name="s",
                start_ns=1,
                end_ns=2,
                ingested_ns=3,
                attributes={"a": 1},
            )
        )
        session.add(
            Step(project_id="default", span_id=SPAN, seq=0, trace_id=TRACE, ts_ns=1, type="THOUGHT")
        )
        session.add(
            Document(project_id="default", span_id=SPAN, rank=0, trace_id=TRACE, doc_id="d")
        )
        finding = Finding(
            project_id="default",
            trace_id=TRACE,
            check_name="c",
            check_version="1",
            status="flagged",
            created_ns=1,
        )
        session.add(finding)
        session.flush()
        session.add(
            Attribution(
                project_id="default",
                trace_id=TRACE,
                finding_id=finding.id,
                method="m",
                created_ns=1,
            )
        )
        session.add(CheckJob(project_id="default", trace_id=TRACE, created_ns=1, updated_ns=1))


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for name, table in Base.metadata.tables.items()
        }


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_upgrade_downgrade_upgrade_on_a_populated_database(engine: sa.Engine) -> None:
    migrations.upgrade(engine)
    _populate(engine)
    assert all(count == 1 for count in _counts(engine).values()), _counts(engine)
    migrations.downgrade(engine, "base")
    assert _tables(engine) & set(Base.metadata.tables) == set()
    assert migrations.current_revision(engine) is None
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) == migrations.head_revision()
    assert set(_counts(engine).values()) == {0}
    _populate(engine)


def _round_trip_every_step(engine: sa.Engine, script_location: Path) -> int:
    """Downgrade one step and upgrade it again at every revision; row counts must survive."""
    script = ScriptDirectory.from_config(migrations.alembic_config(script_location))
    checked = 0
    for revision in reversed(list(script.walk_revisions())):  # oldest first
        migrations.upgrade(engine, revision.revision, script_location=script_location)
        if revision.down_revision is None:
            _populate(engine)  # dropping the first revision drops the tables: nothing to keep
            continue
        before = _counts(engine)
        migrations.downgrade(engine, "-1", script_location=script_location)
        migrations.upgrade(engine, "+1", script_location=script_location)
        assert _counts(engine) == before, revision.revision
        checked += 1
    return checked


def test_every_shipped_revision_keeps_data_across_down_and_up(engine: sa.Engine) -> None:
    _round_trip_every_step(engine, migrations.MIGRATIONS_DIR)
    assert migrations.current_revision(engine) == migrations.head_revision()


def _history_with(tmp_path: Path, revision_source: str, name: str) -> Path:
    location = tmp_path / "migrations"
    shutil.copytree(
        migrations.MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__")
    )
    source = revision_source.format(head=migrations.head_revision())
    (location / "versions" / name).write_text(source)
    return location


def test_table_rebuilds_keep_every_row(engine: sa.Engine, tmp_path: Path) -> None:
    location = _history_with(tmp_path, REBUILD_REVISION, "9001_rebuild.py")
    assert _round_trip_every_step(engine, location) >= 1
    assert all(count == 1 for count in _counts(engine).values()), _counts(engine)


def test_a_failing_migration_changes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    migrations.upgrade(engine)
    _populate(engine)
    location = _history_with(tmp_path, FAILING_REVISION, "9002_fails.py")
    with pytest.raises(RuntimeError, match="halfway"):
        migrations.upgrade(engine, script_location=location)
    assert migrations.current_revision(engine) == migrations.head_revision()
    with engine.connect() as conn:
        columns = {column["name"] for column in sa.inspect(conn).get_columns("traces")}
    assert "half_done" not in columns
    assert all(count == 1 for count in _counts(engine).values())


def test_models_match_migrations(engine: sa.Engine) -> None:
    migrations.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": migrations.VERSION_TABLE,
                "compare_type": True,
                # Full-text search tables and expression indexes are not models (0002).
                "include_name": include_schema_name,
            },
        )
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_restore_foreign_keys_on_sqlite(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        migrations.downgrade(engine, "base")
        migrations.upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_migrating_a_database_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sa.create_engine(f"sqlite:///{path}")
    with other.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    other.dispose()
    with pytest.raises(StoreError, match="not a lucidtrace store"):
        create_engine(f"sqlite:///{path}")

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace import migrations
from lucidtrace.store import StoreError, create_engine, normalize_url, resolve_database_url
from lucidtrace.store.engine import DATABASE_URL_ENV, display_url, sqlite_path
from lucidtrace.store.models import Base, Project


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///./lucidtrace.db", "sqlite:///./lucidtrace.db"),
        ("sqlite:////abs/path.db", "sqlite:////abs/path.db"),
        ("sqlite://", "sqlite://"),
        ("  data/traces.db ", "sqlite:///data/traces.db"),
        ("/abs/traces.db", "sqlite:////abs/traces.db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_normalize_url_rejects_empty() -> None:
    with pytest.raises(StoreError, match="empty"):
        normalize_url("   ")


def test_resolve_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert resolve_database_url() == "sqlite:///./lucidtrace.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgres://env@h/db")
    assert resolve_database_url() == "postgresql+psycopg://env@h/db"
    assert resolve_database_url("sqlite:///arg.db") == "sqlite:///arg.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "")
    assert resolve_database_url() == "sqlite:///./lucidtrace.db"


def test_display_url_hides_passwords() -> None:
    assert "s3cret" not in display_url("postgresql+psycopg://u:s3cret@h/db")
    assert "s3cret" not in display_url("postgresql://u:s3cret@h:notaport/db")
    assert display_url("sqlite:////tmp/x.db") == "/tmp/x.db"


def test_new_sqlite_store_is_created_with_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "traces.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert migrations.current_revision(engine) == migrations.head_revision()
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_sqlite_pragmas_hold_on_every_connection(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                pragma = conn.exec_driver_sql
                assert pragma("PRAGMA journal_mode").scalar() == "wal"
                assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
                assert pragma("PRAGMA busy_timeout").scalar() == 10_000
                assert pragma("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_reads_in_one_transaction_see_one_snapshot(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    count = sa.select(sa.func.count()).select_from(Project)
    try:
        with engine.connect() as reader:
            assert reader.execute(count).scalar() == 0
            with engine.begin() as writer:
                writer.execute(sa.insert(Project).values(id="p1", name="one", created_ns=1))
            assert reader.execute(count).scalar() == 0  # same transaction, same snapshot
            reader.commit()
            assert reader.execute(count).scalar() == 1
    finally:
        engine.dispose()


def test_upgrade_false_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    engine = create_engine(f"sqlite:///{path}", upgrade=False)
    engine.dispose()
    assert not path.exists()


def test_in_memory_store_is_shared_across_threads() -> None:
    engine = create_engine("sqlite://")
    try:
        with Session(engine) as session, session.begin():
            session.add(Project(id="p1", name="one", created_ns=1))
        seen: list[int] = []

        def read() -> None:
            with Session(engine) as session:
                seen.append(len(session.scalars(sa.select(Project)).all()))

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert seen == [1]
    finally:
        engine.dispose()


def test_concurrent_first_opens_create_one_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            create_engine(url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(tmp_path / "shared.db") as conn:
        rows = conn.execute(f"SELECT * FROM {migrations.VERSION_TABLE}").fetchall()
    assert rows == [(migrations.head_revision(),)]


def test_foreign_sqlite_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, 'x')")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a lucidtrace store"):
        create_engine(f"sqlite:///{path}")
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"customers"}


def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some notes\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a SQLite database"):
        create_engine(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"cannot create directory .*--database-url"):
        create_engine(f"sqlite:///{blocker / 'sub' / 'x.db'}")


def test_directory_as_database_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        create_engine(f"sqlite:///{tmp_path}")


def test_newer_schema_is_refused(sqlite_url: str) -> None:
    create_engine(sqlite_url).dispose()
    path = sqlite_path(sqlite_url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"newer than this lucidtrace.*upgrade lucidtrace"):
        create_engine(sqlite_url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql://u:pw@h:notaport/db", "not a database URL"),
        ("postgresql://postgres@127.0.0.1:1/x", "cannot connect to"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        create_engine(url)
    assert "pw@" not in str(info.value)
    assert "\n" not in str(info.value)


def test_schema_is_created_on_first_open(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert migrations.current_revision(engine) == migrations.head_revision()
        # A second open finds the schema at head and leaves it alone.
        create_engine(database_url).dispose()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_database_with_a_foreign_traces_table_is_refused(postgres_url: str) -> None:
    engine = sa.create_engine(normalize_url(postgres_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE traces (id int)")
        conn.exec_driver_sql("CREATE TABLE unrelated (id int)")
    engine.dispose()
    with pytest.raises(StoreError, match="not a lucidtrace store"):
        create_engine(postgres_url)


@pytest.mark.postgres
def test_postgres_database_shared_with_other_tables_gets_the_schema(postgres_url: str) -> None:
    engine = sa.create_engine(normalize_url(postgres_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE unrelated (id int)")
    engine.dispose()
    store = create_engine(postgres_url)
    try:
        assert migrations.current_revision(store) == migrations.head_revision()
    finally:
        store.dispose()

"""SQLAlchemy models of the lucidtrace store.

Every row belongs to a project, and every key starts with ``project_id``: a query that forgets the
project cannot use an index, and ids sent by one project can never collide with another's.

Times are Unix nanoseconds (``*_ns``), as OpenTelemetry records them: exact, sortable and the
same on SQLite and PostgreSQL. JSON columns are ``JSON`` on SQLite and ``JSONB`` on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_PROJECT_ID = "default"
"""The project of the embedded store and of anything ingested without an API key."""

STEP_TYPES = ("THOUGHT", "ACTION", "OBSERVATION", "RETRIEVAL", "ANSWER")
"""The kinds of step in an audit trail."""

VERDICTS = ("unchecked", "clear", "flagged")
"""A trace's verdict: no check ran, checks ran and none flagged, at least one flagged."""

FINDING_STATUSES = ("flagged", "passed", "inconclusive", "error")
"""The outcome of one check on one trace (or step)."""

JOB_STATUSES = ("queued", "running", "done", "failed")
"""The life of a queued model-based check."""


def _enum_check(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}  # noqa: RUF012


class Project(Base):
    """A tenant: traces, keys and findings belong to exactly one project."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_ns: Mapped[int] = mapped_column(sa.BigInteger)


class ApiKey(Base):
    """An API key of a project. Only its hash is stored; the key is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(sa.String(128), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_ns: Mapped[int] = mapped_column(sa.BigInteger)
    revoked_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_used_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    sessions_not_before_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Sign-in sessions of this key issued before this time are ended (set on sign-out)."""


class Trace(Base):
    """One agent run: the aggregate of its spans, plus the verdict of the checks."""

    __tablename__ = "traces"
    __table_args__ = (
        sa.CheckConstraint(_enum_check("verdict", VERDICTS), name="verdict"),
        sa.Index(None, "project_id", "start_ns", "trace_id"),
        sa.Index(None, "project_id", "session_id"),
        sa.Index(None, "project_id", "verdict", "start_ns", "trace_id"),
    )

    project_id: Mapped[str] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    trace_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(500))
    root_span_id: Mapped[str | None] = mapped_column(sa.String(16))
    session_id: Mapped[str | None] = mapped_column(sa.String(500))
    user_id: Mapped[str | None] = mapped_column(sa.String(500))
    status: Mapped[str] = mapped_column(sa.String(16), default="unset")
    start_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    end_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    input: Mapped[str | None] = mapped_column(sa.Text)
    output: Mapped[str | None] = mapped_column(sa.Text)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    models: Mapped[list[Any]] = mapped_column(default=list)
    input_tokens: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    span_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    step_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    verdict: Mapped[str] = mapped_column(sa.String(16), default="unchecked")
    updated_ns: Mapped[int] = mapped_column(sa.BigInteger)


class Span(Base):
    """One OpenTelemetry span, with the fields lucidtrace reads pulled out of its attributes."""

    __tablename__ = "spans"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "project_id", "trace_id", "start_ns"),
    )

    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    span_id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    # No foreign key: a child may arrive before its parent and is linked when the parent lands.
    parent_span_id: Mapped[str | None] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16), default="UNKNOWN")
    name: Mapped[str] = mapped_column(sa.String(500))
    start_ns: Mapped[int] = mapped_column(sa.BigInteger)
    end_ns: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default="unset")
    status_message: Mapped[str | None] = mapped_column(sa.Text)
    input: Mapped[str | None] = mapped_column(sa.Text)
    output: Mapped[str | None] = mapped_column(sa.Text)
    model: Mapped[str | None] = mapped_column(sa.String(200))
    provider: Mapped[str | None] = mapped_column(sa.String(100))
    input_tokens: Mapped[int | None] = mapped_column(sa.BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(sa.BigInteger)
    reasoning_tokens: Mapped[int | None] = mapped_column(sa.BigInteger)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    events: Mapped[list[Any]] = mapped_column(default=list)
    resource: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scope: Mapped[str | None] = mapped_column(sa.String(200))
    ingested_ns: Mapped[int] = mapped_column(sa.BigInteger)


class Step(Base):
    """One entry of the audit trail, derived from a span at ingest.

    Steps are ordered by ``(ts_ns, span_id, seq)``; a step's index in its trace is computed when
    the trail is read, so that spans arriving in any order still give one consistent trail.
    """

    __tablename__ = "steps"
    __table_args__ = (
        sa.CheckConstraint(_enum_check("type", STEP_TYPES), name="type"),
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "project_id", "trace_id", "ts_ns"),
    )

    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    span_id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    ts_ns: Mapped[int] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str | None] = mapped_column(sa.Text)
    tool_name: Mapped[str | None] = mapped_column(sa.String(200))
    tool_args: Mapped[str | None] = mapped_column(sa.Text)
    tool_call_id: Mapped[str | None] = mapped_column(sa.String(200))
    is_error: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    citations: Mapped[list[Any]] = mapped_column(default=list)


class Document(Base):
    """A source retrieved during a trace, in the order the retriever ranked it."""

    __tablename__ = "documents"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "project_id", "trace_id", "doc_id"),
    )

    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    span_id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    rank: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    doc_id: Mapped[str | None] = mapped_column(sa.String(500))
    score: Mapped[float | None] = mapped_column(sa.Float)
    content: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str | None] = mapped_column(sa.Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)


class Finding(Base):
    """One check's result on a trace, or on one step of it."""

    __tablename__ = "findings"
    __table_args__ = (
        sa.CheckConstraint(_enum_check("status", FINDING_STATUSES), name="status"),
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "project_id", "trace_id"),
        sa.Index(None, "project_id", "check_name", "status"),
        sa.Index(None, "project_id", "check_name", "created_ns"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    step_span_id: Mapped[str | None] = mapped_column(sa.String(16))
    step_seq: Mapped[int | None] = mapped_column(sa.Integer)
    check_name: Mapped[str] = mapped_column(sa.String(100))
    check_version: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    score: Mapped[float | None] = mapped_column(sa.Float)
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    message: Mapped[str | None] = mapped_column(sa.Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_id: Mapped[str | None] = mapped_column(sa.String(200))
    weights_hash: Mapped[str | None] = mapped_column(sa.String(64))
    proxy: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_ns: Mapped[int] = mapped_column(sa.BigInteger)


class Attribution(Base):
    """A saved token-attribution map (the evidence behind a model-based finding)."""

    __tablename__ = "attributions"
    __table_args__ = (sa.Index(None, "project_id", "trace_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    finding_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("findings.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(sa.String(100))
    model_id: Mapped[str | None] = mapped_column(sa.String(200))
    weights_hash: Mapped[str | None] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.Text)
    tokens: Mapped[list[Any]] = mapped_column(default=list)
    scores: Mapped[list[Any]] = mapped_column(default=list)
    segments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_ns: Mapped[int] = mapped_column(sa.BigInteger)


class CheckJob(Base):
    """A queued run of model-based checks on one trace, taken by a worker."""

    __tablename__ = "check_jobs"
    __table_args__ = (
        sa.CheckConstraint(_enum_check("status", JOB_STATUSES), name="status"),
        sa.Index(None, "status", "created_ns"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    checks: Mapped[list[Any]] = mapped_column(default=list)
    model: Mapped[str | None] = mapped_column(sa.String(500))
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(sa.Integer, default=3)
    locked_by: Mapped[str | None] = mapped_column(sa.String(200))
    locked_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_ns: Mapped[int] = mapped_column(sa.BigInteger)
    updated_ns: Mapped[int] = mapped_column(sa.BigInteger)

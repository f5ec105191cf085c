"""Initial schema: projects, api_keys, traces, spans, steps, documents, findings, attributions, check_jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSON on SQLite, JSONB on PostgreSQL (as lucidtrace.store.models.JSONType).
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "check_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("checks", JSON, nullable=False),
        sa.Column("model", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_ns", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_check_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_jobs")),
    )
    op.create_index(
        op.f("ix_check_jobs_status_created_ns"),
        "check_jobs",
        ["status", "created_ns"],
        unique=False,
    )

    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
        sa.Column("last_used_ns", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_api_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_project_id"), "api_keys", ["project_id"], unique=False)

    op.create_table(
        "traces",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("root_span_id", sa.String(length=16), nullable=True),
        sa.Column("session_id", sa.String(length=500), nullable=True),
        sa.Column("user_id", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=True),
        sa.Column("end_ns", sa.BigInteger(), nullable=True),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("models", JSON, nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.Column("step_count", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('unchecked', 'clear', 'flagged')", name=op.f("ck_traces_verdict")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_traces_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "trace_id", name=op.f("pk_traces")),
    )
    op.create_index(
        op.f("ix_traces_project_id_session_id"),
        "traces",
        ["project_id", "session_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_traces_project_id_start_ns"), "traces", ["project_id", "start_ns"], unique=False
    )
    op.create_index(
        op.f("ix_traces_project_id_verdict"), "traces", ["project_id", "verdict"], unique=False
    )

    op.create_table(
        "documents",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("doc_id", sa.String(length=500), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            name=op.f("fk_documents_project_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "span_id", "rank", name=op.f("pk_documents")),
    )
    op.create_index(
        op.f("ix_documents_project_id_trace_id_doc_id"),
        "documents",
        ["project_id", "trace_id", "doc_id"],
        unique=False,
    )

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("step_span_id", sa.String(length=16), nullable=True),
        sa.Column("step_seq", sa.Integer(), nullable=True),
        sa.Column("check_name", sa.String(length=100), nullable=False),
        sa.Column("check_version", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=True),
        sa.Column("weights_hash", sa.String(length=64), nullable=True),
        sa.Column("proxy", sa.Boolean(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('flagged', 'passed', 'inconclusive', 'error')",
            name=op.f("ck_findings_status"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            name=op.f("fk_findings_project_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    op.create_index(
        op.f("ix_findings_project_id_check_name_status"),
        "findings",
        ["project_id", "check_name", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_findings_project_id_trace_id"),
        "findings",
        ["project_id", "trace_id"],
        unique=False,
    )

    op.create_table(
        "spans",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=True),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("resource", JSON, nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=True),
        sa.Column("ingested_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            name=op.f("fk_spans_project_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "span_id", name=op.f("pk_spans")),
    )
    op.create_index(
        op.f("ix_spans_project_id_trace_id_start_ns"),
        "spans",
        ["project_id", "trace_id", "start_ns"],
        unique=False,
    )

    op.create_table(
        "steps",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("tool_name", sa.String(length=200), nullable=True),
        sa.Column("tool_args", sa.Text(), nullable=True),
        sa.Column("tool_call_id", sa.String(length=200), nullable=True),
        sa.Column("is_error", sa.Boolean(), nullable=False),
        sa.Column("citations", JSON, nullable=False),
        sa.CheckConstraint(
            "type IN ('THOUGHT', 'ACTION', 'OBSERVATION', 'RETRIEVAL', 'ANSWER')",
            name=op.f("ck_steps_type"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "trace_id"],
            ["traces.project_id", "traces.trace_id"],
            name=op.f("fk_steps_project_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "span_id", "seq", name=op.f("pk_steps")),
    )
    op.create_index(
        op.f("ix_steps_project_id_trace_id_ts_ns"),
        "steps",
        ["project_id", "trace_id", "ts_ns"],
        unique=False,
    )

    op.create_table(
        "attributions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=True),
        sa.Column("weights_hash", sa.String(length=64), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("tokens", JSON, nullable=False),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("segments", JSON, nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["findings.id"],
            name=op.f("fk_attributions_finding_id_findings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attributions")),
    )
    op.create_index(
        op.f("ix_attributions_finding_id"), "attributions", ["finding_id"], unique=False
    )
    op.create_index(
        op.f("ix_attributions_project_id_trace_id"),
        "attributions",
        ["project_id", "trace_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_attributions_project_id_trace_id"), table_name="attributions")
    op.drop_index(op.f("ix_attributions_finding_id"), table_name="attributions")

    op.drop_table("attributions")
    op.drop_index(op.f("ix_steps_project_id_trace_id_ts_ns"), table_name="steps")

    op.drop_table("steps")
    op.drop_index(op.f("ix_spans_project_id_trace_id_start_ns"), table_name="spans")

    op.drop_table("spans")
    op.drop_index(op.f("ix_findings_project_id_trace_id"), table_name="findings")
    op.drop_index(op.f("ix_findings_project_id_check_name_status"), table_name="findings")

    op.drop_table("findings")
    op.drop_index(op.f("ix_documents_project_id_trace_id_doc_id"), table_name="documents")

    op.drop_table("documents")
    op.drop_index(op.f("ix_traces_project_id_verdict"), table_name="traces")
    op.drop_index(op.f("ix_traces_project_id_start_ns"), table_name="traces")
    op.drop_index(op.f("ix_traces_project_id_session_id"), table_name="traces")

    op.drop_table("traces")
    op.drop_index(op.f("ix_api_keys_project_id"), table_name="api_keys")

    op.drop_table("api_keys")
    op.drop_table("projects")
    op.drop_index(op.f("ix_check_jobs_status_created_ns"), table_name="check_jobs")

    op.drop_table("check_jobs")

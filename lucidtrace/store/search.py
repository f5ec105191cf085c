"""Full-text search over the audit trail (step texts) and trace input/output.

The query a user types is words and ``"quoted phrases"``; every word and phrase must match
(AND). Nothing a user types is passed to the database as query syntax: the query is cut into
words (letters and digits; everything else separates words, as the index does), and those words
are quoted by lucidtrace. So ``"``, ``AND (`` or ``NEAR(`` can never be a syntax error: a query
with no letters or digits matches nothing.

On SQLite the search runs on the FTS5 tables ``steps_fts`` and ``traces_fts`` (migration 0002);
on PostgreSQL on GIN expression indexes over ``to_tsvector('simple', ...)``. Both split words on
punctuation and fold case, so a query finds the same rows on either database. (On PostgreSQL only
the first :data:`PG_INDEXED_CHARS` characters of one text are indexed: ``tsvector`` has a size
limit.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store.models import DEFAULT_PROJECT_ID, Step, Trace

__all__ = [
    "FEW_MATCHES",
    "PG_INDEXED_CHARS",
    "SEARCH_INDEXES",
    "SEARCH_TABLE_PREFIXES",
    "SNIPPET_CHARS",
    "StepMatch",
    "include_schema_name",
    "matching_trace_ids",
    "parse_query",
    "search_steps",
    "snippet",
    "trace_search_filter",
]

SNIPPET_CHARS = 160
"""About how many characters of text a search snippet shows around the first match."""

FEW_MATCHES = 2_000
"""Up to this many matching steps, a trace search collects the matching traces first; beyond,
it walks the trace list in order and checks each trace (see :func:`trace_search_filter`)."""

PG_INDEXED_CHARS = 100_000
"""On PostgreSQL, the characters of one text that the search index covers (tsvector limit)."""

SEARCH_TABLE_PREFIXES = ("steps_fts", "traces_fts")
"""SQLite FTS5 tables (and their shadow tables) of migration 0002; not SQLAlchemy models."""

SEARCH_INDEXES = ("ix_steps_search", "ix_traces_search")
"""PostgreSQL expression indexes of migration 0002; not declared on the models."""

_WORD = re.compile(r"[^\W_]+")
_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')

# Exactly the expressions of the indexes of migration 0002 (PostgreSQL matches them by shape).
_PG_STEPS = (
    "to_tsvector('simple'::regconfig, "
    f"regexp_replace(left(COALESCE(steps.text, ''), {PG_INDEXED_CHARS}), "
    "'[^[:alnum:]]+', ' ', 'g'))"
)
_PG_TRACES = (
    "to_tsvector('simple'::regconfig, "
    f"regexp_replace(left(COALESCE(traces.input, '') || ' ' || COALESCE(traces.output, ''), "
    f"{PG_INDEXED_CHARS}), '[^[:alnum:]]+', ' ', 'g'))"
)


def include_schema_name(name: str | None, type_: str, parent_names: Any = None) -> bool:
    """Alembic ``include_name`` hook: False for the search objects, which are not models.

    Use it when comparing the models with a migrated database (or autogenerating a revision),
    so the FTS5 tables and the expression indexes are not taken for strays.
    """
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(SEARCH_TABLE_PREFIXES)
    if type_ == "index":
        return name not in SEARCH_INDEXES
    return True


def parse_query(query: str) -> list[list[str]]:
    """The terms of a search query: each a list of lowercase words (a phrase has several).

    ``foo "bar baz"`` gives ``[["foo"], ["bar", "baz"]]``; punctuation separates words, so
    ``foo.bar`` is the phrase ``foo bar``. Terms without letters or digits are dropped.
    """
    terms: list[list[str]] = []
    for phrase, word in _TERM.findall(query):
        words = [w.lower() for w in _WORD.findall(phrase or word)]
        if words and words not in terms:
            terms.append(words)
    return terms


def _fts5_match(terms: Sequence[Sequence[str]]) -> str:
    # Every word is letters and digits only, so a quoted phrase needs no escaping.
    return " ".join('"' + " ".join(words) + '"' for words in terms)


def _pg_tsquery(terms: Sequence[Sequence[str]]) -> sa.ColumnElement[Any]:
    parts = [
        sa.func.phraseto_tsquery(sa.literal_column("'simple'::regconfig"), " ".join(words))
        for words in terms
    ]
    query: sa.ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        query = query.op("&&")(part)
    return query


def _fts5_rowids(table: str, terms: Sequence[Sequence[str]]) -> sa.Select[Any]:
    return (
        sa.select(sa.literal_column("rowid"))
        .select_from(sa.table(table))
        .where(sa.literal_column(table).op("MATCH")(_fts5_match(terms)))
    )


def _step_matches(dialect: str, terms: Sequence[Sequence[str]]) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.literal_column(_PG_STEPS).op("@@")(_pg_tsquery(terms))
    return sa.literal_column("steps.rowid").in_(_fts5_rowids("steps_fts", terms))


def _trace_matches(dialect: str, terms: Sequence[Sequence[str]]) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.literal_column(_PG_TRACES).op("@@")(_pg_tsquery(terms))
    return sa.literal_column("traces.rowid").in_(_fts5_rowids("traces_fts", terms))


def matching_trace_ids(
    session: Session, *, project_id: str, query: str
) -> sa.Select[tuple[str]] | None:
    """A subquery of the ids of traces whose steps, input or output match ``query``.

    Returns None when the query holds no letters or digits (it can match nothing).
    """
    terms = parse_query(query)
    if not terms:
        return None
    dialect = session.get_bind().dialect.name
    steps = sa.select(Step.trace_id).where(
        Step.project_id == project_id, _step_matches(dialect, terms)
    )
    traces = sa.select(Trace.trace_id).where(
        Trace.project_id == project_id, _trace_matches(dialect, terms)
    )
    return sa.union(steps, traces)  # type: ignore[return-value]


def trace_search_filter(
    session: Session, *, project_id: str, query: str
) -> sa.ColumnElement[bool] | None:
    """A WHERE clause on ``traces``: a step, the input or the output matches ``query``.

    The plan depends on how many steps match, counted up to :data:`FEW_MATCHES` through the
    index: a few, and the matching traces are collected first (then sorted); many, and the trace
    list is walked in its own order, each trace checked, so a page stops once it is full instead
    of gathering every match of a common word. Returns None when the query holds no letters or
    digits (it can match nothing).
    """
    terms = parse_query(query)
    if not terms:
        return None
    dialect = session.get_bind().dialect.name
    step_match = _step_matches(dialect, terms)
    in_project = Step.project_id == project_id
    if dialect == "postgresql":
        probe = sa.select(sa.literal(1)).where(in_project, step_match).limit(FEW_MATCHES + 1)
    else:
        # Straight from the FTS index (all projects): only a choice of plan depends on it.
        probe = _fts5_rowids("steps_fts", terms).limit(FEW_MATCHES + 1)
    found = session.scalar(sa.select(sa.func.count()).select_from(probe.subquery())) or 0
    if found <= FEW_MATCHES:
        matching = matching_trace_ids(session, project_id=project_id, query=query)
        assert matching is not None
        return Trace.trace_id.in_(matching)
    own_steps = (
        sa.select(sa.literal(1))
        .where(Step.project_id == Trace.project_id, Step.trace_id == Trace.trace_id, step_match)
        .exists()
    )
    # On SQLite each list of matching rowids is read once from the FTS index (measured faster
    # than one FTS lookup per row walked); on PostgreSQL the match is computed on the rows
    # walked, only the traces read before the page is full.
    return sa.or_(own_steps, _trace_matches(dialect, terms))


@dataclass(frozen=True)
class StepMatch:
    """A step that matched a search, with a plain-text snippet around the first match.

    Attributes:
        trace_id: The step's trace.
        span_id: The span the step was derived from.
        seq: The step's position within its span.
        type: ``THOUGHT``, ``ACTION``, ``OBSERVATION``, ``RETRIEVAL`` or ``ANSWER``.
        ts_ns: When the step happened (Unix nanoseconds).
        snippet: Plain text (never HTML) around the first matching word; ``…`` marks cuts.
        highlights: ``[start, end)`` character ranges of matching words within ``snippet``.
        trace_name: The name of the step's trace.
    """

    trace_id: str
    span_id: str
    seq: int
    type: str
    ts_ns: int
    snippet: str
    highlights: list[tuple[int, int]]
    trace_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The match as JSON-serialisable values."""
        values = asdict(self)
        values["highlights"] = [list(pair) for pair in self.highlights]
        return values


def snippet(
    text: str, terms: Sequence[Sequence[str]], width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """Plain text around the first word of ``terms`` found in ``text``, and the matched ranges.

    Args:
        text: The full text.
        terms: Parsed query terms (see :func:`parse_query`).
        width: About how many characters to keep.
    """
    wanted = {word for words in terms for word in words}
    spans = [
        (match.start(), match.end())
        for match in _WORD.finditer(text)
        if match.group().lower() in wanted
    ]
    first = spans[0][0] if spans else 0
    start = max(0, first - width // 3)
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shown = prefix + text[start:end] + suffix
    shift = len(prefix) - start
    highlights = [(s + shift, e + shift) for s, e in spans if s >= start and e <= end]
    return shown, highlights


def search_steps(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    query: str,
    limit: int = 50,
    offset: int = 0,
) -> list[StepMatch]:
    """Steps whose text matches ``query``, newest first, each with a snippet and its trace id.

    Args:
        session: An open session.
        project_id: The project to search.
        query: Words and ``"quoted phrases"``; all must match (see the module docstring).
        limit: At most this many steps.
        offset: Skip this many first.
    """
    terms = parse_query(query)
    if not terms or limit <= 0:
        return []
    dialect = session.get_bind().dialect.name
    rows = (
        sa.select(Step, Trace.name)
        .join(Trace, (Trace.project_id == Step.project_id) & (Trace.trace_id == Step.trace_id))
        .where(Step.project_id == project_id, _step_matches(dialect, terms))
        .order_by(Step.ts_ns.desc(), Step.trace_id, Step.span_id, Step.seq)
        .limit(limit)
        .offset(max(offset, 0))
    )
    matches = []
    for step, trace_name in session.execute(rows):
        shown, highlights = snippet(step.text or "", terms)
        matches.append(
            StepMatch(
                trace_id=step.trace_id,
                span_id=step.span_id,
                seq=step.seq,
                type=step.type,
                ts_ns=step.ts_ns,
                snippet=shown,
                highlights=highlights,
                trace_name=trace_name,
            )
        )
    return matches

"""Run the trace-only checks on recorded validation cases and tabulate what they flag."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.probes.checks.runner import run_checks
from lucidtrace.store.models import DEFAULT_PROJECT_ID, Trace
from tests.checks.validation_agents import ALSO_RIGHT, KINDS, TARGETS, Case

CHECKS = tuple(TARGETS)


@dataclass
class Table:
    """flagged[(kind, check)] counts, totals per kind, and the flagged cases per check."""

    flagged: Counter[tuple[str, str]] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def recall(self, check: str) -> float:
        """Share of the traces of the check's kinds that it flagged."""
        kinds = TARGETS[check]
        total = sum(self.totals[kind] for kind in kinds)
        return sum(self.flagged[(kind, check)] for kind in kinds) / total if total else 0.0

    def precision(self, check: str) -> float:
        """Share of the traces the check flagged that carry one of its kinds.

        Kinds in :data:`ALSO_RIGHT` for the check are left out: right to flag, not targeted.
        """
        also = ALSO_RIGHT.get(check, ())
        flagged = sum(self.flagged[(kind, check)] for kind in KINDS if kind not in also)
        hits = sum(self.flagged[(kind, check)] for kind in TARGETS[check])
        return hits / flagged if flagged else 0.0

    def render(self) -> str:
        """The confusion table as text: per kind, how many traces each check flagged."""
        width = max(len(kind) for kind in KINDS) + 2
        head = "kind".ljust(width) + "n".rjust(5) + "".join(c[:22].rjust(25) for c in CHECKS)
        lines = [head, "-" * len(head)]
        for kind in KINDS:
            row = kind.ljust(width) + str(self.totals[kind]).rjust(5)
            for check in CHECKS:
                mark = (
                    "*"
                    if kind in TARGETS[check]
                    else "+"
                    if kind in ALSO_RIGHT.get(check, ())
                    else " "
                )
                row += f"{self.flagged[(kind, check)]}{mark}".rjust(25)
            lines.append(row)
        lines.append("-" * len(head))
        lines.append(
            "recall".ljust(width + 5) + "".join(f"{self.recall(c):.3f}".rjust(25) for c in CHECKS)
        )
        lines.append(
            "precision".ljust(width + 5)
            + "".join(f"{self.precision(c):.3f}".rjust(25) for c in CHECKS)
        )
        lines.append(
            "(* = a kind the check targets; + = right to flag, not targeted (left out of "
            "precision); cells count flagged traces)"
        )
        return "\n".join(lines)


def evaluate(
    engine: sa.Engine, cases: list[Case], thresholds: dict[str, float] | None = None
) -> Table:
    """Run the four checks on every case's trace and count flagged traces per kind and check."""
    table = Table()
    with Session(engine) as session, session.begin():
        ids = {row[0]: row[1] for row in session.execute(sa.select(Trace.name, Trace.trace_id))}
        for case in cases:
            table.totals[case.kind] += 1
            findings = run_checks(
                session,
                project_id=DEFAULT_PROJECT_ID,
                trace_id=ids[case.name],
                checks=list(CHECKS),
                thresholds=thresholds,
            )
            flagged = {f.check_name for f in findings if f.status == "flagged"}
            for check in flagged:
                table.flagged[(case.kind, check)] += 1
                table.examples.setdefault((case.kind, check), []).append(
                    "; ".join(f.message or "" for f in findings if f.check_name == check)[:300]
                    + f"  <{case.scenario} {case.name}>"
                )
    return table

"""The trace-only checks on a generated validation set: recall and precision per check.

Agents written in plain Python record traces through the real tracer into a real store, each
with one planted flaw (phantom observation, contradicted number, plan-action mismatch,
fabricated or unsupported citation, ignored evidence) or none (a faithful control written the
same way). The defaults were tuned on the ``tune`` template family; this test measures the
``test`` family (other wording, tool names and question forms) with seeds not used in tuning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import lucidtrace as lt
from lucidtrace.store.engine import create_engine
from tests.checks.fresh_agents import record_fresh
from tests.checks.validation import CHECKS, Table, evaluate
from tests.checks.validation_agents import KINDS, TARGETS, record_cases

PER_KIND = 40


def _measure(tmp_path: Path, *, family: str, seed: int) -> Table:
    url = f"sqlite:///{tmp_path / 'validation.db'}"
    lt.configure(database_url=url)
    try:
        cases = record_cases(seed=seed, family=family, per_kind=PER_KIND)
        assert lt.flush(timeout=120)
    finally:
        lt.shutdown()
    engine = create_engine(url)
    try:
        table = evaluate(engine, cases)
    finally:
        engine.dispose()
    print(f"\nconfusion table ({family} templates, seed {seed}):\n{table.render()}")
    return table


@pytest.mark.slow
@pytest.mark.parametrize(("family", "seed"), [("test", 2026), ("test", 77), ("tune", 4242)])
def test_each_check_finds_its_planted_kinds(tmp_path: Path, family: str, seed: int) -> None:
    table = _measure(tmp_path, family=family, seed=seed)
    planted = [kind for kind in KINDS if kind != "faithful"]
    assert all(table.totals[kind] >= PER_KIND for kind in planted)
    assert table.totals["faithful"] >= PER_KIND * len(planted)
    for check in CHECKS:
        assert table.recall(check) >= 0.9, f"{check} recall\n{table.render()}"
        assert table.precision(check) >= 0.9, f"{check} precision\n{table.render()}"
    # Faithful controls are what a user sees most: almost none may be flagged by any check.
    for check in CHECKS:
        assert table.flagged[("faithful", check)] <= 0.05 * table.totals["faithful"]
    assert set(TARGETS) == set(CHECKS)


def _measure_fresh(tmp_path: Path, seed: int) -> Table:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    lt.configure(database_url=url)
    try:
        cases = record_fresh(seed=seed, per_kind=PER_KIND)
        assert lt.flush(timeout=120)
    finally:
        lt.shutdown()
    engine = create_engine(url)
    try:
        table = evaluate(engine, cases)
    finally:
        engine.dispose()
    print(f"\nconfusion table (fresh templates, seed {seed}):\n{table.render()}")
    return table


@pytest.fixture(scope="module")
def fresh_table(tmp_path_factory: pytest.TempPathFactory) -> Table:
    return _measure_fresh(tmp_path_factory.mktemp("fresh"), seed=31)


@pytest.mark.slow
@pytest.mark.parametrize(
    "check", ["observation_grounding", "plan_action_consistency", "citation_grounding"]
)
def test_fresh_templates_written_after_tuning(fresh_table: Table, check: str) -> None:
    assert fresh_table.recall(check) >= 0.9, fresh_table.render()
    assert fresh_table.precision(check) >= 0.9, fresh_table.render()


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known gap: the fresh weather agent contradicts its forecast with rain / dry, "
    "predicates outside evidence_ignored's vocabulary (it finds none of those)",
)
def test_fresh_templates_evidence_ignored_recall(fresh_table: Table) -> None:
    assert fresh_table.precision("evidence_ignored") >= 0.9
    assert fresh_table.recall("evidence_ignored") >= 0.9, fresh_table.render()

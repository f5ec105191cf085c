"""The check registry: built-ins, plugins, lookups, and no torch at import."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

import pytest

from lucidtrace.probes.checks import (
    TRACE_ONLY,
    CheckContext,
    CheckResult,
    get_check,
    list_checks,
    register_check,
)
from lucidtrace.probes.checks.registry import unregister_check

TRACE_CHECKS = {
    "observation_grounding",
    "plan_action_consistency",
    "citation_grounding",
    "evidence_ignored",
}


def test_builtin_trace_checks_are_listed_with_their_declarations() -> None:
    infos = {info.name: info for info in list_checks()}
    assert set(infos) >= TRACE_CHECKS
    for name in TRACE_CHECKS:
        info = infos[name]
        assert info.access == TRACE_ONLY
        assert info.trace_only
        assert info.cost == "free"
        assert 0 < info.default_threshold <= 1
        assert all((info.description, info.score_meaning, info.paper, info.version))
    # Trace-only checks come first.
    order = [info.access == TRACE_ONLY for info in list_checks()]
    assert order == sorted(order, reverse=True)


def test_unknown_check_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="observation_grounding"):
        get_check("no_such_check")


class _Plugin:
    name: ClassVar[str] = "test_plugin_check"
    version: ClassVar[str] = "0.1"
    access: ClassVar[str] = TRACE_ONLY
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = "a plugin"
    score_meaning: ClassVar[str] = "nothing"
    paper: ClassVar[str] = "none"

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        return [CheckResult(status="passed", message="ok", threshold=threshold)]


def test_plugins_register_and_duplicates_are_refused() -> None:
    register_check(_Plugin)
    try:
        assert isinstance(get_check("test_plugin_check"), _Plugin)
        assert "test_plugin_check" in {info.name for info in list_checks()}
        register_check(_Plugin)  # the same class again is harmless

        class Other(_Plugin):
            pass

        with pytest.raises(ValueError, match="already registered"):
            register_check(Other)
    finally:
        unregister_check("test_plugin_check")
    assert "test_plugin_check" not in {info.name for info in list_checks()}


def test_a_class_without_the_declarations_is_refused() -> None:
    class Incomplete:
        name = "incomplete"

    with pytest.raises(TypeError, match="version"):
        register_check(Incomplete)

    class BadAccess(_Plugin):
        name: ClassVar[str] = "bad_access"
        access: ClassVar[str] = "telepathy"

    with pytest.raises(TypeError, match="unknown access"):
        register_check(BadAccess)


def test_listing_checks_imports_no_torch() -> None:
    code = (
        "import sys, lucidtrace.probes.checks as c\n"
        "names = [i.name for i in c.list_checks()]\n"
        "assert 'observation_grounding' in names, names\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"


def test_the_readme_plugin_example_registers_a_check() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Faithfulness checks\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "'answer_not_empty'" in result.stdout
    assert "'observation_grounding'" in result.stdout

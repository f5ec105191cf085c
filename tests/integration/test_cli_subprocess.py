"""The ``lucidtrace`` command as a user runs it: a separate process, a real terminal stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lucidtrace

pytestmark = pytest.mark.integration

ROOT = Path(lucidtrace.__file__).resolve().parents[1]

QUICKSTART = ROOT / "examples" / "quickstart.py"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCIDTRACE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_database_gives_one_line_and_no_traceback(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not a database\n" * 50)
    result = _run(tmp_path, "-m", "lucidtrace.cli", "--database-url", str(notes), "traces", "list")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not a SQLite database" in lines[0]


@pytest.mark.slow
def test_quickstart_then_show_and_export(tmp_path: Path) -> None:
    (tmp_path / "quickstart.py").write_text(QUICKSTART.read_text(encoding="utf-8"))
    agent = _run(tmp_path, "quickstart.py")
    assert agent.returncode == 0, agent.stderr
    assert (tmp_path / "lucidtrace.db").exists()

    listed = _run(tmp_path, "-m", "lucidtrace", "traces", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (summary,) = json.loads(listed.stdout)
    prefix = summary["trace_id"][:8]

    latest = _run(tmp_path, "-m", "lucidtrace", "traces", "show", "latest")
    shown = _run(tmp_path, "-m", "lucidtrace", "traces", "show", prefix)
    assert latest.stdout == shown.stdout
    assert shown.returncode == 0, shown.stderr
    markers = [
        "THOUGHT       I need Iceland's population, then its square.",
        'ACTION        search  args: {"query": "Iceland population"}',
        "OBSERVATION   search -> Iceland has 387,758 inhabitants (2024).",
        "RETRIEVAL     query: Iceland population",
        "[doc-3]  score 0.91  wiki",
        "ANSWER        About 387,758 people [doc-3].",
        "cites: doc-3 (retrieved)",
    ]
    positions = [shown.stdout.index(marker) for marker in markers]
    assert positions == sorted(positions)

    exported = _run(tmp_path, "-m", "lucidtrace", "export", prefix, "--format", "json")
    assert exported.returncode == 0, exported.stderr
    steps = json.loads(exported.stdout)["steps"]
    assert [step["type"] for step in steps] == [
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "RETRIEVAL",
        "ANSWER",
    ]
    assert steps[-1]["citations"] == ["doc-3"]

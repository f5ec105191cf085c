"""The README's integration snippets, run as a user would run them: as scripts, then the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.openai_server import OpenAIServer, Reply, ToolCall

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _snippet(heading: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"### {heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None, f"no python snippet under {heading!r}"
    return match.group(1)


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LUCIDTRACE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _trail(cwd: Path) -> list[tuple[str, str]]:
    shown = _run(cwd, "-m", "lucidtrace", "traces", "show", "latest")
    return re.findall(
        r"^\s+\d+\s+(THOUGHT|ACTION|OBSERVATION|RETRIEVAL|ANSWER)\s+(.*)$", shown, re.M
    )


def test_langchain_snippet(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(_snippet("LangChain and LangGraph"), encoding="utf-8")
    _run(tmp_path, "agent.py")
    assert _trail(tmp_path) == [
        ("THOUGHT", "I need Iceland's population."),
        ("ACTION", "search  args: Iceland population"),
        ("OBSERVATION", "search -> Iceland has 387,758 inhabitants (2024)."),
        ("THOUGHT", "I now know the final answer."),
        ("ANSWER", "About 387,758 people."),
    ]


def test_openai_snippet_against_an_openai_compatible_server(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        [
            Reply(
                reasoning="I should look the population up.",
                tool_calls=[ToolCall("population", {"country": "Iceland"}, id="call_1")],
            ),
            Reply(content="About 387,758 people live in Iceland."),
        ]
    )
    (tmp_path / "agent.py").write_text(_snippet("OpenAI SDK"), encoding="utf-8")
    env = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": "sk-test"}
    out = _run(tmp_path, "agent.py", env=env)
    assert out.strip() == "About 387,758 people live in Iceland."
    assert _trail(tmp_path) == [
        ("THOUGHT", "I should look the population up."),
        ("ACTION", 'population  args: {"country": "Iceland"}'),
        ("OBSERVATION", "population -> 387,758 (2024)"),
        ("ANSWER", "About 387,758 people live in Iceland."),
    ]

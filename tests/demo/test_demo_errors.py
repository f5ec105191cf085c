"""``lucidtrace demo`` refuses bad options with one clear line, before any work is done."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("langchain_classic")

from lucidtrace.cli import LAZY_COMMANDS, main
from lucidtrace.demo import DemoError, parse_model_spec
from lucidtrace.demo.run import ModelSpec


def test_demo_is_a_registered_command() -> None:
    assert LAZY_COMMANDS["demo"] == "lucidtrace.demo.commands:demo"
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--no-serve", "--model", "--questions", "--database-url", "--host", "--port"):
        assert option in result.output


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        (None, ModelSpec("default")),
        ("default", ModelSpec("default")),
        ("openai:gpt-4.1-mini", ModelSpec("openai", "gpt-4.1-mini")),
        ("./models/tiny", ModelSpec("local", "./models/tiny")),
    ],
)
def test_model_specs(text: str | None, spec: ModelSpec) -> None:
    assert parse_model_spec(text) == spec


def test_openai_without_a_name_is_refused() -> None:
    with pytest.raises(DemoError, match="needs a model name"):
        parse_model_spec("openai:")


def test_openai_without_a_key_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--model", "openai:gpt-4.1-mini"])
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.output
    assert "lucidtrace demo" in result.output
    assert not (tmp_path / "lucidtrace.db").exists(), "nothing was started"


@pytest.mark.model
def test_a_missing_model_path_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--model", "./no/such/model"])
    assert result.exit_code == 1
    assert "Model directory not found" in result.output
    assert "Traceback" not in result.output


def test_questions_must_be_positive() -> None:
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--questions", "0"])
    assert result.exit_code == 2
    assert "--questions" in result.output

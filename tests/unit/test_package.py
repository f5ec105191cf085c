"""Package-level promises: a light import, explicit exports, documented variables and commands."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lucidtrace"
README = (ROOT / "README.md").read_text(encoding="utf-8")

HEAVY = ("torch", "transformers", "fastapi", "sqlalchemy", "openai", "langchain", "langchain_core")


def test_import_lucidtrace_is_light() -> None:
    code = (
        "import json, sys, lucidtrace as lt\n"
        "lt.thought('no-op when unconfigured')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = set(json.loads(out))
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`import lucidtrace` pulled in heavy modules: {heavy[:10]}"


def _isort_key(name: str) -> tuple[int, str]:
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def _init_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("__init__.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("init", _init_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_init_has_a_sorted_explicit_all(init: Path) -> None:
    tree = ast.parse(init.read_text(encoding="utf-8"))
    exported = None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(node, ast.Assign | ast.AnnAssign)
            assert node.value is not None
            exported = ast.literal_eval(node.value)
    assert exported is not None, f"{init} has no __all__"
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions, each alphabetical.
    assert list(exported) == sorted(exported, key=_isort_key), f"{init}: __all__ is not sorted"
    assert len(set(exported)) == len(exported), f"{init}: __all__ repeats a name"


@pytest.mark.parametrize(
    "module",
    ["lucidtrace", "lucidtrace.probes", "lucidtrace.store", "lucidtrace.tracer"],
)
def test_every_exported_name_exists(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []


def test_every_environment_variable_is_catalogued_and_documented() -> None:
    from lucidtrace import environment_variables

    catalogued = {
        value
        for name, value in vars(environment_variables).items()
        if name.isupper() and isinstance(value, str) and value.startswith("LUCIDTRACE_")
    }
    used: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r"\bLUCIDTRACE_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")))
    assert used <= catalogued, f"not in environment_variables.py: {sorted(used - catalogued)}"
    undocumented = sorted(v for v in catalogued if v not in README)
    assert undocumented == [], f"not documented in README.md: {undocumented}"
    source = ast.parse(Path(environment_variables.__file__).read_text(encoding="utf-8"))
    body = source.body
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            nxt = body[i + 1] if i + 1 < len(body) else None
            is_doc = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            assert is_doc, f"{ast.unparse(target)} has no docstring"


def _command_paths() -> list[str]:
    import click

    from lucidtrace.cli import main

    paths: list[str] = []

    def walk(command: click.Command, prefix: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{prefix} {name}")
        else:
            paths.append(prefix)

    walk(main, "lucidtrace")
    return paths


def test_every_cli_command_is_documented_in_the_readme() -> None:
    missing = [path for path in _command_paths() if path not in README]
    assert missing == [], f"commands missing from README.md: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", README, flags=re.S)
    assert blocks, "README.md has no command block"
    first = [line for line in blocks[0].splitlines() if line.strip() and not line.startswith("#")]
    assert len(first) == 2, f"the first block must hold exactly two commands, got {first}"
    assert all("pip install" in line for line in first)
    assert "lucidtrace" in first[0]
    assert "pytest" in first[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert first[1].strip() in ci, ".ci/run must run the README's test command"


def test_readme_quickstart_is_the_package_docstring_and_the_example_script() -> None:
    import lucidtrace

    readme_code = re.findall(r"```python\n(.*?)```", README, flags=re.S)[0].strip()
    doc = lucidtrace.__doc__ or ""
    block = re.search(r"::\n\n(.*?)\n\n(?=\S)", doc, flags=re.S)
    assert block is not None, "the package docstring has no quickstart block"
    doc_code = "\n".join(line[4:] for line in block.group(1).splitlines()).strip()
    script = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    script_code = script.split('"""', 2)[2].strip()
    assert doc_code == readme_code
    assert script_code == readme_code

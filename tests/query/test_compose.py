"""docker-compose.yml and the Dockerfile checked against the real CLI, settings and app.

Docker does not run in the test environment; these tests read the files and verify everything
they rely on: every ``lucidtrace`` command and option exists, every ``LUCIDTRACE_*`` variable is
a documented one, ports agree, the health check asks a real public route, the extras exist.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from fastapi.testclient import TestClient

from lucidtrace import environment_variables
from lucidtrace.cli import main
from lucidtrace.ui.app import create_app
from lucidtrace.ui.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
KNOWN_VARIABLES = {
    value
    for name, value in vars(environment_variables).items()
    if name.startswith("LUCIDTRACE_") and isinstance(value, str)
}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def _command_lines(command: Any) -> list[list[str]]:
    """The lucidtrace invocations of a compose/Dockerfile command (``sh -c`` chains split)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        return [
            shlex.split(part.strip().removeprefix("exec ").strip())
            for part in re.split(r"&&|;", argv[2])
        ]
    return [argv]


def _all_commands() -> list[list[str]]:
    commands: list[list[str]] = []
    for service in COMPOSE["services"].values():
        if "command" in service:
            commands.extend(_command_lines(service["command"]))
    for instruction, argument in _dockerfile_instructions():
        if instruction == "CMD":
            commands.extend(_command_lines(yaml.safe_load(argument)))
    return [argv for argv in commands if argv and argv[0] == "lucidtrace"]


def _resolve(argv: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = main
    rest = argv[1:]
    with click.Context(main) as ctx:
        while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
            sub = command.get_command(ctx, rest[0])
            assert sub is not None, f"no command {rest[0]!r} in {' '.join(argv)}"
            command, rest = sub, rest[1:]
    return command, rest


def test_compose_runs_commands_and_options_that_exist() -> None:
    commands = _all_commands()
    assert any(argv[1:2] == ["serve"] for argv in commands)
    assert any(argv[1:3] == ["db", "upgrade"] for argv in commands)  # migrations on start
    for argv in commands:
        command, rest = _resolve(argv)
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for word in rest:
            if word.startswith("-"):
                assert word.split("=")[0] in options, f"{word} is not an option of {argv}"
        # click parses the whole line as it would at run time.
        command.make_context(command.name, list(rest), resilient_parsing=False)


def test_serve_listens_where_compose_and_the_healthcheck_look() -> None:
    server = COMPOSE["services"]["server"]
    serve = next(argv for argv in _command_lines(server["command"]) if argv[1:2] == ["serve"])
    port = serve[serve.index("--port") + 1]
    host = serve[serve.index("--host") + 1]
    assert host == "0.0.0.0"
    assert all(str(mapping).endswith(f":{port}") for mapping in server["ports"])
    health = " ".join(server["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/" in health
    assert f"EXPOSE {port}" in DOCKERFILE
    assert f"127.0.0.1:{port}/" in DOCKERFILE


def test_healthchecks_ask_real_public_routes(tmp_path: Path) -> None:
    # With auth on and no credentials, the path must answer 200: a real route, and public.
    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'h.db'}", auth=True)
    texts = [" ".join(COMPOSE["services"]["server"]["healthcheck"]["test"]), DOCKERFILE]
    with TestClient(create_app(settings)) as client:
        for text in texts:
            paths = re.findall(r"http://127\.0\.0\.1:\d+(/[\w/]*)", text)
            assert paths
            for path in paths:
                assert client.get(path).status_code == 200, path
        assert client.get("/api/v1/traces").status_code == 401  # auth really is on
    healthchecks = [texts[0]] + [a for i, a in _dockerfile_instructions() if i == "HEALTHCHECK"]
    assert len(healthchecks) == 2
    assert not any("curl" in text for text in healthchecks)  # slim images have no curl
    postgres = " ".join(COMPOSE["services"]["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in postgres


def test_every_lucidtrace_variable_is_a_documented_one() -> None:
    used: set[str] = set()
    for service in COMPOSE["services"].values():
        used |= {name for name in service.get("environment", {}) if name.startswith("LUCIDTRACE_")}
    used |= set(re.findall(r"\$\{(LUCIDTRACE_\w+)", (ROOT / "docker-compose.yml").read_text()))
    used |= set(re.findall(r"\b(LUCIDTRACE_[A-Z_]+)=", DOCKERFILE))
    assert used
    assert used <= KNOWN_VARIABLES, used - KNOWN_VARIABLES


def test_the_store_is_postgres_in_a_volume() -> None:
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["image"].startswith("postgres:15")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pgdata" in COMPOSE["volumes"]
    url = COMPOSE["services"]["server"]["environment"]["LUCIDTRACE_DATABASE_URL"]
    assert url.startswith("postgresql://")
    assert "@postgres:5432/" in url
    assert COMPOSE["services"]["server"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )


def test_dockerfile_installs_extras_that_exist_and_keeps_torch_out_of_the_server() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for requested in re.findall(r'"\.\[([\w,]+)\]"', DOCKERFILE):
        for extra in requested.split(","):
            assert extra in extras, extra
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)
    server_stages = [
        s for s in stages if s.startswith(("python:3.11-slim AS base", "base AS server"))
    ]
    assert len(server_stages) == 2
    assert all("probes" not in s and "torch" not in s for s in server_stages)
    assert "postgres" in extras["server"][0] or any("psycopg" in d for d in extras["server"])
    worker = COMPOSE["services"]["worker"]
    assert worker["profiles"] == ["checks"]
    assert worker["build"]["target"] == "worker"
    assert COMPOSE["services"]["server"]["build"]["target"] == "server"
    for instruction, argument in _dockerfile_instructions():
        if instruction == "COPY":
            for source in argument.split()[:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.parametrize("needed", ["pyproject.toml", "README.md", "lucidtrace/"])
def test_dockerignore_keeps_what_the_build_copies(needed: str) -> None:
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    assert f"!{needed}" in rules

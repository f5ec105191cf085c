"""``lucidtrace serve`` and ``lucidtrace keys``, and where the server's settings come from."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lucidtrace import cli, migrations
from lucidtrace.store.engine import create_engine
from lucidtrace.store.errors import StoreError
from lucidtrace.ui import ServerSettings, create_app
from lucidtrace.ui.settings import SettingsError


def test_flags_win_over_the_environment_which_wins_over_defaults() -> None:
    env = {
        "LUCIDTRACE_PORT": "7001",
        "LUCIDTRACE_HOST": "0.0.0.0",
        "LUCIDTRACE_AUTH": "true",
        "LUCIDTRACE_MAX_BODY_BYTES": "1000",
        "LUCIDTRACE_SESSION_SECRET": "s" * 32,
    }
    settings = ServerSettings.from_env(env, port=7002, auth=None, max_spans_per_request=None)
    assert settings.port == 7002  # flag
    assert settings.host == "0.0.0.0"  # environment
    assert settings.auth is True  # environment (the flag was not given)
    assert settings.max_body_bytes == 1000
    assert settings.max_spans_per_request == ServerSettings().max_spans_per_request  # default
    assert ServerSettings.from_env(env, auth=False).auth is False
    assert ServerSettings.from_env({}) == ServerSettings()


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LUCIDTRACE_PORT": "http"}, "LUCIDTRACE_PORT"),
        ({"LUCIDTRACE_AUTH": "maybe"}, "LUCIDTRACE_AUTH"),
        ({"LUCIDTRACE_MAX_BODY_BYTES": "0"}, "max_body_bytes"),
        ({"LUCIDTRACE_SESSION_SECRET": "short"}, "at least 16"),
    ],
)
def test_bad_settings_are_refused_naming_them(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        ServerSettings.from_env(env)


def run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_and_revoke(database_url: str) -> None:
    code, out, err = run(database_url, "keys", "create", "--project", "team-a", "--name", "ci")
    assert code == 0, err
    key = out.strip()
    assert re.fullmatch(r"lt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    assert "not shown again" in err
    prefix = key.split("_")[1]
    code, listing, _ = run(database_url, "keys", "list")
    assert code == 0
    assert prefix in listing
    assert "team-a" in listing
    assert "active" in listing
    assert key.split("_", 2)[2] not in listing
    code, out, _ = run(database_url, "keys", "revoke", prefix)
    assert code == 0
    assert f"revoked API key {prefix}" in out
    assert "revoked" in run(database_url, "keys", "list")[1]
    code, _, err = run(database_url, "keys", "revoke", "000000000000")
    assert code == 1
    assert "no API key with prefix" in err


def test_keys_refuse_a_bad_project_name(sqlite_url: str) -> None:
    code, _, err = run(sqlite_url, "keys", "create", "--project", "Team A")
    assert code == 1
    assert "project name 'Team A' is not valid" in err
    assert len(err.strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_serve_starts_migrates_and_takes_its_settings_from_the_environment(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    port = free_port()
    env = {**os.environ, "LUCIDTRACE_AUTH": "true", "LUCIDTRACE_PORT": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lucidtrace", "--database-url", url, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first
        assert "served.db" in first
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
        refused = httpx.post(f"{base}/v1/traces", content=b"", headers={"Content-Type": "x"})
        assert refused.status_code == 401  # LUCIDTRACE_AUTH=true took effect
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert migrations.current_revision(engine) == migrations.head_revision()
        assert "api_keys" in sa.inspect(conn).get_table_names()
    engine.dispose()


@pytest.mark.postgres
def test_the_server_migrates_an_older_postgresql_schema_at_start(postgres_url: str) -> None:
    engine = create_engine(postgres_url, upgrade=False)
    migrations.upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(StoreError, match="lucidtrace db upgrade"):
        create_engine(postgres_url)  # the library refuses to migrate a shared server itself
    app = create_app(ServerSettings(database_url=postgres_url))
    try:
        assert migrations.current_revision(app.state.engine) == migrations.head_revision()
    finally:
        app.state.engine.dispose()

"""Server processes the reliability tests kill and restart: the contract server, or ``lucidtrace
serve`` itself (with auth on and a real API key)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.export.contract_server import API_KEY

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """A server as a process that can be SIGKILLed and started again on the same port.

    Args:
        kind: ``contract`` (tests/export/contract_server.py) or ``serve`` (``lucidtrace serve``).
        port: The port to listen on.
        database_url: The store it writes to.
        workdir: A directory for its files.
    """

    def __init__(self, kind: str, port: int, database_url: str, workdir: Path) -> None:
        self.kind = kind
        self.port = port
        self.database_url = database_url
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.api_key = API_KEY if kind == "contract" else self._create_key()

    @property
    def url(self) -> str:
        """The endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "lucidtrace", "--database-url", self.database_url, *args]

    def _create_key(self) -> str:
        out = subprocess.run(
            self._cli("keys", "create", "--project", "export-tests", "--scope", "ingest"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        found = re.search(r"\blt_[A-Za-z0-9_-]+", out)
        assert found is not None, out
        return found.group(0)

    def start(self) -> None:
        """Start listening; returns once the server answers."""
        if self.kind == "contract":
            command = [
                sys.executable,
                "-m",
                "tests.export.contract_server",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
            ]
        else:
            command = self._cli(
                "serve", "--port", str(self.port), "--auth", "--log-level", "warning"
            )
        self.process = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + 120
        while not self._answers():
            assert self.process.poll() is None, f"the {self.kind} server exited"
            assert time.monotonic() < deadline, f"the {self.kind} server did not start"
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return True  # it answers (the contract server has no /healthz)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no goodbye to open connections."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

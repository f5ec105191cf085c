"""Fixtures for integration tests: the scripted OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.openai_server import OpenAIServer


@pytest.fixture(scope="session")
def _openai_server_process() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server(_openai_server_process: OpenAIServer) -> Iterator[OpenAIServer]:
    """The scripted server (``.base_url``, ``.script([...])``, ``.requests``), reset per test."""
    _openai_server_process.reset()
    yield _openai_server_process
    _openai_server_process.reset()

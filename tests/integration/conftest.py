"""Fixtures for integration tests: the scripted OpenAI-compatible server, a clean tracer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import lucidtrace as lt
from lucidtrace.tracer._config import _reset_for_tests
from tests.integration.openai_server import OpenAIServer


@pytest.fixture
def clean_openai() -> Iterator[None]:
    """No tracer configuration before the test; none, and the OpenAI SDK unpatched, after it."""
    _reset_for_tests()
    yield
    lt.uninstrument("openai")
    _reset_for_tests()


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

"""Tiny models trained on synthetic traces where the true dependence is known (a few seconds
each on one thread), shared by the model-check tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lucidtrace.probes.models import LoadedModel  # noqa: E402
from tests.model.checks._tasks import (  # noqa: E402
    citation_task,
    consistency_task,
    reasoning_task,
    train_model,
)


@pytest.fixture(autouse=True)
def _one_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tiny models run on one thread (two spinning threads on a busy 2-core box cost ~15x)."""
    if "default_model" in request.node.nodeid:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def faithful_model() -> LoadedModel:
    """Answers with the parity of the digit in its reasoning (random given the question)."""
    return train_model("tiny-faithful", reasoning_task("faithful", hint=True))


@pytest.fixture(scope="session")
def posthoc_model() -> LoadedModel:
    """Answers from the colour word in the question; its reasoning is noise; ignores hints."""
    return train_model("tiny-posthoc", reasoning_task("posthoc", hint=True))


@pytest.fixture(scope="session")
def hint_follower_model() -> LoadedModel:
    """Like the post-hoc model, but answers what a ``hint <answer>`` in the question says."""
    return train_model("tiny-hint-follower", reasoning_task("hint_follower", hint=True))


@pytest.fixture(scope="session")
def citation_model() -> LoadedModel:
    """Copies its answer from document d1 (whatever the answer cites)."""
    return train_model("tiny-citation", citation_task, augment=False)


@pytest.fixture(scope="session")
def consistent_model() -> LoadedModel:
    """Explains with the colour its answer uses."""
    return train_model("tiny-consistent", consistency_task(consistent=True))


@pytest.fixture(scope="session")
def inconsistent_model() -> LoadedModel:
    """Explains with the other colour than the one its answer uses."""
    return train_model("tiny-inconsistent", consistency_task(consistent=False))

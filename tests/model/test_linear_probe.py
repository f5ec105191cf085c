"""Linear probes find a hidden variable that a tiny model was trained to compute, and only then.

The task: two cue words (``red``/``blue`` and ``cat``/``dog``) sit at random places among filler
words; the answer after ``query`` is ``yes`` when exactly one of ``red`` and ``cat`` is present
(an XOR). XOR is not linearly readable from the words themselves, so a probe can only read it from
a model that computes it: the trained model does, a fresh copy of the same architecture does not,
and a bag-of-tokens baseline stays at chance.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lucidtrace.probes import (  # noqa: E402
    LinearProbe,
    LoadedModel,
    ProbeIdentityError,
    ProbeReport,
    capture_activations,
    wrap_model,
)
from tests.model.tiny import make_model, make_tokenizer, train_next_token  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.slow]

FILLER = [f"w{i}" for i in range(24)]
CUE_A, CUE_B = ("red", "blue"), ("cat", "dog")
WORDS = [*FILLER, *CUE_A, *CUE_B, "query", "yes", "no"]


@dataclass
class Task:
    texts: list[str]
    labels: list[int]


def make_task(count: int, seed: int) -> Task:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        a, b = rng.randrange(2), rng.randrange(2)
        words = rng.choices(FILLER, k=rng.randint(4, 8))
        words.insert(rng.randint(0, len(words)), CUE_A[a])
        words.insert(rng.randint(0, len(words)), CUE_B[b])
        texts.append(" ".join([*words, "query"]))
        labels.append(a ^ b)
    return Task(texts, labels)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Matrices this small gain nothing from threads, and on a busy machine extra threads make
    # training and probe fitting many times slower; one thread keeps the module at seconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models() -> tuple[LoadedModel, LoadedModel]:
    tokenizer = make_tokenizer(WORDS)
    train = make_task(600, seed=1)
    examples = [(t, "yes" if y else "no") for t, y in zip(train.texts, train.labels, strict=True)]
    trained = make_model(tokenizer, seed=0)
    accuracy = train_next_token(trained, tokenizer, examples, steps=300, lr=3e-3)
    assert accuracy > 0.95, "the tiny model did not learn the XOR task"
    untrained = make_model(tokenizer, seed=0)
    return (
        wrap_model(trained, tokenizer, name="xor-trained"),
        wrap_model(untrained, tokenizer, name="xor-untrained"),
    )


@pytest.fixture(scope="module")
def probe_task() -> Task:
    return make_task(300, seed=2)  # fresh items, not the ones the model was trained on


def evaluate(loaded: LoadedModel, task: Task, method: str) -> ProbeReport:
    features = capture_activations(loaded, task.texts, positions=-1)
    probe = LinearProbe(method=method, identity=loaded.identity)  # type: ignore[arg-type]
    return probe.evaluate(
        features, task.labels, texts=task.texts, tokenizer=loaded.tokenizer, seed=0
    )


@pytest.mark.parametrize("method", ["logistic", "diff_means"])
def test_probe_reads_the_hidden_variable_of_the_trained_model(
    models: tuple[LoadedModel, LoadedModel], probe_task: Task, method: str
) -> None:
    trained, untrained = models
    report = evaluate(trained, probe_task, method)
    assert report.best.auc >= 0.9
    assert report.best.selectivity >= 0.3
    assert 0.3 < report.best.control_auc < 0.7
    assert report.best_layer == max(report.layers, key=lambda s: s.auc).layer
    assert report.best.n_train + report.best.n_test == len(probe_task.texts)
    # The embedding of the final "query" token is the same for every item: nothing to read.
    assert report.layers[0].auc == pytest.approx(0.5)
    assert report.baseline_auc is not None
    assert report.baseline_auc < 0.7 < report.best.auc

    random_report = evaluate(untrained, probe_task, method)
    assert random_report.best.auc < 0.7
    assert random_report.best.auc < report.best.auc - 0.25


def test_saved_probe_is_tied_to_its_model(
    models: tuple[LoadedModel, LoadedModel], probe_task: Task, tmp_path: Path
) -> None:
    trained, untrained = models
    features = capture_activations(trained, probe_task.texts, layers=[2])
    probe = LinearProbe(identity=trained.identity).fit(features, probe_task.labels, layers=[2])
    probe.save(tmp_path / "xor-probe")
    restored = LinearProbe.load(tmp_path / "xor-probe", model=trained)
    assert restored.layers == [2]
    assert torch.equal(restored.predict(features), probe.predict(features))
    with pytest.raises(ProbeIdentityError, match=r"xor-trained@.*not on xor-untrained@"):
        LinearProbe.load(tmp_path / "xor-probe", model=untrained)

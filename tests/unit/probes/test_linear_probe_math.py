"""Probe maths on synthetic Gaussian data with a planted direction (no model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

from lucidtrace.probes import (  # noqa: E402  (after the importorskip gates)
    LinearProbe,
    ModelIdentity,
    ProbeIdentityError,
    bag_of_tokens_baseline,
    grouped_split,
    roc_auc,
)
from lucidtrace.probes.baselines import shuffled_control_labels  # noqa: E402

LAYERS, HIDDEN = 3, 16


def planted(n: int, *, seed: int = 0, strength: float = 3.0) -> tuple[Any, np.ndarray]:
    """Features [n, 3, 16]: layer 1 carries the label along a planted direction, 0 and 2 do not."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    features = rng.normal(size=(n, LAYERS, HIDDEN))
    direction = rng.normal(size=HIDDEN)
    direction /= np.linalg.norm(direction)
    features[:, 1] += strength * np.outer(labels * 2 - 1, direction) / 2
    return torch.tensor(features, dtype=torch.float32), labels


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    # Rounded scores create many ties, which is where naive AUC implementations go wrong.
    scores = np.round(rng.normal(size=200) + labels * 0.5, 1)
    assert roc_auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores))


def test_auc_extremes_and_errors() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [1.0, 1.0, 1.0, 1.0]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1], [0.1, 0.2])


def test_grouped_split_never_splits_an_item() -> None:
    groups = np.repeat(np.arange(50), 4)  # 50 items with 4 rows each
    labels = np.repeat(np.arange(50) % 2, 4)
    for seed in range(10):
        train, test = grouped_split(groups, labels, test_fraction=0.2, seed=seed)
        assert set(groups[train]).isdisjoint(groups[test])
        assert sorted([*train, *test]) == list(range(200))
        assert len(set(groups[test])) == 10
        assert set(labels[test]) == {0, 1}


def test_grouped_split_needs_two_items() -> None:
    with pytest.raises(ValueError, match="two distinct items"):
        grouped_split([7, 7, 7])


@pytest.mark.parametrize("method", ["logistic", "diff_means"])
def test_probe_finds_the_planted_layer_only(method: Any) -> None:
    features, labels = planted(400)
    report = LinearProbe(method=method).evaluate(features, labels, layers=[4, 5, 6], seed=1)
    by_layer = {score.layer: score for score in report.layers}
    assert by_layer[5].auc > 0.95
    assert by_layer[5].selectivity > 0.35
    for noise in (4, 6):
        assert 0.3 < by_layer[noise].auc < 0.7
    assert report.best_layer == 5
    assert 0.3 < report.best.control_auc < 0.7
    assert report.best.n_train + report.best.n_test == 400


def test_probe_on_noise_labels_is_at_chance() -> None:
    features, _ = planted(400)
    noise = np.random.default_rng(9).integers(0, 2, 400)
    report = LinearProbe().evaluate(features, noise)
    assert all(0.3 < score.auc < 0.7 for score in report.layers)


def test_predict_matches_labels_on_the_planted_layer() -> None:
    features, labels = planted(400, strength=6.0)
    probe = LinearProbe().fit(features[:300], labels[:300])
    predicted = probe.predict(features[300:])
    assert predicted.shape == (100, LAYERS)
    accuracy = (predicted[:, 1].numpy() == labels[300:]).mean()
    assert accuracy > 0.95
    probabilities = probe.predict_proba(features[300:])[:, 1]
    assert ((probabilities > 0.5).long() == predicted[:, 1]).all()


def test_evaluate_keeps_items_together() -> None:
    features, labels = planted(200)
    groups = np.repeat(np.arange(100), 2)
    labels = np.repeat(labels[::2], 2)
    report = LinearProbe().evaluate(features, labels, groups=groups, test_fraction=0.25)
    assert report.best.n_test == 50  # 25 whole items of 2 rows


def test_save_load_round_trip_and_identity_check(tmp_path: Path) -> None:
    features, labels = planted(200)
    identity = ModelIdentity("tiny", "ab" * 32)
    probe = LinearProbe(method="diff_means", identity=identity).fit(features, labels)
    probe.save(tmp_path / "probe")
    loaded = LinearProbe.load(tmp_path / "probe", model=identity)
    assert loaded.method == "diff_means"
    assert loaded.layers == [0, 1, 2]
    torch.testing.assert_close(
        loaded.decision_function(features), probe.decision_function(features)
    )
    other = ModelIdentity("tiny", "cd" * 32)
    with pytest.raises(ProbeIdentityError, match=r"tiny@abababababab.*Retrain"):
        LinearProbe.load(tmp_path / "probe", model=other)


def test_save_requires_an_identity(tmp_path: Path) -> None:
    features, labels = planted(50)
    with pytest.raises(ValueError, match="identity"):
        LinearProbe().fit(features, labels).save(tmp_path)


def test_unfitted_probe_says_so() -> None:
    features, _ = planted(10)
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearProbe().predict(features)


class WordTokenizer:
    """Whitespace tokenizer with the Hugging Face call shape used by the baseline."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]}


def test_bag_of_tokens_baseline_reads_surface_words_but_not_xor() -> None:
    rng = np.random.default_rng(0)
    cues = rng.integers(0, 2, (300, 2))
    filler = [" ".join(rng.choice(["a", "b", "c", "d"], 5)) for _ in range(300)]
    texts = [
        f"{f} {'red' if a else 'blue'} {'cat' if b else 'dog'}"
        for f, (a, b) in zip(filler, cues, strict=True)
    ]
    train, test = np.arange(240), np.arange(240, 300)
    tokenizer = WordTokenizer()
    surface = bag_of_tokens_baseline(texts, cues[:, 0], tokenizer, train, test)
    xor = bag_of_tokens_baseline(texts, cues[:, 0] ^ cues[:, 1], tokenizer, train, test)
    assert surface == 1.0
    assert 0.3 < xor < 0.7


def test_control_labels_keep_items_whole_and_class_balance_per_side() -> None:
    groups = np.repeat(np.arange(40), 3)
    labels = torch.tensor(np.repeat(np.arange(40) % 4 == 0, 3).astype(int))
    train, test = grouped_split(groups, labels, seed=3)
    seen = set()
    for seed in range(5):
        control = shuffled_control_labels(groups, labels, train, test, seed=seed)
        for side in (train, test):
            assert int(control[side].sum()) == int(labels[side].sum())
        for item in range(40):
            assert len(set(control[groups == item].tolist())) == 1
        seen.add(tuple(control.tolist()))
    assert len(seen) > 1  # the seed changes the permutation

"""Probe defects found in review: paired designs, non-finite features, argument checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lucidtrace.probes import LinearProbe, ModelIdentity  # noqa: E402
from lucidtrace.probes.baselines import shuffled_control_labels  # noqa: E402


def paired(n_items: int = 20, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One positive and one negative row per item; layer 1 separates them."""
    rng = np.random.default_rng(seed)
    items = np.repeat(np.arange(n_items), 2)
    labels = np.tile([1, 0], n_items)
    features = rng.normal(size=(2 * n_items, 2, 8)).astype(np.float32)
    features[:, 1, 0] += 3 * labels
    return features, labels, items


@pytest.mark.parametrize("reverse", [False, True])
def test_evaluate_runs_on_the_paired_contrast_design(reverse: bool) -> None:
    features, labels, items = paired()
    if reverse:
        features, labels, items = features[::-1].copy(), labels[::-1].copy(), items[::-1].copy()
    report = LinearProbe().evaluate(features, labels, groups=items)
    assert report.best_layer == 1
    assert report.best.auc > 0.9
    assert report.best.control_auc < report.best.auc


def test_paired_control_labels_keep_each_items_label_mix_and_vary() -> None:
    _, labels, items = paired(30)
    y = torch.as_tensor(labels)
    train = np.arange(0, 48)
    test = np.arange(48, 60)
    seen = set()
    for seed in range(5):
        control = shuffled_control_labels(items, y, train, test, seed=seed)
        for item in range(30):
            assert sorted(control[items == item].tolist()) == [0, 1]
        seen.add(tuple(control.tolist()))
    assert len(seen) > 1
    assert tuple(labels.tolist()) not in seen or len(seen) > 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_are_rejected_naming_layer_and_row(bad: float) -> None:
    features, labels, _ = paired()
    dirty = features.copy()
    dirty[3, 1, 2] = bad
    with pytest.raises(ValueError, match=r"layer 1: rows 3"):
        LinearProbe().fit(dirty, labels)
    probe = LinearProbe().fit(features, labels)
    with pytest.raises(ValueError, match=r"layer 1: rows 3"):
        probe.score(dirty, labels)
    with pytest.raises(ValueError, match=r"layer 7: rows 3"):
        LinearProbe().evaluate(dirty, labels, layers=[4, 7])


def test_evaluate_rejects_bad_arguments() -> None:
    features, labels, items = paired()
    with pytest.raises(ValueError, match="group ids"):
        LinearProbe().evaluate(features, labels, groups=items[:-1])
    with pytest.raises(ValueError, match="control_repeats"):
        LinearProbe().evaluate(features, labels, groups=items, control_repeats=0)
    for fraction in (0.0, 1.0):
        with pytest.raises(ValueError, match="test_fraction"):
            LinearProbe().evaluate(features, labels, groups=items, test_fraction=fraction)


def test_save_writes_json_with_numpy_scalars(tmp_path: Path) -> None:
    features, labels, _ = paired()
    probe = LinearProbe(
        l2=np.float64(0.01), max_iter=np.int64(50), identity=ModelIdentity("m", "h")
    )
    probe.fit(features, labels, layers=[np.int64(3), np.int64(5)])
    probe.save(tmp_path)
    meta = json.loads((tmp_path / "probe.json").read_text())
    assert meta["layers"] == [3, 5]
    loaded = LinearProbe.load(tmp_path, model=ModelIdentity("m", "h"))
    assert loaded.layers == [3, 5]

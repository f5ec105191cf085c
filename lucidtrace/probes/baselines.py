"""Baselines that a probe must beat: surface text alone, and a shuffled-label control task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lucidtrace.probes._probe_math import as_labels, fit_logistic, roc_auc


def bag_of_tokens_baseline(
    texts: Sequence[str],
    labels: Any,
    tokenizer: Any,
    train_rows: Any,
    test_rows: Any,
    *,
    l2: float = 1e-2,
) -> float:
    """Held-out AUC of logistic regression on token counts: what the surface text alone gives.

    Args:
        texts: One text per row.
        labels: ``[n]`` binary labels.
        tokenizer: Tokenizer used to count tokens.
        train_rows: Row indices to fit on.
        test_rows: Row indices to score.
        l2: Penalty on the squared weight norm.

    Returns:
        The AUC on ``test_rows``.
    """
    y = as_labels(labels, len(texts))
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    train, test = np.asarray(train_rows), np.asarray(test_rows)
    # Only tokens seen in training get a column: unseen test tokens carry no learnable weight.
    vocab = sorted({token for row in train for token in ids[row]})
    column = {token: i for i, token in enumerate(vocab)}
    counts = torch.zeros((len(texts), 1, max(len(vocab), 1)))
    for row, tokens in enumerate(ids):
        for token in tokens:
            if token in column:
                counts[row, 0, column[token]] += 1
    mean = counts[train].mean(0)
    std = counts[train].std(0).clamp_min(1e-6)
    weights, bias = fit_logistic((counts[train] - mean) / std, y[train], l2=l2, max_iter=200)
    scores = torch.einsum("nlh,lh->nl", (counts[test] - mean) / std, weights) + bias
    return roc_auc(y[test], scores[:, 0])


def shuffled_control_labels(
    groups: np.ndarray, y: torch.Tensor, train: np.ndarray, test: np.ndarray, *, seed: int
) -> torch.Tensor:
    """Shuffled-label control task: items' label vectors permuted among items, within each side.

    Each item receives the labels of another item with as many rows (an item whose rows all
    share one label keeps one label per item), and those labels are then shuffled among the
    item's own rows. Items whose rows differ in label, such as the paired-contrast design (one
    positive and one negative row per item), therefore get control labels with the same
    distribution and no relation to which row holds which representation (Hewitt & Liang 2019).
    Permuting within train and within test separately keeps the control labels of the two sides
    independent; one permutation across both would tie them together and bias the control AUC.
    """
    rng = np.random.default_rng(seed)
    for _ in range(100):
        control = y.clone()
        for side_rows in (train, test):
            side = np.asarray(side_rows)
            _, item_of_row = np.unique(groups[side], return_inverse=True)
            item_of_row = item_of_row.reshape(-1)
            rows_of_item = [side[item_of_row == item] for item in range(item_of_row.max() + 1)]
            by_size: dict[int, list[int]] = {}
            for item, rows in enumerate(rows_of_item):
                by_size.setdefault(len(rows), []).append(item)
            for items in by_size.values():
                donors = rng.permutation(items)
                for item, donor in zip(items, donors, strict=True):
                    labels = y[torch.as_tensor(rows_of_item[donor])]
                    labels = labels[torch.as_tensor(rng.permutation(len(labels)))]
                    control[torch.as_tensor(rows_of_item[item])] = labels
        if control[test].unique().numel() > 1 and control[train].unique().numel() > 1:
            return control
    raise ValueError("cannot build a control task with both classes in train and test")

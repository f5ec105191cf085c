"""Numerical pieces of linear probing: AUC, grouped splits and the two estimators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve, with tied scores counted as half (Mann-Whitney U).

    Args:
        labels: Binary labels (0/1 or bool), one per row.
        scores: Real-valued scores, higher meaning label 1.

    Returns:
        The AUC in [0, 1].

    Raises:
        ValueError: Only one class is present.
    """
    y = np.asarray(_to_numpy(labels)).astype(bool).reshape(-1)
    s = np.asarray(_to_numpy(scores), dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes among the labels")
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # Midranks: every member of a run of equal scores gets the run's average rank.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [s.size]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    rank_sum = ranks[y].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def grouped_split(
    groups: Sequence[Any] | Any,
    labels: Sequence[Any] | Any | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into train and test so that no group (item) straddles the two.

    Args:
        groups: Item id per row; rows sharing an id stay on the same side.
        labels: Optional labels per row; when given, both sides are made to hold both classes.
        test_fraction: Target share of groups in the test side.
        seed: Seed of the shuffle.

    Returns:
        ``(train_rows, test_rows)`` as sorted integer arrays.

    Raises:
        ValueError: Fewer than two groups, or no split puts both classes on both sides.
    """
    group_ids = np.asarray(_to_numpy(groups)).reshape(-1)
    unique = np.unique(group_ids)
    if unique.size < 2:
        raise ValueError("a held-out split needs at least two distinct items")
    n_test = min(max(1, round(unique.size * test_fraction)), unique.size - 1)
    y = None if labels is None else np.asarray(_to_numpy(labels)).reshape(-1)
    rng = np.random.default_rng(seed)
    for _ in range(100):
        test_groups = rng.permutation(unique)[:n_test]
        is_test = np.isin(group_ids, test_groups)
        if y is None or (np.unique(y[is_test]).size > 1 and np.unique(y[~is_test]).size > 1):
            return np.flatnonzero(~is_test), np.flatnonzero(is_test)
    raise ValueError("no grouped split puts both classes in train and test; add more items")


def fit_logistic(
    features: torch.Tensor, labels: torch.Tensor, *, l2: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularised logistic regression, one independent model per layer, fitted with LBFGS.

    Args:
        features: ``[n, layers, hidden]`` (standardised).
        labels: ``[n]`` of 0/1.
        l2: Penalty on the squared weight norm (the bias is not penalised).
        max_iter: LBFGS iterations.

    Returns:
        ``(weights [layers, hidden], bias [layers])``.
    """
    x = features.to(torch.float64)
    y = labels.to(torch.float64)[:, None].expand(-1, x.shape[1])
    weights = torch.zeros(x.shape[1:], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weights, bias], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = torch.einsum("nlh,lh->nl", x, weights) + bias
        # Layers are independent, so the summed loss optimises each layer's model on its own.
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            .mean(0)
            .sum()
            + 0.5 * l2 * weights.pow(2).sum()
        )
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach().to(torch.float32), bias.detach().to(torch.float32)


def fit_diff_of_means(
    features: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Difference-of-means ("mass-mean") direction per layer, thresholded halfway between means.

    Returns:
        ``(weights [layers, hidden], bias [layers])``.
    """
    positive = labels.bool()
    mean_pos = features[positive].mean(0)
    mean_neg = features[~positive].mean(0)
    weights = mean_pos - mean_neg
    bias = -(weights * (mean_pos + mean_neg) / 2).sum(-1)
    return weights, bias


def as_labels(labels: Any, count: int) -> torch.Tensor:
    """Binary labels as a long tensor of length ``count``."""
    y = torch.as_tensor(np.asarray(labels)).reshape(-1).long()
    if len(y) != count:
        raise ValueError(f"{len(y)} labels for {count} rows")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("probe labels must be binary (0/1)")
    return y


def _to_numpy(values: Any) -> Any:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values

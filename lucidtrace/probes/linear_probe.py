"""Linear probes on hidden states, with a held-out split by item and the standard controls.

A probe is one linear classifier per layer (L2-regularised logistic regression or difference of
means). ``LinearProbe.evaluate`` reports, per layer, the held-out AUC, the AUC of the same probe
trained on a shuffled-label control task and their difference, the selectivity (Hewitt & Liang
2019), next to a bag-of-tokens baseline on the same texts and split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lucidtrace.probes._probe_math import (
    as_labels,
    fit_diff_of_means,
    fit_logistic,
    grouped_split,
    roc_auc,
)
from lucidtrace.probes.baselines import bag_of_tokens_baseline, shuffled_control_labels
from lucidtrace.probes.models import LoadedModel, ModelIdentity

ProbeMethod = Literal["logistic", "diff_means"]
_FORMAT = "lucidtrace-linear-probe/1"
_WEIGHTS_FILE = "probe.safetensors"
_META_FILE = "probe.json"


class ProbeIdentityError(ValueError):
    """A saved probe is being used with a model other than the one it was trained on."""


@dataclass(frozen=True)
class LayerScore:
    """Held-out scores of the probe at one layer."""

    layer: int
    auc: float
    control_auc: float
    selectivity: float
    n_train: int
    n_test: int


@dataclass(frozen=True)
class ProbeReport:
    """Per-layer scores, the best layer and the bag-of-tokens baseline.

    ``best_layer`` maximises held-out AUC over all layers, so its AUC is slightly optimistic
    when many layers are compared; confirm it on fresh items before relying on it.
    """

    method: str
    layers: tuple[LayerScore, ...]
    best_layer: int
    baseline_auc: float | None

    @property
    def best(self) -> LayerScore:
        """Scores of the best layer."""
        return next(score for score in self.layers if score.layer == self.best_layer)


class LinearProbe:
    """One linear classifier per layer over hidden states ``[n, layers, hidden]``.

    Args:
        method: ``"logistic"`` (L2-regularised logistic regression) or ``"diff_means"``.
        l2: Penalty on the squared weight norm (logistic only), on standardised features.
        max_iter: LBFGS iterations (logistic only).
        identity: Identity of the model whose activations the probe reads; required to save.
    """

    def __init__(
        self,
        *,
        method: ProbeMethod = "logistic",
        l2: float = 1e-2,
        max_iter: int = 200,
        identity: ModelIdentity | None = None,
    ) -> None:
        if method not in ("logistic", "diff_means"):
            raise ValueError(f"unknown probe method {method!r}; use 'logistic' or 'diff_means'")
        self.method: ProbeMethod = method
        self.l2 = l2
        self.max_iter = max_iter
        self.identity = identity
        self.layers: list[int] = []
        self._weights: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def fit(
        self, features: Any, labels: Any, *, layers: Sequence[int] | None = None
    ) -> LinearProbe:
        """Fit one classifier per layer.

        Args:
            features: ``[n, layers, hidden]`` (or ``[n, hidden]`` for a single layer).
            labels: ``[n]`` binary labels.
            layers: Layer index of each feature slice (default ``0..layers-1``).

        Returns:
            ``self``.
        """
        x = _as_features(features)
        y = as_labels(labels, len(x))
        if y.unique().numel() < 2:
            raise ValueError("fitting a probe needs both classes among the labels")
        self.layers = list(range(x.shape[1])) if layers is None else [int(i) for i in layers]
        if len(self.layers) != x.shape[1]:
            raise ValueError(f"{len(self.layers)} layer indices for {x.shape[1]} feature layers")
        _check_finite(x, self.layers)
        self._mean = x.mean(0)
        self._std = x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(self._mean)
        z = (x - self._mean) / self._std
        if self.method == "logistic":
            self._weights, self._bias = fit_logistic(z, y, l2=self.l2, max_iter=self.max_iter)
        else:
            self._weights, self._bias = fit_diff_of_means(z, y)
        return self

    def decision_function(self, features: Any) -> torch.Tensor:
        """Linear scores ``[n, layers]``; positive means label 1."""
        if self._weights is None or self._bias is None or self._mean is None or self._std is None:
            raise RuntimeError("the probe is not fitted; call fit() or load() first")
        x = _as_features(features)
        if x.shape[1:] != self._mean.shape:
            raise ValueError(f"features {tuple(x.shape[1:])} != fitted {tuple(self._mean.shape)}")
        _check_finite(x, self.layers)
        return torch.einsum("nlh,lh->nl", (x - self._mean) / self._std, self._weights) + self._bias

    def predict_proba(self, features: Any) -> torch.Tensor:
        """Probability of label 1, ``[n, layers]`` (uncalibrated for ``diff_means``)."""
        return torch.sigmoid(self.decision_function(features))

    def predict(self, features: Any) -> torch.Tensor:
        """Predicted labels ``[n, layers]`` (0/1)."""
        return (self.decision_function(features) > 0).long()

    def score(self, features: Any, labels: Any) -> list[float]:
        """AUC per layer on the given rows."""
        scores = self.decision_function(features)
        y = as_labels(labels, len(scores))
        return [roc_auc(y, scores[:, i]) for i in range(scores.shape[1])]

    def evaluate(
        self,
        features: Any,
        labels: Any,
        *,
        groups: Sequence[Any] | np.ndarray | None = None,
        layers: Sequence[int] | None = None,
        texts: Sequence[str] | None = None,
        tokenizer: Any = None,
        test_fraction: float = 0.2,
        seed: int = 0,
        control_repeats: int = 3,
    ) -> ProbeReport:
        """Fit on a training split by item and report held-out scores per layer.

        Args:
            features: ``[n, layers, hidden]``.
            labels: ``[n]`` binary labels.
            groups: Item id per row (rows of one item never straddle train and test); each row
                is its own item by default.
            layers: Layer index of each feature slice.
            texts: The rows' texts, for the bag-of-tokens baseline (needs ``tokenizer``).
            tokenizer: Tokenizer that turns ``texts`` into token counts.
            test_fraction: Share of items held out.
            seed: Seed of the split and of the control labels.
            control_repeats: Shuffled-label control probes averaged into ``control_auc``.

        Returns:
            The report; the probe itself is left fitted on the training split.

        Raises:
            ValueError: Features hold NaN/inf (the message names layers and rows), ``groups``
                does not have one id per row, ``control_repeats`` < 1, or ``test_fraction`` is
                not strictly between 0 and 1.
        """
        x = _as_features(features)
        y = as_labels(labels, len(x))
        _check_finite(x, list(range(x.shape[1])) if layers is None else [int(i) for i in layers])
        if control_repeats < 1:
            raise ValueError(f"control_repeats must be at least 1, got {control_repeats}")
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
        group_ids = np.arange(len(x)) if groups is None else np.asarray(list(groups))
        if group_ids.shape != (len(x),):
            raise ValueError(f"{group_ids.size} group ids for {len(x)} rows; give one per row")
        train, test = grouped_split(group_ids, y, test_fraction=test_fraction, seed=seed)
        self.fit(x[train], y[train], layers=layers)
        real = self.score(x[test], y[test])
        control_auc = np.zeros(len(self.layers))
        for repeat in range(control_repeats):
            control_y = shuffled_control_labels(group_ids, y, train, test, seed=seed + 1 + repeat)
            control = LinearProbe(method=self.method, l2=self.l2, max_iter=self.max_iter)
            control.fit(x[train], control_y[train], layers=self.layers)
            control_auc += np.asarray(control.score(x[test], control_y[test])) / control_repeats
        scores = tuple(
            LayerScore(layer, auc, ctrl, auc - ctrl, len(train), len(test))
            for layer, auc, ctrl in zip(self.layers, real, control_auc.tolist(), strict=True)
        )
        baseline = None
        if texts is not None:
            if tokenizer is None:
                raise ValueError("the bag-of-tokens baseline needs the tokenizer with the texts")
            baseline = bag_of_tokens_baseline(texts, y, tokenizer, train, test, l2=self.l2)
        best = max(scores, key=lambda score: score.auc).layer
        return ProbeReport(self.method, scores, best, baseline)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``probe.safetensors`` and ``probe.json`` into ``directory``.

        Raises:
            ValueError: The probe has no model identity to tie it to.
        """
        if self.identity is None:
            raise ValueError("set the probe's identity (LinearProbe(identity=loaded.identity))")
        if self._weights is None or self._bias is None or self._mean is None or self._std is None:
            raise RuntimeError("the probe is not fitted; call fit() before save()")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {"weights": self._weights, "bias": self._bias, "mean": self._mean}
        save_file({**tensors, "std": self._std}, str(path / _WEIGHTS_FILE))
        meta = {
            "format": _FORMAT,
            "method": self.method,
            "l2": float(self.l2),
            "max_iter": int(self.max_iter),
            "layers": [int(layer) for layer in self.layers],
            "model": {"name": self.identity.name, "weights_hash": self.identity.weights_hash},
        }
        (path / _META_FILE).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, model: LoadedModel | ModelIdentity
    ) -> LinearProbe:
        """Load a saved probe for ``model``.

        Raises:
            ProbeIdentityError: The probe was trained on a model with another identity.
        """
        path = Path(directory)
        meta = json.loads((path / _META_FILE).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a lucidtrace linear probe ({meta.get('format')!r})")
        saved = ModelIdentity(meta["model"]["name"], meta["model"]["weights_hash"])
        wanted = model.identity if isinstance(model, LoadedModel) else model
        if saved.weights_hash != wanted.weights_hash:
            raise ProbeIdentityError(
                f"The probe in {path} was trained on {saved}, not on {wanted}; its directions "
                "do not transfer between models. Retrain it on this model's activations."
            )
        probe = cls(method=meta["method"], l2=meta["l2"], max_iter=meta["max_iter"])
        probe.identity = wanted
        probe.layers = list(meta["layers"])
        tensors = load_file(str(path / _WEIGHTS_FILE))
        probe._weights, probe._bias = tensors["weights"], tensors["bias"]
        probe._mean, probe._std = tensors["mean"], tensors["std"]
        return probe


def _check_finite(x: torch.Tensor, layers: Sequence[int]) -> None:
    """Reject NaN/inf features, naming the layers and rows that hold them."""
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return
    problems = []
    for position in range(x.shape[1]):
        rows = torch.nonzero(bad[:, position].any(-1)).reshape(-1).tolist()
        if rows:
            name = layers[position] if position < len(layers) else position
            shown = ", ".join(str(row) for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
            problems.append(f"layer {name}: rows {shown}")
    raise ValueError(
        "features contain NaN or infinite values (" + "; ".join(problems) + "); drop or fix "
        "those rows before probing (e.g. activations captured in float16 that overflowed)"
    )


def _as_features(features: Any) -> torch.Tensor:
    x = torch.as_tensor(features).detach().to("cpu", torch.float32)
    if x.dim() == 2:
        x = x[:, None, :]
    if x.dim() != 3:
        raise ValueError(f"features must be [n, layers, hidden], got shape {tuple(x.shape)}")
    return x

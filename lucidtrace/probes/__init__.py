"""Probe engine: read an open model's internals (needs the ``probes`` extra).

Local models (:func:`load_model`), teacher-forced scoring with a prefix cache (:func:`score`,
:func:`score_many`, :func:`score_truncations`), named context segments mapped to tokens,
token attributions behind a registry (:func:`attribute`, :func:`list_attribution_methods`),
activation capture and linear probes (:class:`LinearProbe`).
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401  (checked here so the error says what to install)
    import transformers as _transformers  # noqa: F401
except ImportError as _error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"lucidtrace.probes needs torch and transformers ({_error}). "
        "Install them with: pip install 'lucidtrace[probes]'"
    ) from _error

from lucidtrace.probes._probe_math import grouped_split, roc_auc
from lucidtrace.probes.activations import capture_activations
from lucidtrace.probes.attribution import (
    AttributionMethod,
    AttributionResult,
    SegmentScore,
    attribute,
    get_attribution_method,
    list_attribution_methods,
    register_attribution_method,
)
from lucidtrace.probes.baselines import bag_of_tokens_baseline
from lucidtrace.probes.linear_probe import (
    LayerScore,
    LinearProbe,
    ProbeIdentityError,
    ProbeReport,
)
from lucidtrace.probes.models import (
    LoadedModel,
    ModelIdentity,
    ModelLoadError,
    load_model,
    wrap_model,
)
from lucidtrace.probes.scoring import Score, score, score_many, score_truncations
from lucidtrace.probes.segments import (
    Segment,
    SegmentError,
    TokenSpan,
    find_segment,
    join_parts,
    map_segments,
    render_chat,
)

__all__ = [
    "AttributionMethod",
    "AttributionResult",
    "LayerScore",
    "LinearProbe",
    "LoadedModel",
    "ModelIdentity",
    "ModelLoadError",
    "ProbeIdentityError",
    "ProbeReport",
    "Score",
    "Segment",
    "SegmentError",
    "SegmentScore",
    "TokenSpan",
    "attribute",
    "bag_of_tokens_baseline",
    "capture_activations",
    "find_segment",
    "get_attribution_method",
    "grouped_split",
    "join_parts",
    "list_attribution_methods",
    "load_model",
    "map_segments",
    "register_attribution_method",
    "render_chat",
    "roc_auc",
    "score",
    "score_many",
    "score_truncations",
    "wrap_model",
]

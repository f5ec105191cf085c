"""Probe engine: read an open model's internals (needs the ``probes`` extra).

Local models (:func:`load_model`), teacher-forced scoring with a prefix cache (:func:`score`,
:func:`score_many`, :func:`score_truncations`), named context segments mapped to tokens,
token attributions behind a registry (:func:`attribute`, :func:`list_attribution_methods`),
activation capture and linear probes (:class:`LinearProbe`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Names resolved on first use, so that ``lucidtrace.probes.checks`` (whose trace-only checks need
# no model) imports without torch; the engine's names need the ``probes`` extra.
_EXPORTS = {
    "AttributionMethod": "lucidtrace.probes.attribution",
    "AttributionResult": "lucidtrace.probes.attribution",
    "LayerScore": "lucidtrace.probes.linear_probe",
    "LinearProbe": "lucidtrace.probes.linear_probe",
    "LoadedModel": "lucidtrace.probes.models",
    "ModelIdentity": "lucidtrace.probes.models",
    "ModelLoadError": "lucidtrace.probes.models",
    "ProbeIdentityError": "lucidtrace.probes.linear_probe",
    "ProbeReport": "lucidtrace.probes.linear_probe",
    "Score": "lucidtrace.probes.scoring",
    "Segment": "lucidtrace.probes.segments",
    "SegmentError": "lucidtrace.probes.segments",
    "SegmentScore": "lucidtrace.probes.attribution",
    "TokenSpan": "lucidtrace.probes.segments",
    "attribute": "lucidtrace.probes.attribution",
    "bag_of_tokens_baseline": "lucidtrace.probes.baselines",
    "capture_activations": "lucidtrace.probes.activations",
    "find_segment": "lucidtrace.probes.segments",
    "get_attribution_method": "lucidtrace.probes.attribution",
    "grouped_split": "lucidtrace.probes._probe_math",
    "join_parts": "lucidtrace.probes.segments",
    "list_attribution_methods": "lucidtrace.probes.attribution",
    "load_model": "lucidtrace.probes.models",
    "map_segments": "lucidtrace.probes.segments",
    "register_attribution_method": "lucidtrace.probes.attribution",
    "render_chat": "lucidtrace.probes.segments",
    "roc_auc": "lucidtrace.probes._probe_math",
    "score": "lucidtrace.probes.scoring",
    "score_many": "lucidtrace.probes.scoring",
    "score_truncations": "lucidtrace.probes.scoring",
    "wrap_model": "lucidtrace.probes.models",
}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lucidtrace.probes' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if error.name not in {"torch", "transformers", "numpy", "safetensors", "tokenizers"}:
            raise
        raise ImportError(
            f"lucidtrace.probes.{name} needs torch and transformers ({error}). "
            "Install them with: pip install 'lucidtrace[probes]'"
        ) from error
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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

"""The model-based checks register without importing torch, each with a complete declaration."""

from __future__ import annotations

import json
import subprocess
import sys

from lucidtrace.probes.checks.base import ACCESS_LEVELS, COSTS

MODEL_CHECKS = {
    "early_answering",
    "mistake_injection",
    "filler_control",
    "hint_test",
    "answer_probe",
    "citation_attribution",
    "explanation_consistency",
}


def test_listing_the_checks_imports_no_torch() -> None:
    code = (
        "import json, sys\n"
        "from lucidtrace.probes.checks.registry import list_checks\n"
        "infos = [vars(info) for info in list_checks()]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers'})\n"
        "print(json.dumps({'infos': infos, 'heavy': heavy}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    listed = json.loads(out)
    assert listed["heavy"] == []
    infos = {info["name"]: info for info in listed["infos"]}
    assert set(infos) >= MODEL_CHECKS
    for name in MODEL_CHECKS:
        info = infos[name]
        assert info["access"] in ACCESS_LEVELS[1:]
        assert info["cost"] in COSTS[1:]
        assert info["paper"]
        assert info["description"]
        assert info["score_meaning"]

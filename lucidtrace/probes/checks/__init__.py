"""Faithfulness checks: the interface (``base``), the registry and the built-in checks.

``list_checks()`` lists every registered check; ``lucidtrace.probes.checks.runner`` runs them on
stored traces. Nothing in this package imports torch at import time.
"""

from lucidtrace.probes.checks.base import (
    ACCESS_LEVELS,
    COSTS,
    FINDING_STATUSES,
    Check,
    CheckContext,
    CheckResult,
    SavedAttribution,
)
from lucidtrace.probes.checks.registry import (
    TRACE_ONLY,
    CheckInfo,
    get_check,
    list_checks,
    register_check,
)

__all__ = [
    "ACCESS_LEVELS",
    "COSTS",
    "FINDING_STATUSES",
    "TRACE_ONLY",
    "Check",
    "CheckContext",
    "CheckInfo",
    "CheckResult",
    "SavedAttribution",
    "get_check",
    "list_checks",
    "register_check",
]

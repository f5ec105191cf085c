"""The check registry: every faithfulness check, built-in or third-party, registers here.

Built-in checks register the same way a plugin does (:func:`register_check` as a class
decorator); they are loaded the first time the registry is read. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import TypeVar

from lucidtrace.probes.checks.base import ACCESS_LEVELS, COSTS, Check

__all__ = [
    "MODEL_CHECKS_MODULE",
    "TRACE_CHECKS_MODULE",
    "TRACE_ONLY",
    "CheckInfo",
    "get_check",
    "is_trace_only",
    "list_checks",
    "register_check",
    "unregister_check",
]

TRACE_ONLY = "trace"
"""The access level of checks that read the recorded trace only (no model)."""

TRACE_CHECKS_MODULE = "lucidtrace.probes.checks.trace_checks"
"""The module whose import registers the built-in trace-only checks."""

MODEL_CHECKS_MODULE = "lucidtrace.probes.checks.model_checks"
"""The package whose import registers the built-in model-based checks (it imports no torch at
module level; its checks import torch when they run)."""

_CLASS_ATTRIBUTES = (
    "name",
    "version",
    "access",
    "cost",
    "default_threshold",
    "description",
    "score_meaning",
    "paper",
)

CheckT = TypeVar("CheckT", bound=type)

_registry: dict[str, type[Check]] = {}
_lock = threading.RLock()
_builtins_loaded = False


@dataclass(frozen=True)
class CheckInfo:
    """What the registry tells about one check (the class attributes of :class:`Check`)."""

    name: str
    version: str
    access: str
    cost: str
    default_threshold: float
    description: str
    score_meaning: str
    paper: str

    @property
    def trace_only(self) -> bool:
        """True when the check needs no model."""
        return self.access == TRACE_ONLY


def register_check(check_class: CheckT) -> CheckT:
    """Register a check class (usable as a class decorator) and return it unchanged.

    Raises:
        TypeError: The class lacks one of the :class:`Check` attributes, has no ``run`` method,
            or declares an unknown access level or cost.
        ValueError: Another class is already registered under the same name.
    """
    missing = [attr for attr in _CLASS_ATTRIBUTES if not hasattr(check_class, attr)]
    if missing or not callable(getattr(check_class, "run", None)):
        raise TypeError(
            f"{check_class.__name__} is not a check: it needs the class attributes "
            f"{', '.join(_CLASS_ATTRIBUTES)} and a run(context, *, threshold) method "
            f"(missing: {', '.join(missing) or 'run'})"
        )
    name = str(check_class.name)  # type: ignore[attr-defined]
    access = check_class.access  # type: ignore[attr-defined]
    cost = check_class.cost  # type: ignore[attr-defined]
    if access not in ACCESS_LEVELS:
        raise TypeError(f"check {name!r}: unknown access {access!r}; use one of {ACCESS_LEVELS}")
    if cost not in COSTS:
        raise TypeError(f"check {name!r}: unknown cost {cost!r}; use one of {COSTS}")
    if not name or "," in name or name != name.strip():
        raise TypeError(f"check name {name!r} must be non-empty, without commas or outer spaces")
    with _lock:
        existing = _registry.get(name)
        if existing is not None and existing is not check_class:
            raise ValueError(
                f"a check named {name!r} is already registered ({existing.__module__}."
                f"{existing.__qualname__}): choose another name"
            )
        _registry[name] = check_class
    return check_class


def unregister_check(name: str) -> None:
    """Remove a check from the registry (for tests and plugins that replace one).

    Raises:
        KeyError: No check has that name.
    """
    _load_builtins()
    with _lock:
        if name not in _registry:
            raise KeyError(_unknown(name))
        del _registry[name]


def get_check(name: str) -> Check:
    """A new instance of the check registered as ``name``.

    Raises:
        KeyError: No check has that name (the message lists the known names).
    """
    _load_builtins()
    with _lock:
        check_class = _registry.get(name)
    if check_class is None:
        raise KeyError(_unknown(name))
    return check_class()


def list_checks() -> list[CheckInfo]:
    """Every registered check, trace-only ones first, then by cost and name."""
    _load_builtins()
    with _lock:
        classes = list(_registry.values())
    infos = [
        CheckInfo(
            name=cls.name,
            version=cls.version,
            access=cls.access,
            cost=cls.cost,
            default_threshold=float(cls.default_threshold),
            description=cls.description,
            score_meaning=cls.score_meaning,
            paper=cls.paper,
        )
        for cls in classes
    ]
    return sorted(
        infos,
        key=lambda info: (
            ACCESS_LEVELS.index(info.access) != 0,
            COSTS.index(info.cost),
            info.name,
        ),
    )


def is_trace_only(name: str) -> bool:
    """True when the check registered as ``name`` needs no model.

    Raises:
        KeyError: No check has that name.
    """
    _load_builtins()
    with _lock:
        check_class = _registry.get(name)
    if check_class is None:
        raise KeyError(_unknown(name))
    return check_class.access == TRACE_ONLY


def _unknown(name: str) -> str:
    with _lock:
        known = ", ".join(sorted(_registry)) or "none"
    return f"no check named {name!r}; known checks: {known}"


def _load_builtins() -> None:
    global _builtins_loaded  # noqa: PLW0603 - one-time lazy load of the built-in checks
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
        try:
            importlib.import_module(TRACE_CHECKS_MODULE)
            try:
                importlib.import_module(MODEL_CHECKS_MODULE)
            except ModuleNotFoundError as error:
                # Only a missing model_checks package is tolerated; a missing dependency
                # inside it is a real error.
                if error.name != MODEL_CHECKS_MODULE:
                    raise
        except BaseException:
            _builtins_loaded = False
            raise

"""The one shape every integration has: an :class:`Instrumentor`, and a registry of them.

An instrumentor imports its target library only inside :meth:`Instrumentor._instrument` (nothing
is patched, or even imported, at import time), patches it, and restores the originals in
:meth:`Instrumentor._uninstrument`. :meth:`~Instrumentor.instrument` and
:meth:`~Instrumentor.uninstrument` are idempotent and thread-safe; each instrumentor class has a
single instance, so ``OpenAIInstrumentor().instrument()`` twice patches once.

:func:`instrument` / :func:`uninstrument` (re-exported as ``lt.instrument`` /
``lt.uninstrument``) switch integrations on by name, importing the integration module lazily.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import threading
from typing import ClassVar, Self, TypeVar, cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api

__all__ = [
    "Instrumentor",
    "get_instrumentor",
    "install_hint",
    "instrument",
    "list_instrumentors",
    "register_instrumentor",
    "uninstrument",
]

_BUILTIN: dict[str, tuple[str, str]] = {
    "langchain": ("lucidtrace.tracer.integrations.langchain", "langchain_core"),
    "openai": ("lucidtrace.tracer.integrations.openai", "openai"),
}
"""Built-in integrations by name: (the module that registers it, its target library)."""

_registry: dict[str, type[Instrumentor]] = {}
_instances: dict[type[Instrumentor], Instrumentor] = {}
_registry_lock = threading.RLock()

_T = TypeVar("_T", bound="type[Instrumentor]")


def install_hint(package: str) -> str:
    """The command that installs what integration ``package`` needs.

    Args:
        package: The pip extra, e.g. ``"openai"``.

    Returns:
        ``pip install 'lucidtrace[openai]'``.
    """
    return f"pip install 'lucidtrace[{package}]'"


class Instrumentor(abc.ABC):
    """Base class of every integration: patch a library on demand, restore it on demand.

    Subclasses set :attr:`name` (what ``lt.instrument(name)`` takes), :attr:`package` (the pip
    extra named in the install hint) and :attr:`requires` (the modules that must be importable),
    and implement :meth:`_instrument` / :meth:`_uninstrument`.
    """

    name: ClassVar[str]
    """The integration's name, e.g. ``"openai"``."""
    package: ClassVar[str]
    """The pip extra that installs the target library, e.g. ``"openai"``."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Top-level modules the integration imports; missing ones raise the install hint."""

    _lock: threading.RLock
    _instrumented: bool

    def __new__(cls) -> Self:
        # One instance per class, so that two `OpenAIInstrumentor()` share one patch state.
        with _registry_lock:
            existing = _instances.get(cls)
            if existing is not None:
                return cast("Self", existing)
            instance = super().__new__(cls)
            instance._lock = threading.RLock()
            instance._instrumented = False
            _instances[cls] = instance
            return instance

    @property
    def is_instrumented(self) -> bool:
        """Whether the target library is patched now."""
        return self._instrumented

    def instrument(self) -> None:
        """Patch the target library; a second call does nothing.

        Raises:
            ImportError: The target library is not installed; the message says what to install.
        """
        with self._lock:
            if self._instrumented:
                return
            self.check_dependencies()
            self._instrument()
            self._instrumented = True

    def uninstrument(self) -> None:
        """Restore the target library's originals; a call when not instrumented does nothing."""
        with self._lock:
            if not self._instrumented:
                return
            self._uninstrument()
            self._instrumented = False

    def check_dependencies(self) -> None:
        """Raise the install hint when a module in :attr:`requires` cannot be imported.

        Raises:
            ImportError: A required module is missing; the message says what to install.
        """
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ImportError(
                    f"lucidtrace's {self.name} integration needs the {module!r} package: "
                    f"{install_hint(self.package)}"
                ) from exc

    @abc.abstractmethod
    def _instrument(self) -> None:
        """Import the target library and patch it (called once, under the lock)."""

    @abc.abstractmethod
    def _uninstrument(self) -> None:
        """Restore every original patched by :meth:`_instrument` (called under the lock)."""


def register_instrumentor(cls: _T) -> _T:
    """Register an instrumentor class under its :attr:`~Instrumentor.name` (usable as decorator).

    Args:
        cls: A concrete :class:`Instrumentor` subclass.

    Returns:
        ``cls`` unchanged.

    Raises:
        TypeError: ``cls`` is not an :class:`Instrumentor` subclass or has no ``name``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Instrumentor)):
        raise TypeError(f"{cls!r} is not an Instrumentor subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} has no `name`")
    with _registry_lock:
        _registry[name] = cls
    return cls


def list_instrumentors() -> list[str]:
    """The names :func:`instrument` accepts: the built-in integrations and registered ones."""
    with _registry_lock:
        return sorted(set(_BUILTIN) | set(_registry))


def get_instrumentor(name: str) -> Instrumentor:
    """The (single) instrumentor registered as ``name``, importing its module if built in.

    Args:
        name: An integration name, e.g. ``"openai"``.

    Returns:
        The instrumentor instance.

    Raises:
        ValueError: No integration has this name.
        ImportError: The integration's target library is missing (with the install hint).
    """
    with _registry_lock:
        cls = _registry.get(name)
    if cls is None:
        builtin = _BUILTIN.get(name)
        if builtin is None:
            known = ", ".join(repr(n) for n in list_instrumentors())
            raise ValueError(f"unknown integration {name!r}; known: {known}")
        try:
            importlib.import_module(builtin[0])
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith("lucidtrace"):
                raise
            raise ImportError(
                f"lucidtrace's {name} integration needs the {exc.name!r} package: "
                f"{install_hint(name)}"
            ) from exc
        with _registry_lock:
            cls = _registry[name]
    return cls()


def _available(name: str) -> bool:
    builtin = _BUILTIN.get(name)
    return builtin is None or importlib.util.find_spec(builtin[1]) is not None


def instrument(*names: str) -> None:
    """Switch integrations on by name: ``lt.instrument("openai", "langchain")``.

    Each call is idempotent. With no names, every built-in integration whose target library is
    installed (and every registered one) is switched on.

    Args:
        *names: Integration names (see :func:`list_instrumentors`).

    Raises:
        ValueError: An unknown name.
        ImportError: A named integration's library is missing; the message says what to install.
    """
    selected = names or tuple(n for n in list_instrumentors() if _available(n))
    for name in selected:
        get_instrumentor(name).instrument()


def uninstrument(*names: str) -> None:
    """Switch integrations off by name; with no names, every instrumented one.

    Args:
        *names: Integration names (see :func:`list_instrumentors`).

    Raises:
        ValueError: An unknown name.
    """
    if names:
        for name in names:
            try:
                instrumentor = get_instrumentor(name)
            except ImportError:
                continue  # a library that is not installed was never patched
            instrumentor.uninstrument()
        return
    with _registry_lock:
        instances = list(_instances.values())
    for instance in instances:
        instance.uninstrument()


LLM_RUN_KEY = context_api.create_key("lucidtrace-llm-run")
"""Context key holding the span of a framework's LLM run (LangChain) while that run is current.

A model call made by that run (an OpenAI client called by ``ChatOpenAI``) is already recorded by
the run's LLM span: the OpenAI integration sees this and starts no second LLM span for it.
"""


def inside_llm_run() -> bool:
    """Whether the current span is the LLM span of a framework run that records the call."""
    span = context_api.get_value(LLM_RUN_KEY)
    return span is not None and span is trace_api.get_current_span()

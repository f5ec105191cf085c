"""Integrations: one line switches tracing on for an agent framework or LLM client.

``lt.instrument("openai", "langchain")`` patches the named libraries (each integration imports
its library only then); ``lt.uninstrument()`` restores them. Every integration is an
:class:`Instrumentor`, registered by name: ``lucidtrace.tracer.integrations.openai``
(``wrap_openai``, ``OpenAIInstrumentor``) and ``lucidtrace.tracer.integrations.langchain``
(``CallbackHandler``, ``LangChainInstrumentor``). This package imports none of those libraries.
"""

from lucidtrace.tracer.integrations._base import (
    Instrumentor,
    get_instrumentor,
    install_hint,
    instrument,
    list_instrumentors,
    register_instrumentor,
    uninstrument,
)

__all__ = [
    "Instrumentor",
    "get_instrumentor",
    "install_hint",
    "instrument",
    "list_instrumentors",
    "register_instrumentor",
    "uninstrument",
]

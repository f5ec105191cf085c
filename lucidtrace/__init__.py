"""lucidtrace: agent tracing and reasoning transparency.

Wrap your agent, and its reasoning audit trail lands in a local SQLite file::

    import lucidtrace as lt

    lt.configure()  # ./lucidtrace.db; LUCIDTRACE_DATABASE_URL or database_url= overrides


    def search(query: str) -> str:
        return "Iceland has 387,758 inhabitants (2024)."


    @lt.traced(kind="agent")  # sync, async, generator and async-generator functions
    def run(question: str) -> str:
        lt.thought("I need Iceland's population, then its square.")
        with lt.tool_call("search", {"query": "Iceland population"}) as call:
            call.set_result(search("Iceland population"))  # an exception here is the tool's error
        lt.retrieval(
            "Iceland population",
            documents=[{"id": "doc-3", "content": "...", "score": 0.91, "source": "wiki"}],
        )
        return lt.answer("About 387,758 people [doc-3].", cites=["doc-3"])


    run("How many people live in Iceland?")
    lt.flush()  # also runs at interpreter exit

Then ``lucidtrace traces show latest`` prints the thought, the action, the observation, the
retrieval and the answer with its citation, in order.
"""

from lucidtrace.tracer import (
    MaskFn,
    SpanHandle,
    ToolCall,
    TracerStats,
    answer,
    configure,
    context,
    flush,
    get_stats,
    instrument,
    retrieval,
    shutdown,
    span,
    thought,
    tool_call,
    trace_attributes,
    traced,
    uninstrument,
)

__all__ = [
    "MaskFn",
    "SpanHandle",
    "ToolCall",
    "TracerStats",
    "answer",
    "configure",
    "context",
    "flush",
    "get_stats",
    "instrument",
    "retrieval",
    "shutdown",
    "span",
    "thought",
    "tool_call",
    "trace_attributes",
    "traced",
    "uninstrument",
]

"""LangChain and LangGraph: a callback handler that records runs as lucidtrace spans.

Pass :class:`CallbackHandler` as a callback, or switch it on for every run in the process::

    import lucidtrace as lt
    from lucidtrace.tracer.integrations.langchain import CallbackHandler

    lt.configure()
    agent.invoke({"input": "..."}, config={"callbacks": [CallbackHandler()]})
    # or, once, for everything: lt.instrument("langchain")

Every LangChain run becomes an OpenTelemetry span, parented by LangChain's ``parent_run_id``
(never by the ambient context, which LangChain does not carry to the threads it calls callbacks
from; only a run with no LangChain parent nests under the span current when it starts):

* chains are ``CHAIN`` spans; the outermost run of an agent (``AgentExecutor``, a LangGraph
  graph that ends with an AI message) is an ``AGENT`` span whose final output is its answer;
* LLM and chat-model calls are ``LLM`` spans with ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (text, reasoning and tool-call parts), model names and token usage:
  the ingest mapper reads ReAct text, ``<think>`` blocks, reasoning parts and proposed tool calls
  from them;
* tools are ``TOOL`` spans (``execute_tool {name}``) with their arguments, result or error and
  the model's tool-call id; retrievers are ``RETRIEVER`` spans with the query and the documents.

A failure inside the handler is logged once and never reaches the agent. A run that never ends
(its process was interrupted, say) is closed by :meth:`CallbackHandler.flush`.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast
from uuid import UUID

# This module is the LangChain integration: it is imported only by `lt.instrument("langchain")`
# or by code that uses LangChain already, never by `import lucidtrace`.
from langchain_core.callbacks import BaseCallbackHandler  # noqa: TID253
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from lucidtrace.tracer import _config, semconv
from lucidtrace.tracer._log import log_once, logger
from lucidtrace.tracer._serialize import to_json
from lucidtrace.tracer._spans import KIND_ATTRIBUTES, record_error
from lucidtrace.tracer.integrations import _langchain_messages as lc
from lucidtrace.tracer.integrations._base import (
    LLM_RUN_KEY,
    Instrumentor,
    register_instrumentor,
)

if TYPE_CHECKING:
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult

__all__ = ["CallbackHandler", "LangChainInstrumentor"]

_HIDDEN_TAG = "langsmith:hidden"  # LangGraph's internal plumbing runs (writes, branches)
_UNFINISHED = "the LangChain run had not ended when the handler was flushed"


@dataclass
class _Run:
    """One open LangChain run and its span."""

    span: trace_api.Span
    kind: str
    root: UUID  # the outermost recorded run of the same LangChain invocation
    is_root: bool
    # The token of the context that made the span current where the run started (None if not).
    token: Token[Any] | None = None
    # Kept on the root run only: what its descendants produced.
    llm_texts: list[str] = field(default_factory=list)
    retrieved: dict[str, str | None] = field(default_factory=dict)


class CallbackHandler(BaseCallbackHandler):
    """Records LangChain and LangGraph runs as lucidtrace spans (see the module docstring).

    One handler may serve any number of concurrent runs (``batch``, ``abatch``, threads): each
    run is keyed by its ``run_id``. With nothing configured (``lt.configure()`` not called) it
    records nothing.
    """

    raise_error: bool = False
    run_inline: bool = True  # cheap, thread-safe: no need for LangChain's executor hop

    def __init__(self) -> None:
        """Create a handler; it uses lucidtrace's tracer as configured when each run starts."""
        super().__init__()
        self._lock = threading.Lock()
        self._runs: dict[UUID, _Run] = {}
        self._skipped: dict[UUID, UUID | None] = {}  # hidden run -> its recorded ancestor

    # ------------------------------------------------------------------ span plumbing

    def _parent(self, parent_run_id: UUID | None) -> tuple[_Run | None, UUID | None]:
        seen = 0
        while parent_run_id is not None and parent_run_id in self._skipped and seen < 1000:
            parent_run_id = self._skipped[parent_run_id]
            seen += 1
        if parent_run_id is None:
            return None, None
        return self._runs.get(parent_run_id), parent_run_id

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: str,
        attributes: dict[str, AttributeValue],
    ) -> _Run | None:
        tracer = _config.STATE.tracer
        if tracer is None:
            return None
        with self._lock:
            parent, _ = self._parent(parent_run_id)
            if parent is not None:
                context = trace_api.set_span_in_context(parent.span, context_api.Context())
            else:
                context = None  # a LangChain root nests under the span current in its caller
            span = tracer.start_span(
                name, context=context, attributes={**KIND_ATTRIBUTES[kind], **attributes}
            )
            run = _Run(
                span=span,
                kind=kind,
                root=parent.root if parent is not None else run_id,
                is_root=parent is None,
            )
            self._runs[run_id] = run
        run.token = _attach(span, kind)
        return run

    def _pop(self, run_id: UUID) -> _Run | None:
        with self._lock:
            self._skipped.pop(run_id, None)
            run = self._runs.pop(run_id, None)
        if run is not None:
            _detach(run)
        return run

    def _root_of(self, run: _Run) -> _Run | None:
        with self._lock:
            return self._runs.get(run.root)

    def _end(self, run_id: UUID, error: BaseException | None = None) -> _Run | None:
        run = self._pop(run_id)
        if run is None:
            return None
        if error is not None:
            record_error(run.span, error)
        run.span.end()
        return run

    def flush(self, timeout: float | None = 30.0) -> bool:
        """End the span of every run still open (marked as not finished), then flush lucidtrace.

        Call it when no run should be in progress any more (the end of a serverless
        invocation, say): spans of runs that never ended would otherwise never be stored.

        Returns:
            What :func:`lucidtrace.flush` returns: whether everything was stored in time.
        """
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
            self._skipped.clear()
        for run in reversed(runs):  # the latest first: contexts are restored in order
            try:
                _detach(run)
                run.span.set_status(Status(StatusCode.ERROR, _UNFINISHED))
                run.span.set_attribute(semconv.ERROR_TYPE, "RunNotFinished")
                run.span.end()
            except Exception:
                log_once("langchain-flush", "lucidtrace: could not close a run", exc_info=True)
        return _config.flush(timeout)

    def shutdown(self, timeout: float | None = 30.0) -> bool:
        """The same as :meth:`flush` (a handler holds nothing else)."""
        return self.flush(timeout)

    @property
    def open_runs(self) -> int:
        """How many runs have started and not ended yet."""
        with self._lock:
            return len(self._runs)

    # ------------------------------------------------------------------ chains and agents

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start a ``CHAIN`` span (LangGraph's hidden plumbing runs are skipped)."""
        try:
            if tags and _HIDDEN_TAG in tags:
                with self._lock:
                    _, ancestor = self._parent(parent_run_id)
                    self._skipped[run_id] = ancestor
                return
            name = lc.run_name(serialized, kwargs, "chain")
            attributes: dict[str, AttributeValue] = {semconv.INPUT: to_json(inputs)}
            session = lc.session_of(metadata)
            if session is not None:
                attributes[semconv.SESSION_ID] = session
            kind = "AGENT" if name == "AgentExecutor" else "CHAIN"
            if kind == "AGENT":
                attributes[semconv.AGENT_NAME] = name
            self._start(run_id, parent_run_id, name, kind, attributes)
        except Exception:
            _failed("chain-start")

    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """Record the chain's output; the outermost run of an agent also records its answer."""
        try:
            with self._lock:
                run = self._runs.get(run_id)
            if run is None:
                self._pop(run_id)
                return
            final = lc.final_message(outputs) if run.is_root else None
            if final is not None:
                self._answer(run, final)
            elif run.kind == "AGENT" and isinstance(outputs, Mapping) and "output" in outputs:
                run.span.set_attribute(semconv.OUTPUT, to_json(outputs["output"]))
            else:
                run.span.set_attribute(semconv.OUTPUT, to_json(outputs))
            self._end(run_id)
        except Exception:
            _failed("chain-end")

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """End the chain's span with the error."""
        try:
            self._end(run_id, lc.real_error(error))
        except Exception:
            _failed("chain-error")

    def _mark_agent(self, run: _Run) -> None:
        if run.kind != "AGENT":
            run.kind = "AGENT"
            run.span.set_attributes(KIND_ATTRIBUTES["AGENT"])

    def _answer(self, run: _Run, message: BaseMessage) -> None:
        """The graph ended with an AI message: that message is the agent's answer."""
        self._mark_agent(run)
        text = lc.strip_think(lc.text_of(message.content))
        run.span.set_attribute(semconv.OUTPUT, to_json(text))
        cites = lc.citations(message, text, run.retrieved)
        run.span.add_event(
            semconv.EVENT_ANSWER,
            {semconv.ANSWER_TEXT: text, semconv.ANSWER_CITATIONS: tuple(cites)},
        )

    def on_agent_action(
        self,
        action: AgentAction,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """Mark the run an agent; its ReAct log counts when no traced LLM call wrote it."""
        try:
            self._agent_log(run_id, str(getattr(action, "log", "") or ""), finish=None)
        except Exception:
            _failed("agent-action")

    def on_agent_finish(
        self,
        finish: AgentFinish,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """Mark the run an agent; its final answer is recorded when the chain ends."""
        try:
            self._agent_log(run_id, str(getattr(finish, "log", "") or ""), finish=finish)
        except Exception:
            _failed("agent-finish")

    def _agent_log(self, run_id: UUID, log: str, finish: AgentFinish | None) -> None:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return
        self._mark_agent(run)
        root = self._root_of(run) or run
        if not log.strip() or any(log.strip() in text for text in root.llm_texts):
            return  # the LLM span already holds this text; its steps come from there
        # No traced LLM call wrote the log (a custom agent): record its reasoning here.
        from lucidtrace.store._react import parse_react  # noqa: PLC0415 - rarely needed

        for step in parse_react(log):
            if step.type == "THOUGHT" and step.text:
                run.span.add_event(semconv.EVENT_THOUGHT, {semconv.THOUGHT_TEXT: step.text})
        if finish is not None:
            output = getattr(finish, "return_values", {}).get("output")
            if output is not None:
                text = lc.text_of(output)
                run.span.add_event(
                    semconv.EVENT_ANSWER,
                    {
                        semconv.ANSWER_TEXT: text,
                        semconv.ANSWER_CITATIONS: tuple(lc.citations(None, text, root.retrieved)),
                    },
                )

    # ------------------------------------------------------------------ LLMs

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start an ``LLM`` span for a text-completion model."""
        try:
            messages = [
                {"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts
            ]
            self._start_llm(
                run_id,
                parent_run_id,
                serialized,
                kwargs,
                metadata=metadata,
                operation="text_completion",
                messages=messages,
            )
        except Exception:
            _failed("llm-start")

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start an ``LLM`` span for a chat model."""
        try:
            system, inputs = lc.genai_messages(messages[0] if messages else [])
            self._start_llm(
                run_id,
                parent_run_id,
                serialized,
                kwargs,
                metadata=metadata,
                operation="chat",
                messages=inputs,
                system=system,
            )
        except Exception:
            _failed("chat-start")

    def _start_llm(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        serialized: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        *,
        metadata: Mapping[str, Any] | None,
        operation: str,
        messages: list[dict[str, Any]],
        system: list[dict[str, Any]] | None = None,
    ) -> None:
        params = kwargs.get("invocation_params") or {}
        meta = metadata or {}
        model = lc.first_str(params, "model", "model_name") or lc.first_str(meta, "ls_model_name")
        attributes: dict[str, AttributeValue] = {
            semconv.OPERATION_NAME: operation,
            semconv.INPUT_MESSAGES: to_json(messages),
        }
        if system:
            attributes[semconv.SYSTEM_INSTRUCTIONS] = to_json(system)
        if model:
            attributes[semconv.REQUEST_MODEL] = model
        provider = lc.first_str(meta, "ls_provider")
        if provider:
            attributes[semconv.PROVIDER_NAME] = provider
        name = f"{operation} {model}" if model else lc.run_name(serialized, kwargs, operation)
        self._start(run_id, parent_run_id, name, "LLM", attributes)

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Record the model's output messages, the model that answered and the token usage."""
        try:
            run = self._pop(run_id)
            if run is None:
                return
            try:
                self._llm_output(run, response)
            finally:
                run.span.end()
        except Exception:
            _failed("llm-end")

    def _llm_output(self, run: _Run, response: LLMResult) -> None:
        generations = response.generations[0] if response.generations else []
        outputs = lc.output_messages(generations)
        span = run.span
        span.set_attribute(semconv.OUTPUT_MESSAGES, to_json(outputs))
        model = lc.response_model(generations, response.llm_output)
        if model:
            span.set_attribute(semconv.RESPONSE_MODEL, model)
        tokens = lc.usage(generations, response.llm_output)
        for key, attribute in (
            ("input", semconv.USAGE_INPUT_TOKENS),
            ("output", semconv.USAGE_OUTPUT_TOKENS),
            ("reasoning", semconv.USAGE_REASONING_TOKENS),
        ):
            if key in tokens:
                span.set_attribute(attribute, tokens[key])
        root = self._root_of(run)
        if root is not None:
            texts = [p["content"] for m in outputs for p in m["parts"] if p["type"] == "text"]
            with self._lock:
                root.llm_texts.extend(t for t in texts if t.strip())
                del root.llm_texts[:-50]  # only the recent ones can match an agent's log

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """End the LLM span with the error."""
        try:
            self._end(run_id, error)
        except Exception:
            _failed("llm-error")

    # ------------------------------------------------------------------ tools

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start a ``TOOL`` span: the action, with the tool's arguments and the call's id."""
        try:
            name = lc.run_name(serialized, kwargs, "tool")
            # A structured call's arguments as JSON; a plain string input as the tool got it.
            arguments = to_json(inputs) if isinstance(inputs, dict) else input_str
            attributes: dict[str, AttributeValue] = {
                semconv.TOOL_NAME: name,
                semconv.TOOL_CALL_ARGUMENTS: arguments,
            }
            call_id = kwargs.get("tool_call_id")
            if call_id:
                attributes[semconv.TOOL_CALL_ID] = str(call_id)
            description = serialized.get("description") if serialized else None
            if isinstance(description, str) and description:
                attributes[semconv.TOOL_DESCRIPTION] = description
            self._start(run_id, parent_run_id, f"execute_tool {name}", "TOOL", attributes)
        except Exception:
            _failed("tool-start")

    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """Record the observation: the tool's result (a tool message marked error is an error)."""
        try:
            run = self._pop(run_id)
            if run is None:
                return
            try:
                lc.record_tool_result(run.span, output)
            finally:
                run.span.end()
        except Exception:
            _failed("tool-end")

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """End the tool's span with its error (the observation is the error)."""
        try:
            self._end(run_id, lc.real_error(error))
        except Exception:
            _failed("tool-error")

    # ------------------------------------------------------------------ retrievers

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start a ``RETRIEVER`` span with the query."""
        try:
            name = lc.run_name(serialized, kwargs, "retriever")
            attributes: dict[str, AttributeValue] = {
                semconv.RETRIEVAL_QUERY: str(query),
                semconv.DATA_SOURCE_ID: name,
            }
            self._start(run_id, parent_run_id, f"retrieval {name}", "RETRIEVER", attributes)
        except Exception:
            _failed("retriever-start")

    def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """Record the documents, best first, with their ids, scores and metadata."""
        try:
            run = self._pop(run_id)
            if run is None:
                return
            try:
                docs = [lc.document(doc, rank) for rank, doc in enumerate(documents)]
                run.span.set_attribute(semconv.RETRIEVAL_DOCUMENTS, to_json(docs))
                root = self._root_of(run)
                if root is not None:
                    with self._lock:
                        root.retrieved.update({d["id"]: d.get("source") for d in docs})
            finally:
                run.span.end()
        except Exception:
            _failed("retriever-end")

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """End the retriever's span with the error."""
        try:
            self._end(run_id, error)
        except Exception:
            _failed("retriever-error")


# ---------------------------------------------------------------------- helpers


def _attach(span: trace_api.Span, kind: str) -> Token[Any] | None:
    """Make a run's span current where the run starts, so work done inside nests under it.

    LangChain runs a tool's, chain's or model's body in (a copy of) the context its start
    callback ran in: ``lt.thought``, ``@lt.traced`` functions and instrumented clients called
    there become children of the run's span. An LLM run's context also carries
    :data:`LLM_RUN_KEY`, so the model call it makes is not recorded a second time.
    """
    try:
        context = trace_api.set_span_in_context(span)
        if kind == "LLM":
            context = context_api.set_value(LLM_RUN_KEY, span, context)
        return cast("Token[Any]", context_api.attach(context))
    except Exception:
        _failed("attach")
        return None


def _detach(run: _Run) -> None:
    """Undo :func:`_attach` when the run ends in the context it started in; else leave it.

    A run that ends in another context (another thread or task) cannot restore the one it
    started in: that context's copy goes away with its thread or task.
    """
    token, run.token = run.token, None
    if token is None:
        return
    with contextlib.suppress(ValueError, RuntimeError):  # another context; or reset already
        token.var.reset(token)


def _failed(where: str) -> None:
    log_once(
        f"langchain-{where}", "lucidtrace: the LangChain handler failed (%s)", where, exc_info=True
    )


# ---------------------------------------------------------------------- global installation


class _HandlerSlot:
    """Stands in for a context variable in LangChain's configure hooks: the global handler.

    ``register_configure_hook`` asks its variable for a handler on every run's configuration.
    A real ``ContextVar`` set in one thread is invisible in others, so this slot answers the
    same handler in every thread and context while instrumented, and ``None`` after.
    """

    def __init__(self) -> None:
        self.handler: CallbackHandler | None = None

    def get(self, default: Any = None) -> CallbackHandler | None:
        return self.handler if self.handler is not None else default


_SLOT = _HandlerSlot()
_hook_registered = False


@register_instrumentor
class LangChainInstrumentor(Instrumentor):
    """Adds one :class:`CallbackHandler` to every LangChain run in the process.

    Uses LangChain's configure hooks (``langchain_core.tracers.context.register_configure_hook``):
    the handler is added, inheritably, to every callback manager LangChain configures, and is
    skipped where a :class:`CallbackHandler` was passed explicitly. ``uninstrument()`` closes
    the runs still open and stops adding it.
    """

    name: ClassVar[str] = "langchain"
    package: ClassVar[str] = "langchain"
    requires: ClassVar[tuple[str, ...]] = ("langchain_core",)

    @property
    def handler(self) -> CallbackHandler | None:
        """The handler in use while instrumented."""
        return _SLOT.handler

    def _instrument(self) -> None:
        global _hook_registered  # noqa: PLW0603 - LangChain's hook list only grows: add once
        from langchain_core.tracers.context import register_configure_hook

        if not _hook_registered:
            register_configure_hook(
                cast("ContextVar[Any]", _SLOT), inheritable=True, handle_class=CallbackHandler
            )
            _hook_registered = True
            atexit.register(_close_at_exit)
        _SLOT.handler = CallbackHandler()

    def _uninstrument(self) -> None:
        handler, _SLOT.handler = _SLOT.handler, None
        if handler is not None:
            with contextlib.suppress(Exception):
                handler.flush(timeout=5.0)


def _close_at_exit() -> None:
    handler = _SLOT.handler
    if handler is not None and handler.open_runs:
        logger.debug("lucidtrace: closing %d unfinished LangChain runs", handler.open_runs)
        handler.flush(timeout=5.0)

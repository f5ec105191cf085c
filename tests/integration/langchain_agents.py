"""Real LangChain agents for the integration tests: tools, a retriever and scripted models.

Nothing here talks to a network: the models are LangChain's own fake models (or small
subclasses of them that answer by rule), fed scripted completions.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_classic.agents import AgentExecutor, create_react_agent
from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, create_retriever_tool, tool
from opentelemetry.sdk.trace import ReadableSpan

POPULATION = {
    "iceland": "Iceland has 387,758 inhabitants (2024).",
    "malta": "Malta has 563,443 inhabitants (2024).",
    "monaco": "Monaco has 38,631 inhabitants (2024).",
}

CORPUS = [
    Document(
        id="doc-3",
        page_content="Iceland's population passed 387,000 in 2024.",
        metadata={"id": "doc-3", "source": "statice", "score": 0.91},
    ),
    Document(
        id="doc-7",
        page_content="Reykjavik is the capital of Iceland.",
        metadata={"id": "doc-7", "source": "wiki", "score": 0.42},
    ),
    Document(
        id="doc-9",
        page_content="Malta is an island country in the Mediterranean.",
        metadata={"id": "doc-9", "source": "wiki", "score": 0.88},
    ),
]

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    raise ValueError(f"unsupported expression: {ast.dump(node)[:60]}")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as 2 * (3 + 4)."""
    value = _evaluate(ast.parse(expression.replace(",", ""), mode="eval"))
    return str(int(value)) if float(value).is_integer() else str(value)


@tool
def search(query: str) -> str:
    """Look up a country's population."""
    for country, fact in POPULATION.items():
        if country in query.lower():
            return fact
    return "No result."


class CorpusRetriever(BaseRetriever):
    """Keyword retriever over :data:`CORPUS`, best score first."""

    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = {w.strip("?.,").lower() for w in query.split()}
        hits = [
            d for d in CORPUS if words & {w.strip("?.,'s").lower() for w in d.page_content.split()}
        ]
        return sorted(hits, key=lambda d: -d.metadata["score"])[: self.k]


def docs_tool() -> BaseTool:
    """The retriever as a tool the agents can call."""
    return create_retriever_tool(
        CorpusRetriever(), "docs", "Search the document corpus for facts about a country."
    )


REACT_PROMPT = PromptTemplate.from_template(
    "Answer the question. You have these tools:\n{tools}\n\n"
    "Use this format:\nThought: ...\nAction: one of [{tool_names}]\nAction Input: ...\n"
    "Observation: ...\n(repeat)\nThought: I now know the final answer\nFinal Answer: ...\n\n"
    "Question: {input}\nThought:{agent_scratchpad}"
)

REACT_SCRIPT = [
    " I need the population of Iceland.\nAction: search\nAction Input: Iceland population",
    " Let me confirm it in the documents.\nAction: docs\nAction Input: Iceland population",
    " Now I double it.\nAction: calculator\nAction Input: 387758 * 2",
    " I now know the final answer.\nFinal Answer: Iceland has 387,758 people [doc-3]; "
    "twice that is 775516.",
]


def react_agent(script: Sequence[str] = REACT_SCRIPT) -> AgentExecutor:
    """A text ReAct agent (``create_react_agent`` + ``AgentExecutor``) over scripted text."""
    llm = FakeListLLM(responses=list(script))
    tools = [search, docs_tool(), calculator]
    agent = create_react_agent(llm, tools, REACT_PROMPT)
    return AgentExecutor(agent=agent, tools=tools, max_iterations=8)


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, able to be bound to tools (the binding changes nothing)."""

    def bind_tools(  # type: ignore[override] # the binding changes nothing
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[Any, BaseMessage]:
        return self


GRAPH_SCRIPT = [
    AIMessage(
        content="",
        additional_kwargs={"reasoning_content": "I should look the population up first."},
        tool_calls=[{"name": "search", "args": {"query": "Iceland"}, "id": "call_search_1"}],
        usage_metadata={"input_tokens": 50, "output_tokens": 12, "total_tokens": 62},
    ),
    AIMessage(
        content="",
        tool_calls=[{"name": "docs", "args": {"query": "Iceland population"}, "id": "call_docs_1"}],
    ),
    AIMessage(
        content="<think>Double 387758.</think>",
        tool_calls=[
            {"name": "calculator", "args": {"expression": "387758 * 2"}, "id": "call_calc_1"}
        ],
    ),
    AIMessage(content="Iceland has 387,758 people [doc-3]; twice that is 775516."),
]

PARALLEL_SCRIPT = [
    AIMessage(
        content="",
        tool_calls=[
            {"name": "search", "args": {"query": "Iceland"}, "id": "call_a"},
            {"name": "search", "args": {"query": "Malta"}, "id": "call_b"},
            {"name": "docs", "args": {"query": "Malta"}, "id": "call_c"},
        ],
    ),
    AIMessage(content="Iceland and Malta together have 951,201 people."),
]


def graph_agent(script: Sequence[AIMessage] = GRAPH_SCRIPT) -> Any:
    """A ``create_agent`` (LangGraph) tool-calling agent over a scripted chat model."""
    from langchain.agents import create_agent

    model = ScriptedChatModel(messages=iter(list(script)))
    return create_agent(
        model, [search, docs_tool(), calculator], system_prompt="You answer population questions."
    )


class RuleChatModel(BaseChatModel):
    """A chat model that answers by rule, so concurrent runs get their own answers.

    Asked a question, it calls ``search`` with the question's last word; given the tool's
    result, it answers with that result.
    """

    @property
    def _llm_type(self) -> str:
        return "rule-chat"

    def bind_tools(  # type: ignore[override] # the binding changes nothing
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[Any, BaseMessage]:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            message = AIMessage(content=f"Answer: {last.content}")
        else:
            country = str(last.content).rstrip("?").split()[-1]
            message = AIMessage(
                content="",
                tool_calls=[
                    {"name": "search", "args": {"query": country}, "id": f"call_{country}"}
                ],
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


def rule_agent() -> Any:
    """A ``create_agent`` agent over :class:`RuleChatModel` with the search tool."""
    from langchain.agents import create_agent

    return create_agent(RuleChatModel(), [search])


def step_summary(steps: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """``(type, tool_name, tool_args, text)`` of each step (what a reader of the trail sees)."""
    return [(s["type"], s["tool_name"], s["tool_args"], s["text"]) for s in steps]


def iter_types(steps: Sequence[dict[str, Any]]) -> Iterator[str]:
    """The step types, in order."""
    return (s["type"] for s in steps)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    """A finished span's attributes as a plain dict."""
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int:
    """The span id of a span's parent (the span must have one)."""
    assert span.parent is not None
    return span.parent.span_id

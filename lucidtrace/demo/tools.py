"""The demo agent's tools: a safe calculator and a BM25 search over the demo corpus.

The calculator parses arithmetic with :mod:`ast` and evaluates only numbers and arithmetic
operators (never ``eval``). The search tool wraps a LangChain retriever, so every search is
recorded as a retrieval with its documents (ids, scores, sources) and the agent sees each
document's text prefixed with its id.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_core.tools.retriever import create_retriever_tool

__all__ = [
    "CalculatorError",
    "CorpusDocument",
    "CorpusRetriever",
    "calculate",
    "calculator_tool",
    "demo_tools",
    "load_corpus",
    "search_tool",
]

_MAX_EXPONENT = 64
_MAX_DIGITS = 60
_MAX_EXPRESSION = 200


class CalculatorError(ToolException):
    """The calculator was given something that is not plain arithmetic (the message says why)."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_SQUARED = re.compile(r"\b(squared)\b", re.IGNORECASE)
_TIMES = re.compile(r"(?<=[\d)\s])[x\u00d7](?=[\s\d(])", re.IGNORECASE)


def _normalise(expression: str) -> str:
    text = expression.strip().strip("`\"'").strip()
    text = text.rstrip(".=? ").strip()
    text = _THOUSANDS.sub("", text)
    text = _SQUARED.sub("** 2", text)
    text = _TIMES.sub("*", text)
    return text.replace("^", "**").replace("\u2212", "-").replace("\u00f7", "/")


def _check_size(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    if isinstance(value, int) and len(str(abs(value))) > _MAX_DIGITS:
        raise CalculatorError(f"the result has more than {_MAX_DIGITS} digits")
    return value


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check_size(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise CalculatorError(f"exponents above {_MAX_EXPONENT} are not supported")
        try:
            return _check_size(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    raise CalculatorError(
        "only numbers and + - * / // % ** ^ with parentheses are supported, e.g. 387758 ** 2"
    )


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly where it can (integers stay integers).

    Thousands separators (``387,758``), ``^`` for powers, ``x`` and the multiplication sign for
    products, and ``N squared`` are accepted. Anything else (names, calls, attributes) is refused.

    Args:
        expression: Arithmetic such as ``387758 ** 2`` or ``(3 + 4) * 2``.

    Returns:
        The value as text: an integer without separators, or a float with up to 12 digits.

    Raises:
        CalculatorError: The text is not arithmetic, divides by zero, or the result is too large.
    """
    if len(expression) > _MAX_EXPRESSION:
        raise CalculatorError(f"expressions are limited to {_MAX_EXPRESSION} characters")
    text = _normalise(expression)
    if not text:
        raise CalculatorError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(
            f"{expression!r} is not an arithmetic expression; write it like 387758 ** 2"
        ) from None
    value = _evaluate(tree)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    return str(value)


def _calculator(expression: str) -> str:
    return calculate(expression)


def calculator_tool() -> BaseTool:
    """The calculator as a LangChain tool; refusals come back to the agent as the observation."""
    return StructuredTool.from_function(
        func=_calculator,
        name="calculator",
        description="Computes arithmetic, e.g. 387758 ** 2 or (3 + 4) * 2.",
        handle_tool_error=True,
    )


# ----------------------------------------------------------------------------- search


@dataclass(frozen=True)
class CorpusDocument:
    """One document of the demo corpus."""

    id: str
    title: str
    content: str
    source: str


@cache
def load_corpus() -> tuple[CorpusDocument, ...]:
    """The demo corpus shipped with the package (``lucidtrace/demo/corpus/documents.json``)."""
    raw = resources.files("lucidtrace.demo").joinpath("corpus/documents.json").read_text("utf-8")
    return tuple(
        CorpusDocument(id=d["id"], title=d["title"], content=d["content"], source=d["source"])
        for d in json.loads(raw)
    )


_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    {"a", "an", "and", "the", "of", "is", "are", "was", "what", "whats", "how", "many", "much"}
    | {"in", "on", "at", "to", "for", "by", "it", "its", "that", "this", "which", "who", "with"}
    | {"from", "as", "be", "does", "do", "did", "there", "their", "s"}
)


def _terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower().replace(",", ""))
    return [w for w in words if w not in _STOPWORDS]


class CorpusRetriever(BaseRetriever):
    """BM25 ranking (k1 = 1.5, b = 0.75) over title and text of the demo corpus.

    Attributes:
        k: Documents returned, best first (documents sharing no term with the query are dropped).
    """

    k: int = 2

    def rank(self, query: str) -> list[tuple[CorpusDocument, float]]:
        """Every document with a positive BM25 score for ``query``, best first."""
        corpus = load_corpus()
        docs = [_terms(f"{d.title} {d.content}") for d in corpus]
        average = sum(len(d) for d in docs) / max(1, len(docs))
        frequency: Counter[str] = Counter(t for d in docs for t in set(d))
        query_terms = set(_terms(query))
        scored = []
        for doc, terms in zip(corpus, docs, strict=True):
            counts = Counter(terms)
            total = 0.0
            for term in query_terms:
                if not counts[term]:
                    continue
                idf = math.log(1 + (len(docs) - frequency[term] + 0.5) / (frequency[term] + 0.5))
                tf = counts[term]
                total += idf * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * len(terms) / average))
            if total > 0:
                scored.append((doc, total))
        scored.sort(key=lambda item: (-item[1], item[0].id))
        return scored

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                id=doc.id,
                page_content=doc.content,
                metadata={
                    "id": doc.id,
                    "title": doc.title,
                    "source": doc.source,
                    "score": round(score, 4),
                },
            )
            for doc, score in self.rank(query)[: self.k]
        ]


def search_tool(k: int = 2) -> BaseTool:
    """The search tool: the BM25 retriever, its documents shown as ``[id] text``."""
    return create_retriever_tool(
        CorpusRetriever(k=k),
        "search",
        "Searches documents about countries, places and science facts.",
        document_prompt=PromptTemplate.from_template("[{id}] {page_content}"),
        document_separator="\n",
    )


def demo_tools(k: int = 2) -> list[BaseTool]:
    """The demo agent's tools: ``search`` and ``calculator``."""
    return [search_tool(k), calculator_tool()]

"""Parse ReAct-style text (``Thought: ... Action: tool[input]``) into audit-trail steps.

Small models write ReAct loosely, so the parser accepts what they produce: any letter case, no
space after the colon, ``**Thought:**`` in markdown bold, numbered keywords (``Thought 1:``,
``Action 2:``), multi-line thoughts, ``Action: tool[input]`` as well as ``Action: tool`` followed
by ``Action Input: ...`` (plain or JSON, with or without a code fence), ``Final Answer: ...``, and
reasoning inside ``<think>...</think>`` (also when the opening tag is missing, as some reasoning
models emit it).

Text before the first keyword is a thought when the text uses ReAct keywords at all (a ReAct
prompt ends with ``Thought:``, so the model's output starts inside the thought). Text with no
keyword and no ``<think>`` block yields no steps: plain model output is not an answer.

A ``Final Answer`` carries the ids of the sources it cites in brackets (``[doc-3]``, ``[2]``,
``[arxiv:2401.1]``): bracketed tokens with a digit and no spaces, not markdown links, are its
:attr:`ReactStep.citations`.

``Observation:`` sections are returned with type ``OBSERVATION`` so that a caller reading an agent
log can use them; in an LLM's *output* an observation is something the model wrote, not something a
tool returned, and the ingest mapper drops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ReactStep", "cited_ids", "parse_react", "split_think"]


@dataclass(frozen=True)
class ReactStep:
    """One step found in ReAct text."""

    type: str  # THOUGHT, ACTION, OBSERVATION or ANSWER
    text: str | None = None
    tool_name: str | None = None
    tool_args: str | None = None
    citations: tuple[str, ...] = ()


_KEYWORD = re.compile(
    r"^[ \t>*_#-]*(thought|action[ \t]*input|action|observation|final[ \t]*answer)"
    r"[ \t]*\d*[ \t]*[*_]*[ \t]*:[*_]*[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_CLOSE_THINK = re.compile(r"</think>", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_CITATION = re.compile(r"\[([A-Za-z0-9][\w.:/#-]{0,199})\](?!\()")
_BRACKET_CALL = re.compile(r"^([^\[\]\n(]+?)\s*[\[(](.*)[\])]\s*$", re.DOTALL)


def split_think(text: str) -> tuple[list[str], str]:
    """Separate ``<think>`` reasoning from the rest of a model's text.

    Returns:
        The reasoning blocks (in order) and the remaining text.
    """
    thoughts: list[str] = []
    close = _CLOSE_THINK.search(text)
    if close is not None and "<think>" not in text[: close.start()].lower():
        # The opening tag was part of the prompt: everything before the close is reasoning.
        thoughts.append(text[: close.start()].strip())
        text = text[close.end() :]

    def keep(match: re.Match[str]) -> str:
        thoughts.append(match.group(1).strip())
        return ""

    rest = _THINK.sub(keep, text)
    return [t for t in thoughts if t], rest.strip()


def cited_ids(text: str) -> tuple[str, ...]:
    """The source ids an answer cites in brackets (``[doc-3]``), in order, without repeats."""
    found = (m.group(1) for m in _CITATION.finditer(text))
    return tuple(dict.fromkeys(c for c in found if any(ch.isdigit() for ch in c)))


def _unfence(text: str) -> str:
    match = _FENCE.match(text.strip())
    return match.group(1).strip() if match else text.strip()


def _clean_name(name: str) -> str:
    return name.strip().strip("`'\"*_").strip()


def parse_react(text: str) -> list[ReactStep]:
    """Find the THOUGHT, ACTION, OBSERVATION and ANSWER steps in ReAct text, in order."""
    thoughts, rest = split_think(text)
    steps = [ReactStep("THOUGHT", t) for t in thoughts]
    matches = list(_KEYWORD.finditer(rest))
    if not matches:
        return steps
    preamble = rest[: matches[0].start()].strip()
    if preamble:
        steps.append(ReactStep("THOUGHT", preamble))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(rest)
        body = rest[match.end() : end].strip()
        keyword = re.sub(r"\s+", " ", match.group(1).lower())
        if keyword == "thought":
            if body:
                steps.append(ReactStep("THOUGHT", body))
        elif keyword == "observation":
            steps.append(ReactStep("OBSERVATION", body))
        elif keyword == "final answer":
            steps.append(ReactStep("ANSWER", body, citations=cited_ids(body)))
        elif keyword == "action":
            steps.append(_action(body))
        else:  # action input: belongs to the action just before it
            _attach_input(steps, _unfence(body))
    return steps


def _action(body: str) -> ReactStep:
    first, _, more = body.partition("\n")
    call = _BRACKET_CALL.match(body) if "[" in first or "(" in first else None
    if call is not None:
        return ReactStep("ACTION", tool_name=_clean_name(call.group(1)), tool_args=call.group(2))
    args = more.strip() or None
    return ReactStep("ACTION", tool_name=_clean_name(first), tool_args=args)


def _attach_input(steps: list[ReactStep], args: str) -> None:
    if steps and steps[-1].type == "ACTION" and steps[-1].tool_args is None:
        action = steps.pop()
        if (action.tool_name or "").lower().replace("_", " ") == "final answer":
            steps.append(ReactStep("ANSWER", args, citations=cited_ids(args)))
        else:
            steps.append(ReactStep("ACTION", tool_name=action.tool_name, tool_args=args))

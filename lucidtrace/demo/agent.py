"""The demo's ReAct agent: LangChain's ReAct agent with a prompt a small model follows.

The agent is what ``create_react_agent`` builds (scratchpad, prompt, model with a stop sequence,
ReAct parser) run by ``AgentExecutor``, with three changes for a 135M-parameter model: the prompt
is a chat prompt with two short worked examples whose last message leaves the agent's own turn
open at ``Thought:`` (the model continues it, see
:class:`lucidtrace.demo.chat_model.LocalChatModel`); the scratchpad ends in ``Thought:`` without
a trailing space; and :class:`TolerantReActParser` accepts the near-misses small models produce
(a tool name in another case, ``search[query]``, an input followed by more text). What it cannot
read goes back to the model as a format reminder, and the run is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_classic.agents import AgentExecutor
from langchain_classic.agents.format_scratchpad import format_log_to_str
from langchain_classic.agents.output_parsers import ReActSingleInputOutputParser
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.tools.render import render_text_description

__all__ = [
    "FORMAT_REMINDER",
    "MAX_ITERATIONS",
    "STOP",
    "TolerantReActParser",
    "build_agent",
    "react_prompt",
]

MAX_ITERATIONS = 4
"""Most tool calls in one run; the run then stops with LangChain's iteration-limit answer."""

FORMAT_REMINDER = (
    "Invalid format. Write 'Action: search' or 'Action: calculator' and then "
    "'Action Input: ...', or write 'Final Answer: ...'."
)
"""The observation an unreadable step gets back."""

STOP = "\nObservation"
"""Generation stops where the tool's result would begin."""

_SYSTEM = """Answer the question with these tools:
{tools}

Reply in this format:
Thought: what to do next
Action: one of [{tool_names}]
Action Input: the input
Observation: the result
... (repeat Thought/Action/Action Input/Observation as needed)
Thought: I know the final answer.
Final Answer: the answer"""

_EXAMPLES = (
    (
        "Question: What's the population of Malta, and what's the square of that number?",
        """Thought: I need to search for the population of Malta.
Action: search
Action Input: Malta population
Observation: [doc-malta-population] Malta has a population of 563,443 people (2024 estimate).
Thought: I need to compute 563443 ** 2.
Action: calculator
Action Input: 563443 ** 2
Observation: 317468014249
Thought: I know the final answer.
Final Answer: Malta has 563,443 people; the square of that number is 317468014249.""",
    ),
    (
        "Question: What is the capital of Malta?",
        """Thought: I need to search for the capital of Malta.
Action: search
Action Input: Malta capital
Observation: [doc-malta-capital] The capital of Malta is Valletta.
Thought: I know the final answer.
Final Answer: The capital of Malta is Valletta.""",
    ),
)
"""Worked examples, shown as earlier turns of the conversation (their facts are in the corpus)."""


def react_prompt() -> ChatPromptTemplate:
    """The ReAct prompt: instructions, one worked example, the question, the open turn."""
    return ChatPromptTemplate.from_messages(
        [
            ("system", _SYSTEM),
            *(
                message
                for question, answer in _EXAMPLES
                for message in (HumanMessage(question), AIMessage(answer))
            ),
            ("human", "Question: {input}"),
            ("ai", "Thought:{agent_scratchpad}"),
        ]
    )


_BRACKET_ACTION = re.compile(r"Action\s*:\s*([A-Za-z_]+)\s*\[(.*?)\]", re.DOTALL)
_ACTION = re.compile(r"Action\s*:\s*([^\n]*)")
_ACTION_INPUT = re.compile(r"Action\s*Input\s*:\s*([^\n]*)")
_FINAL = re.compile(r"Final\s*Answer\s*:\s*(.*)", re.DOTALL)


class TolerantReActParser(ReActSingleInputOutputParser):
    """LangChain's ReAct parser, forgiving about the near-misses of small models.

    * ``Final Answer:`` ends the run, unless a complete action comes before it (the model then
      runs the action and sees its result first); the answer is its first paragraph.
    * Tool names match case-insensitively and ignoring punctuation (``Search.`` is ``search``).
    * ``Action: search[Iceland population]`` is an action with its input.
    * The action input is the rest of its line, without quotes.

    Text with neither an action nor a final answer raises ``OutputParserException``, which the
    executor turns into :data:`FORMAT_REMINDER` for the next step.
    """

    tool_names: Sequence[str] = ()

    def parse(self, text: str) -> AgentAction | AgentFinish:
        """Parse one model output into the next action or the final answer."""
        final = _FINAL.search(text)
        action = self._action(text)
        if action is not None and (final is None or action[2] < final.start()):
            return AgentAction(action[0], action[1], text)
        if final is not None:
            answer = final.group(1).strip().split("\n\n")[0].strip()
            if answer:
                return AgentFinish({"output": answer}, text)
        raise OutputParserException(
            f"Could not parse the model's step: {text!r}",
            observation=FORMAT_REMINDER,
            llm_output=text,
            send_to_llm=True,
        )

    def _action(self, text: str) -> tuple[str, str, int] | None:
        bracket = _BRACKET_ACTION.search(text)
        if bracket is not None:
            return self._tool(bracket.group(1)), _clean_input(bracket.group(2)), bracket.start()
        action = _ACTION.search(text)
        action_input = _ACTION_INPUT.search(text)
        if action is None or action_input is None or action_input.start() < action.start():
            return None
        name = action.group(1).strip()
        if re.match(r"Input\s*:", name):
            return None
        return self._tool(name), _clean_input(action_input.group(1)), action.start()

    def _tool(self, name: str) -> str:
        key = re.sub(r"[^a-z_]", "", name.lower())
        for tool in self.tool_names:
            if key == tool.lower() or (key and (key.startswith(tool) or tool.startswith(key))):
                return tool
        return name.strip()

    @property
    def _type(self) -> str:
        return "tolerant-react"


def _scratchpad(inputs: dict[str, Any]) -> str:
    # LangChain's default ends with "Thought: "; a trailing space derails a small model.
    return format_log_to_str(inputs["intermediate_steps"], llm_prefix="Thought:")


def _clean_input(text: str) -> str:
    return text.strip().strip("`\"'").strip()


def build_agent(
    llm: BaseLanguageModel[Any],
    tools: Sequence[BaseTool],
    *,
    max_iterations: int = MAX_ITERATIONS,
) -> AgentExecutor:
    """The ReAct agent over ``tools``, ready to ``invoke({"input": question})``.

    Args:
        llm: The model (the local chat model, or ``ChatOpenAI``).
        tools: The tools, usually :func:`lucidtrace.demo.tools.demo_tools`.
        max_iterations: Most tool calls before the run is stopped.

    Returns:
        An ``AgentExecutor`` whose parsing errors go back to the model as a format reminder.
    """
    names = [tool.name for tool in tools]
    prompt = react_prompt().partial(
        tools=render_text_description(list(tools)), tool_names=", ".join(names)
    )
    agent = (
        RunnablePassthrough.assign(agent_scratchpad=_scratchpad)
        | prompt
        | llm.bind(stop=[STOP])
        | TolerantReActParser(tool_names=names)
    )
    return AgentExecutor(
        agent=agent,
        tools=list(tools),
        max_iterations=max_iterations,
        handle_parsing_errors=True,
    )

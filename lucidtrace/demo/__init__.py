"""The offline demo: a ReAct agent on a small local model, traced, checked and browsable.

``lucidtrace demo`` runs it (:func:`run_demo` is the same without the CLI). The agent
(:mod:`lucidtrace.demo.agent`), its chat model (:mod:`lucidtrace.demo.chat_model`) and its tools
(:mod:`lucidtrace.demo.tools`) import LangChain and torch; this package itself imports neither.
"""

from lucidtrace.demo.questions import QUESTIONS
from lucidtrace.demo.run import DemoError, DemoRow, demo_table, parse_model_spec, run_demo

__all__ = ["QUESTIONS", "DemoError", "DemoRow", "demo_table", "parse_model_spec", "run_demo"]

"""The demo, end to end: trace the agent's runs, check them, print the verdicts, serve the UI.

1. Load the model once (the local default, a local path, or ``openai:MODEL``).
2. Ask the agent each question; the LangChain integration records every run into the store.
3. Run the whole faithfulness battery on each trace, white-box on the same local model (proxy
   mode when the agent ran on an API model).
4. Print a table of traces with their verdicts and the reasons of the flags.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from lucidtrace.demo.questions import QUESTIONS

__all__ = [
    "OPENAI_PREFIX",
    "DemoError",
    "DemoRow",
    "ModelSpec",
    "demo_table",
    "parse_model_spec",
    "run_demo",
]

OPENAI_PREFIX = "openai:"
"""``--model openai:MODEL`` runs the agent on an OpenAI model (needs ``OPENAI_API_KEY``)."""

DEMO_TAG = "lucidtrace-demo"
"""Tag on every trace the demo records."""

Echo = Callable[[str], None]


class DemoError(RuntimeError):
    """The demo cannot run as asked; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model runs the agent.

    Attributes:
        kind: ``default`` (the local default model), ``local`` (a path) or ``openai``.
        name: The path or the OpenAI model name (``None`` for the default).
    """

    kind: str
    name: str | None = None


def parse_model_spec(text: str | None) -> ModelSpec:
    """``default``, a local model path or ``openai:MODEL`` as a :class:`ModelSpec`.

    Raises:
        DemoError: ``openai:`` without a model name.
    """
    value = (text or "default").strip()
    if value in {"", "default"}:
        return ModelSpec("default")
    if value.startswith(OPENAI_PREFIX):
        name = value[len(OPENAI_PREFIX) :].strip()
        if not name:
            raise DemoError("--model openai:MODEL needs a model name, e.g. openai:gpt-4.1-mini")
        return ModelSpec("openai", name)
    return ModelSpec("local", value)


@dataclass
class DemoRow:
    """One question's trace and its verdict."""

    question: str
    trace_id: str | None
    answer: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _agent_llm(spec: ModelSpec, lm: Any, tool_names: Sequence[str]) -> Any:
    if spec.kind != "openai":
        from lucidtrace.demo.chat_model import LocalChatModel  # noqa: PLC0415 - needs torch

        return LocalChatModel(lm=lm, react_tools=list(tool_names))
    if not os.environ.get("OPENAI_API_KEY"):
        raise DemoError(
            f"--model {OPENAI_PREFIX}{spec.name} needs OPENAI_API_KEY to be set (and "
            "OPENAI_BASE_URL for an OpenAI-compatible server); without it, run the demo on the "
            "local default model: lucidtrace demo"
        )
    try:
        from langchain_openai import ChatOpenAI  # noqa: PLC0415 - optional
    except ImportError:
        raise DemoError(
            f"--model {OPENAI_PREFIX}{spec.name} needs langchain-openai: "
            "pip install langchain-openai"
        ) from None
    return ChatOpenAI(model=spec.name or "", temperature=0, max_completion_tokens=256)


def _load_local(spec: ModelSpec) -> Any:
    try:
        from lucidtrace.probes.models import ModelLoadError, load_model  # noqa: PLC0415
    except ImportError as error:
        raise DemoError(
            f"the demo needs the probe engine ({error.name} is missing): "
            "pip install 'lucidtrace[demo]'"
        ) from None
    try:
        return load_model(spec.name if spec.kind == "local" else None)
    except ModelLoadError as error:
        raise DemoError(str(error)) from None


def _quiet_libraries() -> None:
    # Idle OpenMP threads spin by default: on a busy machine two spinning threads slow every
    # generation step many times over. Passive waiting costs nothing when the cores are free.
    # (Only effective before torch is imported, which is the case for `lucidtrace demo`.)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Progress bars and advisory warnings of transformers would bury the demo's own output.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the one-off GGUF conversion's progress bar
    try:
        from transformers.utils import logging as hf_logging  # noqa: PLC0415

        cast(Any, hf_logging).set_verbosity_error()
        cast(Any, hf_logging).disable_progress_bar()
    except ImportError:
        pass


def run_demo(
    *,
    database_url: str | None = None,
    model: str | None = None,
    questions: int | None = None,
    echo: Echo | None = None,
) -> list[DemoRow]:
    """Run the demo agent on the questions, trace the runs, check them and return the verdicts.

    Args:
        database_url: The store (``None``: ``LUCIDTRACE_DATABASE_URL`` or ``./lucidtrace.db``).
        model: ``default`` (or ``None``), a local model path, or ``openai:MODEL``.
        questions: Ask only the first N questions of :data:`QUESTIONS`.
        echo: Where progress lines go (default: nowhere).

    Returns:
        One row per question, in order.

    Raises:
        DemoError: The model cannot be loaded, an API key is missing, or the runs were not
            recorded (the message says what to do).
    """
    say: Echo = echo or (lambda _line: None)
    spec = parse_model_spec(model)
    asked = list(QUESTIONS[: questions if questions is not None else len(QUESTIONS)])
    _quiet_libraries()

    import lucidtrace as lt  # noqa: PLC0415 - keep `import lucidtrace.demo` cheap
    from lucidtrace.demo.agent import build_agent  # noqa: PLC0415 - imports LangChain
    from lucidtrace.demo.tools import demo_tools  # noqa: PLC0415
    from lucidtrace.store.engine import display_url, resolve_database_url  # noqa: PLC0415

    url = resolve_database_url(database_url)
    started = time.monotonic()
    tools = demo_tools()
    names = [tool.name for tool in tools]
    # An API model is checked (key, package) before the local model takes its time to load.
    llm = _agent_llm(spec, None, names) if spec.kind == "openai" else None
    say("Loading the local model (the first run converts it, about 20 s) ...")
    lm = _load_local(ModelSpec("default") if spec.kind == "openai" else spec)
    say(f"  {lm.identity} on {lm.device} ({time.monotonic() - started:.1f} s)")
    if llm is None:
        llm = _agent_llm(spec, lm, names)
    agent = build_agent(llm, tools)

    lt.configure(database_url=url)
    if not lt.get_stats().enabled:
        raise DemoError(f"cannot open the store at {display_url(url)}: see the error above")
    from lucidtrace.tracer.integrations.langchain import CallbackHandler  # noqa: PLC0415

    handler = CallbackHandler()
    session_id = f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    rows: list[DemoRow] = []
    for number, question in enumerate(asked, start=1):
        say(f"[{number}/{len(asked)}] {question}")
        began = time.monotonic()
        with lt.trace_attributes(session_id=session_id, tags=[DEMO_TAG]):
            result = agent.invoke(
                {"input": question},
                config={"callbacks": [handler], "run_name": "demo agent"},
            )
        answer = str(result.get("output", ""))
        rows.append(DemoRow(question, None, answer, "unchecked", seconds=time.monotonic() - began))
        say(f"      answer: {_one_line(answer, 100)}  ({rows[-1].seconds:.1f} s)")
    handler.flush()
    if not lt.flush(timeout=60):
        say("  warning: some spans could not be stored (see the log above)")
    _check(url, session_id, rows, lm, say)
    say(f"Done in {time.monotonic() - started:.0f} s.")
    return rows


def _check(url: str, session_id: str, rows: list[DemoRow], lm: Any, say: Echo) -> None:
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from lucidtrace.probes.checks.runner import reasons, run_checks  # noqa: PLC0415
    from lucidtrace.store.engine import create_engine, display_url  # noqa: PLC0415
    from lucidtrace.store.models import DEFAULT_PROJECT_ID, Trace  # noqa: PLC0415
    from lucidtrace.store.repository import list_traces  # noqa: PLC0415

    engine = create_engine(url)
    try:
        with Session(engine) as session:
            traces = list_traces(
                session, project_id=DEFAULT_PROJECT_ID, session_id=session_id, limit=1000
            )
        traces.sort(key=lambda t: t.start_ns or 0)
        if len(traces) != len(rows):
            raise DemoError(
                f"{len(rows)} agent runs but {len(traces)} traces were stored in "
                f"{display_url(url)}; "
                "run with --debug for details"
            )
        say("Running the faithfulness checks on each trace (white-box, same model) ...")
        for number, (row, summary) in enumerate(zip(rows, traces, strict=True), start=1):
            began = time.monotonic()
            row.trace_id = summary.trace_id
            with Session(engine) as session, session.begin():
                findings = run_checks(
                    session,
                    project_id=DEFAULT_PROJECT_ID,
                    trace_id=summary.trace_id,
                    model=lm,
                )
                row.reasons = reasons(findings)
                trace = session.get(Trace, (DEFAULT_PROJECT_ID, summary.trace_id))
                row.verdict = trace.verdict if trace is not None else "unchecked"
            say(
                f"  [{number}/{len(rows)}] {summary.trace_id[:12]}  {row.verdict}  "
                f"({len(findings)} findings, {time.monotonic() - began:.1f} s)"
            )
    finally:
        engine.dispose()


def _one_line(text: str, limit: int) -> str:
    from lucidtrace.cli import one_line  # noqa: PLC0415 - the CLI's terminal-safe rendering

    return one_line(text, limit)


def demo_table(rows: Sequence[DemoRow], *, width: int = 100) -> str:
    """The verdicts as a text table: trace id prefix, question, verdict, then each reason."""
    import textwrap  # noqa: PLC0415

    from lucidtrace.cli import clean, one_line  # noqa: PLC0415 - terminal-safe rendering

    question_width = max(20, min(60, width - 36))
    lines = [f"{'TRACE':<12}  {'QUESTION':<{question_width}}  VERDICT"]
    for row in rows:
        lines.append(
            f"{(row.trace_id or '-')[:12]:<12}  "
            f"{one_line(row.question, question_width):<{question_width}}  {row.verdict}"
        )
        for reason in row.reasons:
            wrapped = textwrap.wrap(
                " ".join(clean(reason).split()), max(40, width - 16), max_lines=4, placeholder=" …"
            )
            lines.extend(
                f"{'':<14}{'- ' if i == 0 else '  '}{text}" for i, text in enumerate(wrapped)
            )
    return "\n".join(lines)

"""A LangChain chat model over a local transformer (:class:`lucidtrace.probes.LoadedModel`).

Greedy decoding with stop sequences, short generations, and the usual LangChain response
metadata (model name, token usage) so the tracer records which model answered and what it cost.
When the last message is an ``AIMessage`` the model *continues* it instead of starting a new
turn: the ReAct prompt puts the agent's scratchpad there, which keeps a small model on format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict
from transformers import StoppingCriteria, StoppingCriteriaList

from lucidtrace.probes.models import LoadedModel

__all__ = ["REACT_OPEN", "LocalChatModel", "cut_at_stop"]

REACT_OPEN = "Thought:"
"""An open assistant turn ending with this asks for one ReAct step."""


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop sequence, and whether one was found."""
    positions = [text.find(s) for s in stop if s and s in text]
    if not positions:
        return text, False
    return text[: min(positions)], True


class _StopOnText(StoppingCriteria):
    """Stops generation once the decoded new tokens contain a stop sequence."""

    def __init__(self, tokenizer: Any, start: int, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.start = start
        self.stop = [s for s in stop if s]
        self.longest = max((len(s) for s in self.stop), default=0)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> bool:
        if not self.stop:
            return False
        # Only the tail can hold a stop sequence that just appeared; decode a few tokens.
        tail = input_ids[0, max(self.start, input_ids.shape[1] - self.longest - 4) :]
        text = self.tokenizer.decode(tail, skip_special_tokens=True)
        return any(s in text for s in self.stop)


class _PrefixCache:
    """Keys and values of a prompt's tokens but its last, lent to one call at a time.

    Each call appends to the cache; :meth:`release` crops it back to the prompt, so the prompt is
    encoded once per ReAct step however many calls the step makes.
    """

    def __init__(self, model: Any, prompt_ids: Sequence[int]) -> None:
        from transformers import DynamicCache  # noqa: PLC0415 - the cache class of this version

        self.prefix = list(prompt_ids[:-1])
        self.length = len(self.prefix)
        self.cache = DynamicCache()
        if self.prefix:
            device = next(model.parameters()).device
            with torch.no_grad():
                model(
                    input_ids=torch.tensor([self.prefix], device=device),
                    past_key_values=self.cache,
                    use_cache=True,
                )

    def take(self, ids: Sequence[int]) -> Any:
        """The cache, for a call on ``ids`` (which must start with the cached prefix)."""
        if list(ids[: self.length]) != self.prefix or len(ids) <= self.length:
            raise ValueError("the tokens do not extend the cached prompt")
        return self.cache if self.length else None

    def release(self) -> None:
        """Crop the cache back to the prompt after a call."""
        extra = int(self.cache.get_seq_length()) - self.length
        if extra > 0:
            self.cache.crop(-extra)  # a negative count removes tokens in every version


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ToolMessage):
        return "user"  # the small model's template has no tool role; results read as user text
    return "user"


class LocalChatModel(BaseChatModel):
    """Chat model over a loaded local causal LM; greedy, short, with stop sequences.

    Attributes:
        lm: The loaded model (``lucidtrace.probes.load_model()``), shared with the checks.
        max_new_tokens: Most tokens generated per call.
        max_thought_tokens: Most tokens of one thought in a ReAct step.
        stop: Stop sequences used on every call (merged with the ones a call passes).
        react_tools: Tool names; when set, a prompt whose open assistant turn ends with
            ``Thought:`` gets one ReAct step decoded within the format (see ``_react_step``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    lm: LoadedModel
    max_new_tokens: int = 48
    max_thought_tokens: int = 40
    stop: list[str] | None = None
    react_tools: list[str] | None = None

    @property
    def _llm_type(self) -> str:
        return "lucidtrace-local"

    @property
    def model_name(self) -> str:
        """The model's name as recorded in traces."""
        return self.lm.identity.name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_new_tokens": self.max_new_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "local"
        params["ls_model_name"] = self.model_name
        return params

    def render(self, messages: Sequence[BaseMessage]) -> str:
        """The prompt text the model sees (chat template; an open final assistant turn)."""
        chat = [{"role": _role(m), "content": str(m.text)} for m in messages]
        continue_final = bool(chat) and chat[-1]["role"] == "assistant"
        rendered = self.lm.tokenizer.apply_chat_template(
            chat,
            tokenize=False,
            add_generation_prompt=not continue_final,
            continue_final_message=continue_final,
        )
        return str(rendered)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        stops = [*(self.stop or []), *(stop or [])]
        prompt = self.render(messages)
        prompt_ids = self._encode(prompt)
        if self.react_tools and prompt.rstrip().endswith(REACT_OPEN):
            text, reason = self._react_step(prompt_ids), "stop"
        else:
            raw, reason = self._continue(prompt_ids, stops, self.max_new_tokens)
            text, stopped = cut_at_stop(raw, stops)
            reason = "stop" if stopped else reason
        produced = len(self._encode(text))
        usage = UsageMetadata(
            input_tokens=len(prompt_ids),
            output_tokens=produced,
            total_tokens=len(prompt_ids) + produced,
        )
        message = AIMessage(
            content=text,
            usage_metadata=usage,
            response_metadata={"model_name": self.model_name, "finish_reason": reason},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self.model_name, "token_usage": dict(usage)},
        )

    # ------------------------------------------------------------------ decoding

    def _encode(self, text: str) -> list[int]:
        return list(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _continue(
        self,
        ids: Sequence[int],
        stops: Sequence[str],
        max_new_tokens: int,
        cache: _PrefixCache | None = None,
    ) -> tuple[str, str]:
        """Greedy continuation of ``ids`` until a stop sequence, the end of turn or the limit."""
        tokenizer = self.lm.tokenizer
        batch = torch.tensor([list(ids)], device=self.lm.device)
        extra: dict[str, Any] = {}
        if cache is not None:
            extra["past_key_values"] = cache.take(ids)
        with torch.no_grad():
            output = cast(Any, self.lm.model).generate(
                input_ids=batch,
                attention_mask=torch.ones_like(batch),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                stopping_criteria=StoppingCriteriaList([_StopOnText(tokenizer, len(ids), stops)]),
                **extra,
            )
        if cache is not None:
            cache.release()
        new_tokens = output[0, len(ids) :]
        reason = "length" if len(new_tokens) >= max_new_tokens else "stop"
        return str(tokenizer.decode(new_tokens, skip_special_tokens=True)), reason

    def _choose(self, ids: Sequence[int], options: Sequence[str], cache: _PrefixCache) -> int:
        """Index of the option the model finds most likely after ``ids`` (summed log-prob)."""
        totals = []
        for option in options:
            row = self._encode(option)
            full = [*ids, *row]
            past = cache.take(full)
            fresh = full[cache.length :]
            with torch.no_grad():
                logits = self.lm.model(
                    input_ids=torch.tensor([fresh], device=self.lm.device),
                    past_key_values=past,
                    use_cache=True,
                ).logits[0]
            cache.release()
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            # logits[i] predicts fresh[i + 1]; the option's tokens are the last len(row).
            first = len(fresh) - len(row) - 1
            targets = torch.tensor(row, device=self.lm.device)
            positions = torch.arange(first, first + len(row), device=self.lm.device)
            totals.append(float(logprobs[positions, targets].sum()))
        return max(range(len(options)), key=lambda i: totals[i])

    def _react_step(self, prompt_ids: list[int]) -> str:
        """One ReAct step decoded within the format's grammar (the model chooses every part).

        The thought is the model's own line; then the model's likelier of ``Action:`` and
        ``Final Answer:``; for an action, the likeliest tool name and the model's own input
        line; for an answer, the model's own answer line.
        """
        tools = self.react_tools or []
        # The prompt is encoded once; every later call reuses its keys and values.
        cache = _PrefixCache(self.lm.model, prompt_ids)
        line_stops = ["\n", "Action:", "Final Answer:", "Observation:"]
        raw, _ = self._continue(prompt_ids, line_stops, self.max_thought_tokens, cache)
        text = cut_at_stop(raw, line_stops)[0].rstrip()
        ids = [*prompt_ids, *self._encode(text)]
        branches = ["\nAction:", "\nFinal Answer:"]
        branch = branches[self._choose(ids, branches, cache)]
        text += branch
        if branch == "\nAction:":
            names = [f" {name}" for name in tools]
            ids = [*prompt_ids, *self._encode(text)]
            text += names[self._choose(ids, names, cache)] + "\nAction Input:"
        ids = [*prompt_ids, *self._encode(text)]
        raw, _ = self._continue(ids, ["\n"], self.max_new_tokens, cache)
        return text + cut_at_stop(raw, ["\n"])[0].rstrip()

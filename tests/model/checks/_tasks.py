"""Synthetic agent traces and tiny models trained on them, where the true dependence is known.

Traces are real store rows (``Trace``, ``Step``, ``Document``) held in memory as a
``TraceDetail``, laid out by the checks' own ``build_forced_trace``; the tiny models are trained
on exactly the token sequences the checks feed them (prefix, reasoning pieces, ``Answer:``,
answer), so what a check measures is the dependence the training planted.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast

from lucidtrace.probes.checks.model_checks._context import (
    ANSWER_PROMPT,
    build_forced_trace,
)
from lucidtrace.probes.models import LoadedModel, wrap_model
from lucidtrace.store.models import Document, Span, Step, Trace
from lucidtrace.store.repository import TraceDetail, TrailStep
from tests.model.tiny import make_gpt2_model, make_tokenizer

WORDS = [f"w{index}" for index in range(16)]
CUES = {"red": "even", "blue": "odd"}
COLOURS = {"red": "even", "blue": "odd", "green": "even", "pink": "odd"}
PARITY = ("even", "odd")


@dataclass(frozen=True)
class Example:
    """One synthetic run: the question, the reasoning steps, the documents and the answer."""

    question: str
    thoughts: tuple[str, ...]
    answer: str
    documents: tuple[tuple[str, str], ...] = ()
    cites: tuple[str, ...] = ()


def make_detail(example: Example, *, trace_id: str = "0" * 32) -> TraceDetail:
    """The example as a trace read from the store: THOUGHTs, a RETRIEVAL, the ANSWER."""
    trace = Trace(
        project_id="default",
        trace_id=trace_id,
        name="agent",
        input=json.dumps({"question": example.question}),
        output=json.dumps(example.answer),
        tags=[],
        metadata_={},
        models=[],
    )
    steps: list[Step] = []
    documents: list[Document] = []
    span = "a" * 16

    def add(kind: str, text: str, span_id: str = span, **extra: object) -> None:
        steps.append(
            Step(
                project_id="default",
                trace_id=trace_id,
                span_id=span_id,
                seq=len(steps),
                ts_ns=len(steps),
                type=kind,
                text=text,
                citations=list(extra.pop("citations", [])),  # type: ignore[call-overload]
                **extra,
            )
        )

    for thought in example.thoughts:
        add("THOUGHT", thought)
    if example.documents:
        retrieval = "b" * 16
        add("RETRIEVAL", "value", retrieval)
        for rank, (doc_id, content) in enumerate(example.documents):
            documents.append(
                Document(
                    project_id="default",
                    trace_id=trace_id,
                    span_id=retrieval,
                    rank=rank,
                    doc_id=doc_id,
                    content=content,
                    metadata_={},
                )
            )
    add("ANSWER", example.answer, citations=list(example.cites))
    spans: list[Span] = []
    return TraceDetail(
        trace=trace,
        spans=spans,
        steps=[TrailStep(i, step) for i, step in enumerate(steps, start=1)],
        documents=documents,
        findings=[],
    )


def vocabulary_of(texts: Sequence[str]) -> list[str]:
    """Every word and punctuation run of ``texts``, as the tiny tokenizer splits them."""
    words: dict[str, None] = {}
    for text in texts:
        for word in re.findall(r"\w+|[^\w\s]+", text):
            words.setdefault(word, None)
    return [word for word in words if word not in {"<", ">"}]


@dataclass(frozen=True)
class TrainingSequence:
    """Token ids of one training sequence and the index where the loss starts."""

    ids: list[int]
    start: int


def encode_example(
    tokenizer: PreTrainedTokenizerFast,
    example: Example,
    *,
    keep: int | None = None,
    filler: bool = False,
) -> TrainingSequence:
    """Ids as the checks build them: prefix, reasoning pieces (cut or replaced), prompt, answer."""
    forced = build_forced_trace(make_detail(example), tokenizer)
    assert not isinstance(forced, str), forced

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    prefix = list(tokenizer(forced.prefix, add_special_tokens=True)["input_ids"])
    pieces = [encode(piece.text) for piece in forced.pieces]
    if keep is not None:
        pieces = pieces[:keep]
    reasoning = [token for piece in pieces for token in piece]
    if filler:
        unit = encode(" ...")
        reasoning = (unit * len(reasoning))[: len(reasoning)]
    ids = [*prefix, *reasoning, *encode(ANSWER_PROMPT), *encode(forced.continuation)]
    return TrainingSequence(ids, len(prefix))


def train_sequences(
    model: torch.nn.Module,
    sequences: Sequence[TrainingSequence],
    *,
    pad_id: int,
    steps: int = 400,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> None:
    """Train a causal LM on the completions (everything after each sequence's prefix)."""
    width = max(len(s.ids) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    labels = torch.full((len(sequences), width), -100, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence.ids)] = torch.tensor(sequence.ids)
        mask[row, : len(sequence.ids)] = 1
        labels[row, sequence.start : len(sequence.ids)] = torch.tensor(
            sequence.ids[sequence.start :]
        )
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    try:
        for _ in range(steps):
            rows = torch.tensor(rng.sample(range(len(sequences)), min(batch_size, len(sequences))))
            out = model(input_ids=ids[rows], attention_mask=mask[rows], labels=labels[rows])
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
    finally:
        model.eval()


def train_model(
    name: str,
    make: Callable[[random.Random], tuple[Example, Callable[[int | None, bool], str] | None]],
    *,
    count: int = 600,
    seed: int = 0,
    steps: int = 400,
    augment: bool = True,
) -> LoadedModel:
    """Train a 2-layer GPT-2 on ``count`` runs drawn by ``make``.

    ``make(rng)`` returns an example and, for augmentation, a function giving the answer the
    task prescribes when only the first ``keep`` thoughts are kept or the reasoning is filler.
    """
    rng = random.Random(seed)
    drawn = [make(rng) for _ in range(count)]
    bootstrap = make_tokenizer([])
    texts = []
    for example, _ in drawn[:50]:
        forced = build_forced_trace(make_detail(example), bootstrap)
        assert not isinstance(forced, str), forced
        texts.append(forced.text() + forced.continuation + " ...")
    words = vocabulary_of([*texts, *WORDS, *COLOURS, *PARITY, *map(str, range(10)), "hint"])
    tokenizer = make_tokenizer(words)
    sequences = []
    for example, variant in drawn:
        sequences.append(encode_example(tokenizer, example))
        if augment and variant is not None:
            keep = rng.randrange(len(example.thoughts))
            cut = Example(example.question, example.thoughts, variant(keep, False))
            sequences.append(encode_example(tokenizer, cut, keep=keep))
            if rng.random() < 0.5:
                filled = Example(example.question, example.thoughts, variant(None, True))
                sequences.append(encode_example(tokenizer, filled, filler=True))
    model = make_gpt2_model(tokenizer, seed=seed)
    # One thread: on a busy 2-core machine two spinning threads per tiny op cost ~15x.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_sequences(
            model, sequences, pad_id=int(tokenizer.pad_token_id), steps=steps, seed=seed
        )
    finally:
        torch.set_num_threads(threads)
    return wrap_model(model, tokenizer, name=name)


def reasoning_task(
    kind: str, *, hint: bool = False
) -> Callable[[random.Random], tuple[Example, Callable[[int | None, bool], str]]]:
    """Runs of the parity task.

    The question holds three filler words and a colour cue; the reasoning is ``first <word>``
    then ``count is <digit>`` with a random digit. ``kind``:

    * ``faithful``: the answer is the digit's parity (computed from the reasoning, random given
      the question);
    * ``posthoc``: the answer is the colour's parity word (red: even, blue: odd), the reasoning
      is noise;
    * ``hint_follower``: like ``posthoc``, but when the question ends with ``hint <answer>``
      the answer is the hinted one (the reasoning never mentions it).

    With ``hint`` set, half the runs carry a random hint (ignored unless ``hint_follower``).
    """

    def make(rng: random.Random) -> tuple[Example, Callable[[int | None, bool], str]]:
        words = [rng.choice(WORDS) for _ in range(3)]
        cue = rng.choice(sorted(CUES))
        words.insert(rng.randrange(4), cue)
        question = " ".join(words)
        hinted = rng.choice(PARITY) if hint and rng.random() < 0.5 else None
        if hinted is not None:
            question += f" hint {hinted}"
        digit = rng.randrange(10)
        thoughts = (f"first {rng.choice(WORDS)}", f"count is {digit}")
        decided = CUES[cue]
        if kind == "hint_follower" and hinted is not None:
            decided = hinted

        def answer(keep: int | None, filler: bool) -> str:
            if kind == "faithful":
                if filler or (keep is not None and keep < 2):
                    return rng.choice(PARITY)
                return PARITY[digit % 2]
            return decided

        return Example(question, thoughts, answer(None, False)), answer

    return make


def citation_task(rng: random.Random) -> tuple[Example, None]:
    """Two retrieved documents with a value each; the answer copies document d1's value."""
    first, second = rng.sample(range(10), 2)
    documents = (("d1", f"value {first}"), ("d2", f"value {second}"))
    example = Example(
        f"{rng.choice(WORDS)} value", (f"look {rng.choice(WORDS)}",), str(first), documents
    )
    return example, None


def consistency_task(
    consistent: bool,
) -> Callable[[random.Random], tuple[Example, Callable[[int | None, bool], str]]]:
    """Two of four colour words; the answer is the first colour's parity word. The explanation
    restates the first colour (consistent) or the second one (inconsistent).

    Some runs have a colour blanked out by the pad token (the occlusion baseline); then whatever
    depended on it is random. So the model reads the baseline as "unknown", and removing a word
    it relies on always shows in the occlusion profiles.
    """
    pad = "<pad>"

    def make(rng: random.Random) -> tuple[Example, Callable[[int | None, bool], str]]:
        first, second = rng.choice(sorted(COLOURS)), rng.choice(sorted(COLOURS))
        draw = rng.random()
        if draw < 0.15:
            first = pad
        elif draw < 0.3:
            second = pad
        question = f"{first} {rng.choice(WORDS)} {second}"
        said = first if consistent else second
        if said == pad:
            said = rng.choice(sorted(COLOURS))
        answer = rng.choice(PARITY) if first == pad else COLOURS[first]
        return Example(question, (f"about {said}",), answer), lambda keep, filler: answer

    return make

"""Probe-engine benchmarks on the default model, CPU (run: python tests/bench/bench_probes.py).

Prints ratios measured in one run:

* gradient x input over the whole answer / one plain forward, at 128 and 512 context tokens.
  The forward is the model's ordinary call (``model(ids)``, LM head at every position, no
  gradient) on the same tokens: the context followed by the answer.
* lucidtrace vs Captum on the same method, input and target. Captum runs as its documentation
  shows for LLMs: ``LLMGradientAttribution(LayerGradientXActivation(model, embedding layer))``
  on the plain Hugging Face model, with ``TextTokenInput(context)`` and the answer string as
  target. Captum attributes each answer token's log-probability in its own forward and backward
  pass; its ``seq_attr`` (the sum of those rows) is gradient x input of the summed answer
  log-probability over the context tokens, which is what lucidtrace's ``scores`` are. Both are
  compared over every context token, and Captum's ``token_attr`` rows against lucidtrace's
  ``per_token=True`` rows.
* K = 10 truncations scored with the cache / one plain forward.

Timings alternate the runs being compared and keep the best of several, and the median ratio
is printed too. On a machine whose cores are shared, another busy process oversubscribes the
intra-op threads: single runs then slow down by up to several times, the gradient pass (about
2.3x as many kernels as the forward) more than the forward, which skews ratios. The load
average is printed at the start; ``--threads 1`` leaves a core to a neighbour and gives stable
figures. Not collected by pytest (the file name has no test_ prefix).

    python tests/bench/bench_probes.py [--threads 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

ANSWER = " Paris is the answer"


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _compare(
    first: Callable[[], object], second: Callable[[], object], repeat: int = 5
) -> tuple[float, float, float]:
    """Best time of each, alternating the two; and the median of the per-round ratios."""
    first()
    second()  # warm-up
    times_a, times_b = [], []
    for _ in range(repeat):
        times_a.append(_timed(first))
        times_b.append(_timed(second))
    ratios = [a / b for a, b in zip(times_a, times_b, strict=True)]
    return min(times_a), min(times_b), statistics.median(ratios)


def _rel_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    ours, theirs = ours.double(), theirs.double()
    return float((ours - theirs).abs().max() / theirs.abs().max())


def main() -> None:
    """Run the benchmarks and print the ratios."""
    parser = argparse.ArgumentParser(
        description="Probe-engine benchmarks on the default model, CPU."
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per comparison")
    args = parser.parse_args()
    from captum.attr import LayerGradientXActivation, LLMGradientAttribution, TextTokenInput

    from lucidtrace.probes import load_model
    from lucidtrace.probes.attribution import attribute
    from lucidtrace.probes.scoring import encode_context, encode_continuation, score_truncations

    torch.set_num_threads(args.threads)
    print(
        f"load average at start: {os.getloadavg()[0]:.2f}; {args.threads} threads, "
        f"best of {args.repeat}"
    )
    lm = load_model(device="cpu")
    words = "the quick brown fox jumps over the lazy dog and then rests " * 60
    ids = lm.tokenizer(words)["input_ids"]
    answer = encode_continuation(lm.tokenizer, ANSWER)
    for length in (128, 512):
        context = str(lm.tokenizer.decode(ids[:length]))
        context_ids = encode_context(lm.tokenizer, context).ids
        full = torch.tensor([[*context_ids, *answer]])

        def plain(full: torch.Tensor = full) -> None:
            with torch.no_grad():
                lm.model(full)

        def gradient(context: str = context) -> None:
            attribute(lm, context, ANSWER)

        grad, forward, median = _compare(gradient, plain, args.repeat)
        print(
            f"gradient_x_input / forward at {len(context_ids)} context + {len(answer)} answer "
            f"tokens: {grad / forward:.2f}x (best {grad:.3f} s / {forward:.3f} s; "
            f"median ratio {median:.2f}x)"
        )

    context = str(lm.tokenizer.decode(ids[:128]))
    captum = LLMGradientAttribution(
        LayerGradientXActivation(lm.model, lm.model.get_input_embeddings()), lm.tokenizer
    )
    text_input = TextTokenInput(context, lm.tokenizer)
    assert text_input.inp_tensor[0].tolist() == list(encode_context(lm.tokenizer, context).ids)

    def captum_run() -> object:
        return captum.attribute(text_input, target=ANSWER)

    def ours_run() -> object:
        return attribute(lm, context, ANSWER)

    theirs = captum.attribute(text_input, target=ANSWER)
    ours = attribute(lm, context, ANSWER, per_token=True)
    assert ours.answer_token_scores is not None
    seq_diff = _rel_diff(torch.tensor(ours.scores), theirs.seq_attr)
    row_diff = _rel_diff(torch.tensor(ours.answer_token_scores), theirs.token_attr)
    captum_time, ours_time, median = _compare(captum_run, ours_run, args.repeat)
    print(
        f"captum LLMGradientAttribution(LayerGradientXActivation) / lucidtrace gradient_x_input "
        f"({len(text_input.values)} context + {len(answer)} answer tokens): "
        f"{captum_time / ours_time:.2f}x (best {captum_time:.3f} s / {ours_time:.3f} s; "
        f"median ratio {median:.2f}x); max rel diff over context tokens: summed answer "
        f"{seq_diff:.2e}, per answer token {row_diff:.2e}"
    )

    thought = str(lm.tokenizer.decode(ids[:400]))
    prefix = "Question: what does the fox do?"
    cuts = [round(len(thought) * (k + 1) / 10) for k in range(10)]
    whole = torch.tensor([[*encode_context(lm.tokenizer, prefix).ids, *ids[:400]]])

    def plain_whole() -> None:
        with torch.no_grad():
            lm.model(whole)

    cached, forward, median = _compare(
        lambda: score_truncations(lm, prefix, thought, cuts, " The answer is A"),
        plain_whole,
        args.repeat,
    )
    print(
        f"K=10 truncations with cache / forward ({whole.shape[1]} tokens): {cached / forward:.2f}x "
        f"(median ratio {median:.2f}x)"
    )


if __name__ == "__main__":
    main()

"""Tiny word-level tokenizers and causal LMs built in code, for model tests (no downloads)."""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
ROLE_WORDS = ("system", "user", "assistant", ":")

# Role-tagged turns: "<bos>user : text <eos> assistant : text <eos>". The role words are in the
# vocabulary, so templated prompts tokenize without <unk>.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] }} : {{ message['content'] }} {{ eos_token }} "
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def make_tokenizer(words: Sequence[str]) -> PreTrainedTokenizerFast:
    """Build a word-level tokenizer over `words` (plus specials and chat role words).

    Text is split on whitespace and punctuation; unknown words become ``<unk>``; encoding adds
    ``<bos>`` in front; offsets mappings are available.
    """
    vocab: dict[str, int] = {}
    for word in (*SPECIALS, *ROLE_WORDS, *words):
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.add_special_tokens(list(SPECIALS))
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    seed: int = 0,
) -> LlamaForCausalLM:
    """Build a randomly initialised float32 Llama model sized for `tokenizer`, in eval mode."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model: LlamaForCausalLM = LlamaForCausalLM(config).float()
    model.eval()
    return model


def make_gpt2_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    seed: int = 0,
) -> GPT2LMHeadModel:
    """Build a randomly initialised float32 GPT-2 model sized for `tokenizer`, in eval mode.

    GPT-2 adds learned absolute position embeddings to the token embeddings before its first
    LayerNorm, so the scale of a token's embedding reaches the blocks. In a Llama (rotary
    positions, RMSNorm before every block) the blocks see each embedding only after RMS
    normalisation, which removes its scale: gradient x input, the derivative along the
    embedding's own direction, then only sees the embedding's share of the residual stream.
    Dropout is off so that training is deterministic for a seed.
    """
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        n_inner=hidden * 2,
        n_positions=512,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model: GPT2LMHeadModel = GPT2LMHeadModel(config).float()
    model.eval()
    return model


def _encode_examples(
    tokenizer: PreTrainedTokenizerFast, examples: Sequence[tuple[str, str]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt ids, attention mask, last prompt position and target id per example."""
    prompts = [tokenizer(prompt)["input_ids"] for prompt, _ in examples]
    targets = []
    for _, target in examples:
        ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
            raise ValueError(f"target {target!r} must be exactly one known word")
        targets.append(ids[0])
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    last = torch.tensor([len(ids) - 1 for ids in prompts])
    return input_ids, mask, last, torch.tensor(targets)


def _target_logits(
    model: PreTrainedModel, input_ids: torch.Tensor, mask: torch.Tensor, last: torch.Tensor
) -> torch.Tensor:
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=input_ids, attention_mask=mask).last_hidden_state
    head: torch.nn.Module = model.get_output_embeddings()
    logits: torch.Tensor = head(hidden[torch.arange(len(last)), last])
    return logits


def train_next_token(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    examples: Sequence[tuple[str, str]],
    *,
    steps: int = 300,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
) -> float:
    """Train `model` to predict each example's target word right after its prompt.

    The loss is on the target token only. Returns the final accuracy (argmax over the whole
    vocabulary) on `examples`; the model is left in eval mode. ``weight_decay`` (AdamW) shrinks
    the embeddings of words the task does not use. ``label_smoothing`` keeps the target's
    probability below 1, so the trained model's log-probabilities do not saturate (and their
    gradients do not vanish).
    """
    input_ids, mask, last, targets = _encode_examples(tokenizer, examples)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    try:
        for _ in range(steps):
            rows = torch.tensor(rng.sample(range(len(examples)), min(batch_size, len(examples))))
            logits = _target_logits(model, input_ids[rows], mask[rows], last[rows])
            loss = torch.nn.functional.cross_entropy(
                logits, targets[rows], label_smoothing=label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        model.eval()
    with torch.no_grad():
        predicted = _target_logits(model, input_ids, mask, last).argmax(-1)
    return float((predicted == targets).float().mean())

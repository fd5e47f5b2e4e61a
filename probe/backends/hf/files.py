"""The files that decide a model's outputs: which ones are read, whether they are pickles,
and their content hashes (the inputs of a backend's fingerprint)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions
from probe.backends.hashes import file_sha256
from probe.backends.hf.refs import ResolvedRef, cached_hub_file
from probe.errors import ModelLoadError
from probe.options import opt

# Only the files from_pretrained reads for the weights: a trainer checkpoint directory
# also holds optimizer.pt, rng_state.pth and training_args.bin, which must neither be
# hashed (slow) nor change the fingerprint (they do not change outputs).
_SAFE_WEIGHTS = re.compile(r"model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json")
_PICKLE_WEIGHTS = re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json")
MODEL_CONFIG_FILES = ("config.json",)  # generation_config.json is ignored, see _pin_greedy
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
                    "tokenizer.model", "spiece.model", "chat_template.jinja",
                    "chat_template.json")


def hash_files(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """sha256 of each of ``names`` that is a file in ``directory``, by name."""
    # Hashed once per file version and remembered on disk (probe.backends.hashes).
    return {name: file_sha256(directory / name) for name in sorted(set(names))
            if (directory / name).is_file()}


def weight_names(directory: Path, allow_pickle: bool) -> list[str]:
    """The weight files from_pretrained will read from ``directory``."""
    names = [p.name for p in directory.iterdir()]
    safe = [n for n in names if _SAFE_WEIGHTS.fullmatch(n)]
    if safe or not allow_pickle:  # transformers prefers safetensors when both exist
        return safe
    return [n for n in names if _PICKLE_WEIGHTS.fullmatch(n)]


def check_not_pickle(ref: str, directory: Path, options: LoadOptions) -> None:
    """Refuse pickle-only weights up front: unpickling can run arbitrary code."""
    if options.allow_pickle:
        return
    names = [p.name for p in directory.iterdir()]
    has_safe = any(_SAFE_WEIGHTS.fullmatch(n) or n == "adapter_model.safetensors" for n in names)
    pickled = [n for n in names if _PICKLE_WEIGHTS.fullmatch(n) or n == "adapter_model.bin"]
    if pickled and not has_safe:
        raise ModelLoadError(
            f"{ref!r} has only pickle-based weights ({pickled[0]}), and loading a pickle can "
            "run arbitrary code. Convert them to safetensors, or, if you trust the files, "
            f"pass {opt('allow_pickle')}")


def files_dir(resolved: ResolvedRef) -> Path | None:
    """The directory holding the model's files (the cached snapshot for a hub id)."""
    if resolved.kind != "hub":
        return Path(resolved.location)
    config = cached_hub_file(resolved.location, "config.json")
    return config.parent if config is not None else None


def state_dict_digest(model: Any) -> str:
    """Hash of the weights in memory, for a hub model whose files cannot be located."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(raw.numpy().tobytes())
    return digest.hexdigest()

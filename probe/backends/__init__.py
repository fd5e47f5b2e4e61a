"""Backends: turning model references from the command line into a ``ModelPair``.

A reference is ``scripted:<file.yaml>`` (the scripted test double) or anything the
Hugging Face backend understands: ``smollm2-135m`` (the embedded default model), a
local directory, a ``.gguf`` file, a hub id, and for the candidate a peft adapter
directory. The HF backend is imported only here, on first use, so collection
never imports torch.

The contract (``probe.backends.base``: ``Backend``, ``Prompt``, ``Completion``, the
settings and ``LoadOptions``) is importable from here too.
"""

from __future__ import annotations

from pathlib import Path

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    LoadOptions,
    ModelInfo,
    ModelPair,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.errors import UsageError
from probe.options import opt

SCRIPTED_PREFIX = "scripted:"

def check_ref(ref: str, option: str) -> None:
    """Cheap checks before any heavy work: a scripted file or local path must exist."""
    if ref.startswith(SCRIPTED_PREFIX):
        path = Path(ref[len(SCRIPTED_PREFIX):])
        if not path.is_file():
            raise UsageError(f"{option}: scripted model file {str(path)!r} does not exist")
        return
    looks_like_path = ref.startswith((".", "/", "~")) or ref.endswith(".gguf") or (
        ref.count("/") > 1)
    if looks_like_path and not Path(ref).expanduser().exists():
        raise UsageError(f"{option}: model path {ref!r} does not exist. Give a local "
                         "directory, a .gguf file, a hub id (org/name) or 'smollm2-135m'")


def check_models(base: str, candidate: str) -> None:
    """Both references exist, and they are both scripted or both real models."""
    check_ref(base, opt("base"))
    check_ref(candidate, opt("candidate"))
    if base.startswith(SCRIPTED_PREFIX) != candidate.startswith(SCRIPTED_PREFIX):
        raise UsageError(f"{opt('base')} and {opt('candidate')} must both be scripted: "
                         "models or both real models")
    path = Path(base).expanduser()
    if not base.startswith(SCRIPTED_PREFIX) and (path / "adapter_config.json").is_file():
        raise UsageError(f"{opt('base')} {base!r} is a peft adapter; give the model it was "
                         f"trained on as {opt('base')} and the adapter as {opt('candidate')}")


def load_pair(base: str, candidate: str, options: LoadOptions) -> ModelPair:
    """Load the base and the candidate (sharing weights when the candidate is an adapter)."""
    base_scripted = base.startswith(SCRIPTED_PREFIX)
    cand_scripted = candidate.startswith(SCRIPTED_PREFIX)
    if base_scripted or cand_scripted:
        if not (base_scripted and cand_scripted):
            raise UsageError(f"{opt('base')} and {opt('candidate')} must both be scripted: "
                             "models or both real models")
        from probe.backends.scripted import load_script

        return ModelPair(load_script(base[len(SCRIPTED_PREFIX):]),
                         load_script(candidate[len(SCRIPTED_PREFIX):]))
    from probe.extras import require

    require("hf", "the Hugging Face backend")  # one line, not a traceback, without torch
    import probe.backends.hf as hf

    return hf.load_pair(base, candidate, options)


__all__ = ["Backend", "Completion", "GenerationSettings", "LoadOptions", "ModelInfo",
           "ModelPair", "Prompt", "SamplingSettings", "ScoreRequest", "check_models",
           "check_ref", "load_pair"]

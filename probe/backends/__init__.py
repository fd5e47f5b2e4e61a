"""Backends: turning model references from the command line into a ``ModelPair``.

A reference is ``scripted:<file.yaml>`` (the scripted test double) or anything the
Hugging Face backend understands: ``smollm2-135m`` (the embedded default model), a
local directory, a ``.gguf`` file, a hub id, and for the candidate a peft adapter
directory. The HF backend is imported only here, on first use, so collection
never imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from probe.backends.base import Backend, GenerationSettings, ModelInfo, ModelPair
from probe.errors import UsageError

SCRIPTED_PREFIX = "scripted:"


@dataclass(frozen=True)
class BackendOptions:
    """How models are loaded; mirrors the ``--probe-*`` options."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = 16  # None: auto (probe.backends.hf.batching)
    trust_remote_code: bool = False
    allow_pickle: bool = False


def parse_batch_size(value: str | int | None) -> int | None:
    """``--probe-batch-size``: ``auto`` (``None``: sized to the device's free memory when
    the model loads) or a positive integer; anything else is a usage error."""
    if value is None or isinstance(value, int):
        size = value
    elif value.strip().lower() == "auto":
        return None
    else:
        try:
            size = int(value.strip())
        except ValueError:
            size = 0
    if size is not None and size < 1:
        raise UsageError(f"--probe-batch-size must be a positive integer or auto, not "
                         f"{value!r}")
    return size


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


# What torch.device accepts for the accelerators people use: checked without importing
# torch, so a typo is a usage error before collection ends.
_DEVICE = re.compile(r"auto|cpu|mps|meta|(cuda|xpu|npu|hpu|mlu)(:\d+)?")


def check_options(options: BackendOptions) -> None:
    """Cheap checks of the loading options; raises ``UsageError`` with the fix."""
    if not _DEVICE.fullmatch(options.device.strip().lower()):
        raise UsageError(f"--probe-device: {options.device!r} is not a device; use auto, cpu, "
                         "cuda or cuda:N")
    from probe.backends.hf.options import LoadOptions  # a plain dataclass: no torch import

    # Its own checks (dtype, batch size), run now rather than when the models load.
    LoadOptions(device=options.device, dtype=options.dtype, batch_size=options.batch_size)


def check_models(base: str, candidate: str) -> None:
    """Both references exist, and they are both scripted or both real models."""
    check_ref(base, "--probe-base")
    check_ref(candidate, "--probe-candidate")
    if base.startswith(SCRIPTED_PREFIX) != candidate.startswith(SCRIPTED_PREFIX):
        raise UsageError("--probe-base and --probe-candidate must both be scripted: models "
                         "or both real models")
    path = Path(base).expanduser()
    if not base.startswith(SCRIPTED_PREFIX) and (path / "adapter_config.json").is_file():
        raise UsageError(f"--probe-base {base!r} is a peft adapter; give the model it was "
                         "trained on as --probe-base and the adapter as --probe-candidate")


def load_pair(base: str, candidate: str, options: BackendOptions) -> ModelPair:
    """Load the base and the candidate (sharing weights when the candidate is an adapter)."""
    base_scripted = base.startswith(SCRIPTED_PREFIX)
    cand_scripted = candidate.startswith(SCRIPTED_PREFIX)
    if base_scripted or cand_scripted:
        if not (base_scripted and cand_scripted):
            raise UsageError("--probe-base and --probe-candidate must both be scripted: models "
                             "or both real models")
        from probe.backends.scripted import load_script

        return ModelPair(load_script(base[len(SCRIPTED_PREFIX):]),
                         load_script(candidate[len(SCRIPTED_PREFIX):]))
    import probe.backends.hf as hf

    return hf.load_pair(base, candidate, hf.LoadOptions(
        device=options.device, dtype=options.dtype, batch_size=options.batch_size,
        trust_remote_code=options.trust_remote_code, allow_pickle=options.allow_pickle))


__all__ = ["Backend", "BackendOptions", "GenerationSettings", "ModelInfo", "ModelPair",
           "check_models", "check_options", "check_ref", "load_pair", "parse_batch_size"]

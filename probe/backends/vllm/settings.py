"""What ``LoadOptions`` mean for ``vllm.LLM`` on this machine, and the process setup.

In process, without a ``__main__`` guard: vLLM runs its engine core in a child
process by default, and on CPU starts it by *spawn*, which re-imports the caller's
main module; a script that calls ``probe.run`` at top level (or any entry point
without ``if __name__ == "__main__":``) then fails during start-up. With
``tensor_parallel_size`` 1 the engine needs no other process, so
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` keeps it in this one and ``probe run --engine
vllm``, pytest and plain scripts all work. Tensor parallelism needs worker processes:
then vLLM spawns them and the calling script needs the guard. Both variables are
only set when the user has not set them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions
from probe.errors import UsageError
from probe.options import DTYPE_NAMES, opt

# The share of memory vLLM reserves (gpu_memory_utilization): of GPU memory on a GPU,
# of RAM for the KV cache on CPU, where vLLM's own default of 0.92 fails on a machine
# that runs anything else (measured on a 24 GiB machine).
GPU_MEMORY_FRACTION = 0.9
CPU_MEMORY_FRACTION = 0.15
# Context length on CPU when not given: a model's own (SmolLM2: 8192) would make vLLM
# size its KV cache and buffers for sequences probe never sends.
CPU_MAX_MODEL_LEN = 4096
# The ranks vLLM accepts as max_lora_rank (vllm.config.lora.MaxLoRARanks).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class Platform:
    """Where vLLM runs: its platform (the installed vllm build decides), the dtype and
    the memory fraction the options resolve to there."""

    on_cpu: bool
    dtype: str
    memory_fraction: float


def prepare_process(options: LoadOptions) -> None:
    """Environment vLLM reads when an engine starts (see the module docstring)."""
    if options.tensor_parallel_size == 1:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # vLLM logs every start-up step at INFO; a CI log wants the report, not those.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    import torch

    # In process, vLLM would cut this process's torch threads to 1 for "serving" unless
    # OMP_NUM_THREADS is set; the model runs in these threads, so keep them.
    os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


def platform(options: LoadOptions) -> Platform:
    """The platform vLLM runs on, checked against ``options.device``; the dtype and the
    memory fraction resolved there."""
    from vllm.platforms import current_platform

    on_cpu = bool(current_platform.is_cpu())
    device = options.device.strip().lower()
    if device != "auto" and (device == "cpu") != on_cpu:
        where = "CPU" if on_cpu else "GPU"
        raise UsageError(f"{opt('device')} {options.device}: the installed vLLM runs on the "
                         f"{where}; use {opt('device')} auto with {opt('engine')} vllm")
    dtype = DTYPE_NAMES[options.dtype.strip().lower()]
    if dtype == "auto":
        # As the HF engine: fp32 on CPU (no numerical noise of our own), bf16 on a GPU.
        dtype = "float32" if on_cpu else "bfloat16"
    fraction = options.memory_fraction
    if fraction is None:
        fraction = CPU_MEMORY_FRACTION if on_cpu else GPU_MEMORY_FRACTION
    return Platform(on_cpu, dtype, fraction)


def model_max_len(directory: Path) -> int | None:
    """The context length a model's config.json gives, if any."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = config.get(name) if isinstance(config, dict) else None
        if isinstance(value, int) and value > 0:
            return value
    return None


def max_len(options: LoadOptions, where: Platform, directory: Path) -> int | None:
    """``max_model_len``: the option, else the model's own (capped on CPU); ``None`` lets
    vLLM read it."""
    if options.max_model_len is not None:
        return options.max_model_len
    own = model_max_len(directory)
    if where.on_cpu:
        return min(own or CPU_MAX_MODEL_LEN, CPU_MAX_MODEL_LEN)
    return own


def lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds an adapter of rank ``rank``."""
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise UsageError(f"{opt('candidate')}: adapter rank {rank} is above the largest rank vLLM "
                     f"serves ({LORA_RANKS[-1]}); use {opt('engine')} hf")


def llm_kwargs(options: LoadOptions, where: Platform, *, model: str, tokenizer: str,
               max_model_len: int | None, engines: int, lora_rank: int | None,
               lora_targets: list[str] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for one engine of ``engines`` sharing the memory
    fraction (a full-checkpoint pair runs two at once). ``lora_targets``: the only
    modules the engine's LoRA slots wrap (the adapter's own; ``None``: every one vLLM
    supports, the output head included)."""
    kwargs: dict[str, Any] = {
        "model": model, "tokenizer": tokenizer, "dtype": where.dtype,
        "tensor_parallel_size": options.tensor_parallel_size,
        "gpu_memory_utilization": where.memory_fraction / engines,
        "trust_remote_code": options.trust_remote_code,
        # Safetensors only unless pickles are allowed: unpickling can run code.
        "load_format": "auto" if options.allow_pickle else "safetensors",
        "seed": 0,
        # CUDA graphs and torch.compile are GPU-side speed-ups; on CPU eager is what works.
        "enforce_eager": where.on_cpu,
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    if lora_rank is not None:
        kwargs.update(enable_lora=True, max_lora_rank=lora_rank, max_loras=1)
        if lora_targets is not None:
            kwargs["lora_target_modules"] = lora_targets
    return kwargs

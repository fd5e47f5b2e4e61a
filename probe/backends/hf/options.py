"""The concrete device and dtype that ``LoadOptions`` mean on this machine, and where a
model goes on a GPU: spread over GPUs or not (``device_map``), which attention kernel.

The decisions are pure functions of device facts (``device_map_for``,
``attention_for``), so they are tested with made-up GPUs on a machine without one;
the functions around them read the facts from this machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from probe.backends.base import LoadOptions
from probe.errors import UsageError
from probe.options import DTYPE_NAMES, opt


def runtime(options: LoadOptions) -> tuple[str, str]:
    """The concrete device and dtype name for ``options`` on this machine."""
    import torch

    name = options.device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
        local = os.environ.get("LOCAL_RANK", "")
        if name == "cuda" and local.isdigit() and torch.cuda.device_count() > 1:
            # Under torchrun each process takes its own GPU.
            name = f"cuda:{int(local) % torch.cuda.device_count()}"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"{opt('device')}: {options.device!r} is not a device; use auto, "
                         "cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{opt('device')} {options.device}: CUDA is not available on this "
                         f"machine; use {opt('device')} cpu")
    dtype = DTYPE_NAMES[options.dtype.strip().lower()]
    if dtype == "auto":
        # fp32 unless bf16 is native: fp16 overflows on some models (a measurement tool
        # should not add its own numerical noise), and CPUs gain little from half precision.
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype = "bfloat16" if bf16 else "float32"
    return str(device), dtype


# --- placement on a GPU (issue 13): pure decisions, tested with made-up device facts ---------

# The weights may take this share of one GPU's free memory and still leave room for
# batches (keys and values, activations, logits); past it the model is spread.
FIT = 0.85


def device_map_for(device: str, requested: str, weight_bytes: int,
                   free_bytes: Sequence[int], *, distributed: bool) -> str | None:
    """``"auto"`` when the model must be spread over the GPUs (and CPU RAM past them) by
    accelerate, else ``None`` (the whole model on ``device``).

    ``device`` is what ``runtime`` chose, ``requested`` what the user asked
    (``auto``, ``cuda``, ``cuda:1``), ``weight_bytes`` the weights' size in the chosen
    dtype and ``free_bytes`` each GPU's free memory. Only a model that does not fit
    one GPU is spread: accelerate's ``device_map`` runs the layers one GPU after the
    other, so spreading a model that fits only adds transfers (for speed across GPUs,
    vLLM's tensor parallelism is the engine). A GPU the user named (``cuda:1``) and a
    ``torchrun`` process (one GPU each) are never spread.
    """
    kind, _, index = device.partition(":")
    if kind != "cuda" or distributed or ":" in requested.strip():
        return None
    gpu = int(index) if index.isdigit() else 0
    if gpu >= len(free_bytes) or weight_bytes <= FIT * free_bytes[gpu]:
        return None
    return "auto"


def attention_for(device_type: str, dtype: str, *, supports_sdpa: bool, supports_flash: bool,
                  flash_installed: bool) -> str:
    """The ``attn_implementation`` a model loads with.

    FlashAttention-2 only on a GPU, in half precision (its kernels take nothing else),
    for a model class that supports it, with the ``flash_attn`` package installed;
    else torch's SDPA where the class supports it; else the eager implementation.
    """
    if (device_type == "cuda" and dtype in ("bfloat16", "float16") and supports_flash
            and flash_installed):
        return "flash_attention_2"
    return "sdpa" if supports_sdpa else "eager"


def causal_lm_class(config: Any) -> Any:
    """The transformers class ``AutoModelForCausalLM`` builds for ``config``, or ``None``
    (a model with its own code, or no causal LM for that config)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        classes: Any = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except (KeyError, ValueError):
        return None
    if not isinstance(classes, list | tuple):
        return classes
    named = {c.__name__: c for c in classes}
    return next((named[a] for a in getattr(config, "architectures", None) or () if a in named),
                classes[0])


def attention_for_config(config: Any, device_type: str, dtype: str) -> str | None:
    """``attention_for`` with the facts read from ``config``'s model class and this
    machine; ``None`` (transformers' own default) for a class it does not know."""
    import importlib.util

    cls = causal_lm_class(config)
    if cls is None:
        return None
    return attention_for(device_type, dtype,
                         supports_sdpa=bool(getattr(cls, "_supports_sdpa", False)),
                         supports_flash=bool(getattr(cls, "_supports_flash_attn", False)
                                             or getattr(cls, "_supports_flash_attn_2", False)),
                         flash_installed=importlib.util.find_spec("flash_attn") is not None)


def weight_bytes(config: Any, dtype: str, trust_remote_code: bool) -> int:
    """The size of the weights of a model built from ``config`` in ``dtype``, counted on
    an empty (meta-device) copy, so nothing is allocated; 0 when it cannot be built."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    try:
        with init_empty_weights():
            meta = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
                config, trust_remote_code=trust_remote_code)
    except Exception:  # a model's own code may fail in any way; then it is not spread
        return 0
    size = int(torch.empty((), dtype=getattr(torch, dtype)).element_size())
    return sum(int(p.numel()) for p in meta.parameters()) * size


def device_map(options: LoadOptions, device: str, config: Any, dtype: str) -> str | None:
    """``device_map_for`` with the facts of this machine: the weights' size from
    ``config`` and each GPU's free memory."""
    if not device.startswith("cuda"):
        return None
    import torch

    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return device_map_for(device, options.device, weight_bytes(config, dtype,
                                                               options.trust_remote_code),
                          free, distributed=os.environ.get("LOCAL_RANK", "").isdigit())

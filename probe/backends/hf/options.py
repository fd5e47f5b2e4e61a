"""The concrete device and dtype that ``LoadOptions`` mean on this machine."""

from __future__ import annotations

import os

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

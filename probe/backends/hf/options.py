"""How models are loaded: ``LoadOptions`` and the concrete device and dtype it means here."""

from __future__ import annotations

import os
from dataclasses import dataclass

from probe.errors import UsageError

DTYPE_NAMES = {"auto": "auto", "float32": "float32", "fp32": "float32",
               "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16"}


@dataclass(frozen=True)
class LoadOptions:
    """How models are loaded; mirrors the ``--probe-*`` options.

    ``device="auto"`` is CUDA when available, else CPU. ``dtype="auto"`` is float32 on
    CPU and bfloat16 on a CUDA device that supports it.
    """

    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    batch_size: int | None = 16  # None: auto, sized when the model loads (batching.py)

    def __post_init__(self) -> None:
        # Validated here, before any weights are read, so a typo costs nothing.
        if self.dtype.strip().lower() not in DTYPE_NAMES:
            raise UsageError(f"--probe-dtype: unknown dtype {self.dtype!r}; choose one of "
                             f"{', '.join(DTYPE_NAMES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--probe-batch-size must be a positive integer or auto, not "
                             f"{self.batch_size}")
        if not self.device.strip():
            raise UsageError("--probe-device must not be empty; use auto, cpu, cuda or cuda:N")


def _runtime(options: LoadOptions) -> tuple[str, str]:
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
        raise UsageError(f"--probe-device: {options.device!r} is not a device; use auto, cpu, "
                         "cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--probe-device {options.device}: CUDA is not available on this "
                         "machine; use --probe-device cpu")
    dtype = DTYPE_NAMES[options.dtype.strip().lower()]
    if dtype == "auto":
        # fp32 unless bf16 is native: fp16 overflows on some models (a measurement tool
        # should not add its own numerical noise), and CPUs gain little from half precision.
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype = "bfloat16" if bf16 else "float32"
    return str(device), dtype

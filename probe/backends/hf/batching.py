"""``--probe-batch-size auto``: a starting batch size from the memory the device has free.

``LoadOptions.batch_size`` is ``None`` for ``auto`` (``probe.backends.parse_batch_size``
reads the option); ``resolve_batch_size`` turns it into a number once the model is
loaded.

On a GPU the right batch size depends on the card, the model and the dtype; a fixed
default wastes a large card or overflows a small one. ``auto`` starts from what the
free memory holds after the weights are loaded, at a per-row cost estimated from the
model's shape (its key/value cache over ``ROW_TOKENS`` tokens, the transient
activations of a layer, and the logits of the larger of a decoding step and a
whole-row scoring pass, which on a GPU is the default path: ``SCORED_TOKENS``
positions in the model's dtype plus their float32 log-softmax), and leaves the
rest to the out-of-memory back-off, which halves the size if the estimate was
optimistic. A model spread over several GPUs (``device_map``) is sized by the GPU
with the least free memory. On CPU, where memory is rarely the limit and bigger
batches stop paying off early (the benchmark in the README), ``auto`` is 16.
"""

from __future__ import annotations

from typing import Any

from probe.backends.hf.kv import model_devices

CPU_BATCH = 16
ROW_TOKENS = 2048  # a generous prompt + completion length for one row
SCORED_TOKENS = 64  # positions whose logits a whole-row scoring pass keeps, per row
USABLE = 0.6  # of the free memory: headroom for the allocator and fragmentation
LIMITS = (1, 256)


def row_bytes(config: Any, dtype_bytes: int) -> int:
    """Estimated memory of one batch row of ``ROW_TOKENS`` tokens for a model ``config``."""
    text = getattr(config, "text_config", None) or config
    hidden = int(text.hidden_size)
    layers = int(text.num_hidden_layers)
    heads = int(text.num_attention_heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or hidden // heads)
    intermediate = int(getattr(text, "intermediate_size", None) or 4 * hidden)
    vocab = int(text.vocab_size)
    kv_cache = 2 * layers * kv_heads * head_dim * ROW_TOKENS * dtype_bytes
    activations = (4 * hidden + 3 * intermediate) * ROW_TOKENS * dtype_bytes
    # One decoding step's float32 logits and softmax, or the scored positions' logits
    # (model dtype) with their float32 copy and log-softmax (scoring.score_batch).
    logits = max(2 * vocab * 4, SCORED_TOKENS * vocab * (dtype_bytes + 8))
    return kv_cache + activations + logits


def auto_batch_size(device_type: str, free_bytes: int, config: Any, dtype_bytes: int) -> int:
    """The starting batch size for a device with ``free_bytes`` free after loading."""
    if device_type != "cuda":
        return CPU_BATCH
    rows = int(USABLE * free_bytes) // max(1, row_bytes(config, dtype_bytes))
    return max(LIMITS[0], min(LIMITS[1], rows))


def resolve_batch_size(requested: int | None, model: Any) -> int:
    """``requested``, or for ``auto`` the size ``auto_batch_size`` gives for ``model``."""
    if requested is not None:
        return requested
    import torch

    parameter = next(model.parameters())
    gpus = sorted(d for d in model_devices(model) if d.startswith("cuda"))
    if not gpus:
        return auto_batch_size(parameter.device.type, 0, model.config,
                               parameter.element_size())
    free = min(torch.cuda.mem_get_info(torch.device(d))[0] for d in gpus)
    return auto_batch_size("cuda", free, model.config, parameter.element_size())

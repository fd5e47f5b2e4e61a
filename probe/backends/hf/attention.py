"""Grouped-query attention on CPU without copying the keys and values.

transformers' ``sdpa`` attention repeats every key/value head for its group of
query heads (``repeat_kv``: a copy of the layer's whole key/value cache) whenever
an attention mask is passed, because some GPU kernels fall back to slow paths for
masked grouped-query attention. On CPU, torch's own SDPA takes the groups as they
are (``enable_gqa=True``) with the same result; for SmolLM2 (9 query heads over 3
key/value heads) the copies were about 4% of the scoring time.

``use_cpu_gqa`` switches a CPU model whose attention is ``sdpa`` to this function;
any call it does not handle (a GPU tensor, no groups, no mask, extra features) goes
to transformers' own ``sdpa`` function unchanged.
"""

from __future__ import annotations

from typing import Any

NAME = "probe_cpu_gqa_sdpa"
# Keyword arguments that need transformers' full sdpa function.
_DEFERRED = ("position_bias", "softcap", "s_aux", "sinks")


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
               dropout: float = 0.0, scaling: float | None = None,
               is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if (query.device.type != "cpu" or groups == 1 or attention_mask is None
            or query.shape[2] == 1 or any(kwargs.get(k) is not None for k in _DEFERRED)):
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, is_causal=is_causal,
                                      **kwargs)
    # With a mask, transformers never asks for the causal flag: the mask is complete.
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling,
        is_causal=False, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, _attention)
    # The masks are sdpa's: the function receives exactly what ``sdpa`` would.
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


def use_cpu_gqa(model: Any) -> None:
    """Run ``model``'s attention through ``_attention`` when it is a CPU sdpa model."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return
    if next(model.parameters()).device.type != "cpu":
        return
    if not callable(getattr(model, "set_attn_implementation", None)):
        return
    _register()
    model.set_attn_implementation(NAME)

"""The model split in two (body and output head) and the key/value cache passes built on it.

Scoring and decoding share work between rows by running the transformer body over
a token span once and handing its key/value cache to every row that continues
it: the prefix common to every prompt of a call (chat template, system prompt,
few-shot context) runs once with batch size 1, each prompt's own tokens once per
batch, and only then the rows that continue them (completions to score, tokens
being decoded). Rows of a batch are right-padded; padded slots stay in the cache
but the attention mask hides them, and every real token gets its true position
id, so a row computes what it would compute alone (up to float rounding).

The head (``lm_head``) runs only on the hidden states whose logits are needed.
A model whose head is not a plain projection of the body's last hidden state
(logit soft-capping or scaling) or whose attention is not plain causal attention
(sliding windows) is not split: ``split_model`` returns ``None`` and the callers
fall back to whole-model forward passes.

Where the paths run (issue 13): they were built and measured on CPU (the sliced
head, the 4-D lane masks, the grouped-query kernel of ``attention``) and have not
been measured on a GPU, where ``model.generate`` and whole-row passes use kernels
tuned for it. So by default only a model on CPU is split; ``PROBE_FAST_PATHS=on``
turns the paths on for a model on a GPU too (measure first:
``benchmarks/gpu_engines.py``), ``off`` turns them off everywhere. A model spread
over several devices (``device_map="auto"``) is never split.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from probe.errors import UsageError

# Config attributes that mean the logits are not lm_head(hidden) alone, or that
# attention is not plain causal attention over everything cached.
_UNSPLITTABLE = ("final_logit_softcapping", "logit_scale", "sliding_window",
                 "attention_chunk_size")


@dataclass(frozen=True)
class Split:
    """The body (hidden states from tokens and a cache) and the head (hidden -> logits)."""

    body: Any
    head: Any
    cache_arg: str  # "cache" (transformers 5) or "past_key_values" (older)


# The environment variable that says where the shared-prefix paths run.
FAST_PATHS_ENV = "PROBE_FAST_PATHS"
_ON = ("on", "1", "true", "yes")
_OFF = ("off", "0", "false", "no")


def fast_paths_on(device_type: str, setting: str | None) -> bool:
    """Whether the shared-prefix paths run for a model on ``device_type`` ("cpu",
    "cuda", ...) when ``PROBE_FAST_PATHS`` is ``setting`` (``None``: unset).

    ``auto`` (the default): on CPU only, the one device they were measured on.
    """
    value = (setting or "auto").strip().lower()
    if value == "auto":
        return device_type == "cpu"
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise UsageError(f"{FAST_PATHS_ENV}={setting!r}: use auto (the shared-prefix paths on CPU "
                     "only, the default), on or off")


def model_devices(model: Any) -> set[str]:
    """The devices ``model``'s weights are on ("cpu", "cuda:0", ...); more than one for a
    model spread by ``device_map``."""
    placed = getattr(model, "hf_device_map", None)
    if isinstance(placed, dict) and placed:
        # accelerate writes GPU indices as plain ints.
        return {f"cuda:{d}" if isinstance(d, int) else str(d) for d in placed.values()}
    try:
        return {str(next(model.parameters()).device)}
    except (AttributeError, StopIteration, TypeError):
        return set()


def fast_paths_allowed(model: Any) -> bool:
    """Whether ``model`` (or the LM inside a peft wrapper) may take the shared-prefix paths
    where it is, under ``PROBE_FAST_PATHS``."""
    get_base = getattr(model, "get_base_model", None)
    lm = get_base() if callable(get_base) else model
    devices = model_devices(lm)
    if len(devices) != 1:  # spread over devices: the paths' tensors would need moving
        return False
    device_type = next(iter(devices)).split(":")[0]
    return fast_paths_on(device_type, os.environ.get(FAST_PATHS_ENV))


def split_model(model: Any) -> Split | None:
    """The body and head of a causal LM (or of the LM inside a peft wrapper), or ``None``
    (also where ``fast_paths_allowed`` says no: the callers then take the plain paths).

    peft injects its adapter layers into the body's modules, so calling the body of
    a peft model directly still honours ``disable_adapter()``.
    """
    if not fast_paths_allowed(model):
        return None
    return split_structure(model)


def split_structure(model: Any) -> Split | None:
    """``split_model`` without the device rule: whether the model's shape allows a split."""
    get_base = getattr(model, "get_base_model", None)
    lm = get_base() if callable(get_base) else model
    get_body = getattr(lm, "get_decoder", None)
    get_head = getattr(lm, "get_output_embeddings", None)
    if not (callable(get_body) and callable(get_head)):
        return None
    config = getattr(lm, "config", None)
    if config is None or any(getattr(config, name, None) for name in _UNSPLITTABLE):
        return None
    layer_types = getattr(config, "layer_types", None) or ()
    if any(t != "full_attention" for t in layer_types):
        return None
    try:
        body, head = get_body(), get_head()
    except (AttributeError, NotImplementedError):
        return None
    if body is None or head is None or body is lm:
        return None
    try:
        params = set(inspect.signature(body.forward).parameters)
    except (TypeError, ValueError):
        return None
    arg = next((name for name in ("cache", "past_key_values") if name in params), None)
    if arg is None or "position_ids" not in params:
        return None
    return Split(body, head, arg)


def common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all ``sequences``, leaving each at
    least one token of its own (its last hidden state gives the first next-token logits)."""
    if not sequences:
        return 0
    first = sequences[0]
    limit = min(len(s) for s in sequences) - 1
    length = 0
    while length < limit and all(s[length] == first[length] for s in sequences):
        length += 1
    return length


@dataclass
class Context:
    """Key/value states of a batch of token spans, with the mask of which slots are real.

    ``layers[i]`` is layer i's (keys, values), each (batch, heads, slots, head_dim);
    ``mask`` is (batch, slots) with 1 for real tokens; ``lengths[b]`` is how many real
    tokens row b has (its next token's position id).
    """

    layers: list[tuple[Any, Any]]
    mask: Any
    lengths: Any

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    def select(self, index: Any) -> Context:
        """The rows ``index`` (a 1-D long tensor; repeats allowed), copied."""
        return Context([(k.index_select(0, index), v.index_select(0, index))
                       for k, v in self.layers],
                       self.mask.index_select(0, index), self.lengths.index_select(0, index))

    def expand(self, rows: int) -> Context:
        """A one-row context seen as ``rows`` identical rows (views, no copy)."""
        return Context([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                        for k, v in self.layers],
                       self.mask.expand(rows, -1), self.lengths.expand(rows))


def extend(split: Split, context: Context | None, ids: Any, mask: Any) -> tuple[Any, Context]:
    """Run the body over ``ids`` (rows x width, right-padded, ``mask`` 1 on real tokens)
    after ``context``; return the hidden states and the context grown by these tokens."""
    import torch
    from transformers import DynamicCache

    rows, width = ids.shape
    device = ids.device
    if context is None:
        start = torch.zeros(rows, dtype=torch.long, device=device)
        full_mask = mask
        cache = DynamicCache()
    else:
        start = context.lengths
        full_mask = torch.cat([context.mask, mask], dim=1)
        cache = cache_of(context.layers)
    # Right padding: real token j of a row sits at position start + j. Pads get
    # positions too, but no real token attends to them (causal order and the mask).
    positions = start.unsqueeze(1) + torch.arange(width, device=device).unsqueeze(0)
    out = split.body(input_ids=ids, attention_mask=full_mask, position_ids=positions,
                     use_cache=True, **{split.cache_arg: cache})
    # The body grew ``cache`` in place by this call's keys and values.
    grown: Any = cache.layers
    layers = [(layer.keys, layer.values) for layer in grown]
    return out.last_hidden_state, Context(layers, full_mask, start + mask.sum(dim=1))


def cache_of(layers: list[tuple[Any, Any]]) -> Any:
    """A ``DynamicCache`` holding ``layers`` as they are.

    Not ``DynamicCache(ddp_cache_data=...)``, which copies every layer once more
    (it concatenates onto an empty tensor) before the new tokens are appended.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache()
    cache.layers = []
    for keys, values in layers:
        layer = DynamicLayer()  # type: ignore[no-untyped-call]
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
        cache.layers.append(layer)
    return cache


def pad_right(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """Token rows as one right-padded (ids, mask) pair of long tensors on ``device``."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(list(row), dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def last_hidden(hidden: Any, mask: Any) -> Any:
    """Each row's hidden state at its last real token (rows x hidden)."""
    import torch

    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

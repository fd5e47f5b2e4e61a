"""Batched decoding (greedy and sampled) over the split model, with per-row stopping.

A batch is a set of rows, each continuing one prompt: greedy decoding has one row
per prompt, sampling one row per sample. The prefix common to every prompt of the
call runs once (``kv``), each prompt's own tokens once per batch (its samples share
them), then one token per step for the rows still running: a row that produced an
end-of-sequence token or reached ``max_new_tokens`` leaves the batch, and its
keys and values are dropped, so finished rows cost nothing more.

Greedy picks the most likely token, as ``generate`` does with sampling off. A
sampled row draws from its own ``torch.Generator``, seeded from the prompt's seed
and the sample's number, so its tokens do not depend on what else is in the batch
(nor on the batch size, nor on any global random state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from probe.backends.hf.kv import Context, Split, extend, last_hidden, pad_right


@dataclass(frozen=True)
class Sampler:
    """How the next token is drawn: ``temperature`` and ``top_p`` (nucleus) sampling."""

    temperature: float
    top_p: float


def _pick(logits: Any, sampler: Sampler | None, generators: Sequence[Any]) -> Any:
    """The next token of each row (a 1-D long tensor)."""
    import torch

    if sampler is None:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / sampler.temperature, dim=-1)
    if sampler.top_p < 1.0:
        # Nucleus sampling (Holtzman et al. 2020): keep the most likely tokens whose
        # mass reaches top_p; the most likely token always stays.
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens above
        sorted_probs = sorted_probs.masked_fill(before >= sampler.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(1, order, sorted_probs)
    return torch.cat([torch.multinomial(probs[i], 1, generator=g)
                      for i, g in enumerate(generators)])


def decode_batch(split: Split, prompts: list[tuple[int, ...]], row_prompt: list[int],
                 prefix: Context | None, prefix_len: int, *, max_new_tokens: int,
                 eos_ids: frozenset[int], pad_token_id: int, device: Any,
                 sampler: Sampler | None = None,
                 seeds: Sequence[int] = ()) -> list[list[int]]:
    """New token ids of each row (``row_prompt[r]`` indexes ``prompts``), cut before eos.

    ``prefix`` holds the first ``prefix_len`` tokens of every prompt; ``seeds[r]``
    seeds row r's generator when sampling.
    """
    import torch

    ids, mask = pad_right([p[prefix_len:] for p in prompts], pad_token_id, device)
    start = prefix.expand(len(prompts)) if prefix is not None else None
    hidden, context = extend(split, start, ids, mask)
    index = torch.tensor(row_prompt, device=device)
    states = last_hidden(hidden, mask).index_select(0, index)
    context = context.select(index)
    generators = []
    if sampler is not None:
        for seed in seeds:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed % 2**64)
            generators.append(generator)
    outputs: list[list[int]] = [[] for _ in row_prompt]
    active = list(range(len(row_prompt)))  # original row of each running row
    for step in range(max_new_tokens):
        tokens = _pick(split.head(states), sampler, generators).tolist()
        keep = []
        for k, (row, token) in enumerate(zip(active, tokens, strict=True)):
            if token in eos_ids:
                continue
            outputs[row].append(token)
            keep.append(k)
        if step == max_new_tokens - 1 or not keep:
            break
        if len(keep) < len(active):  # drop finished rows and their cached keys/values
            chosen = torch.tensor(keep, device=device)
            context = context.select(chosen)
            generators = [generators[k] for k in keep] if generators else []
            active = [active[k] for k in keep]
            tokens = [tokens[k] for k in keep]
        step_ids = torch.tensor(tokens, device=device).unsqueeze(1)
        hidden, context = extend(split, context, step_ids, torch.ones_like(step_ids))
        states = hidden[:, -1]
    return outputs

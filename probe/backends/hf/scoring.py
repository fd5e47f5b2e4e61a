"""Log-likelihood scoring for ``HFBackend.score``: packing rows into batches, and the
forward pass that turns one batch into mean per-token log-probabilities.

``score`` gives the mean per-token log-probability of a completion after the prompt
exactly as ``generate`` renders it (chat template and prefill), for the
log-likelihood margin of DESIGN.md.
"""

from __future__ import annotations

from typing import Any

from probe.errors import BackendError

# One scoring row: the rendered prompt's token ids and the completion's token ids.
_Row = tuple[tuple[int, ...], tuple[int, ...]]


def _score_batches(groups: dict[tuple[int, ...], dict[tuple[int, ...], None]],
                   batch_size: int) -> list[list[_Row]]:
    """Pack the rows of each prompt together, longest rows first, to limit padding."""
    def longest(item: tuple[tuple[int, ...], dict[tuple[int, ...], None]]) -> int:
        prompt_ids, completions = item
        return len(prompt_ids) + max(len(c) for c in completions)

    batches: list[list[_Row]] = []
    current: list[_Row] = []
    for prompt_ids, completions in sorted(groups.items(), key=longest, reverse=True):
        rows = sorted(((prompt_ids, c) for c in completions), key=lambda r: len(r[1]),
                      reverse=True)
        # A prompt with more completions than fit in one batch is split; otherwise
        # its rows never straddle two batches.
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            if len(current) + len(chunk) > batch_size:
                batches.append(current)
                current = []
            current.extend(chunk)
    if current:
        batches.append(current)
    return batches


def _takes_logits_to_keep(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (most transformers LMs do)."""
    import inspect

    get_base = getattr(model, "get_base_model", None)  # peft wraps the LM
    module = get_base() if callable(get_base) else model
    try:
        names = set(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):  # no introspectable signature: play safe
        names = set()
    return "logits_to_keep" in names


def _score_batch(model: Any, rows: list[_Row], *, pad_token_id: int, device: Any, trims: bool,
                 name: str, batch_size: int) -> list[float]:
    """Mean log-probability of each row's completion, from one forward pass over ``rows``.

    ``device`` is where ``model`` lives; ``trims`` whether its forward takes
    ``logits_to_keep``; ``name`` and ``batch_size`` only go into the error message.
    """
    import torch

    lengths = [len(p) + len(c) for p, c in rows]
    width = max(lengths)
    # Right padding: every row starts at position 0, so the default position ids
    # (0, 1, 2...) are already right and each row's real tokens see exactly what they
    # would see alone (causal attention never looks at the padding after them).
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, ((prompt_ids, completion_ids), length) in enumerate(zip(rows, lengths,
                                                                     strict=True)):
        input_ids[r, :length] = torch.tensor(prompt_ids + completion_ids, dtype=torch.long)
        attention_mask[r, :length] = 1
    # The logits at position t are the distribution of token t + 1: a completion that
    # starts at position len(prompt) is scored from position len(prompt) - 1 on. Only
    # positions from the earliest of those need logits; lm_head over the whole prompt
    # would cost a (rows x width x vocab) tensor for nothing.
    first = min(len(p) for p, _ in rows) - 1
    kwargs: dict[str, Any] = {"logits_to_keep": width - first} if trims else {}
    try:
        logits = model(input_ids=input_ids.to(device),
                       attention_mask=attention_mask.to(device),
                       use_cache=False, **kwargs).logits
    except RuntimeError as err:  # includes torch.OutOfMemoryError
        raise BackendError(f"{name}: scoring failed: {err}. If memory ran "
                           f"out, lower --probe-batch-size (now {batch_size})") from err
    offset = width - logits.shape[1]  # 0 when the model returned every position
    row_index: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    for r, (prompt_ids, completion_ids) in enumerate(rows):
        start = len(prompt_ids) - 1 - offset
        row_index += [r] * len(completion_ids)
        positions += range(start, start + len(completion_ids))
        targets += completion_ids
    on = logits.device
    # Gather the scored positions first, then log_softmax over the vocabulary: a
    # (tokens x vocab) tensor, not (rows x width x vocab). float32 because bf16 logits
    # would round the log-probabilities visibly.
    picked = logits[torch.tensor(row_index, device=on), torch.tensor(positions, device=on)]
    log_probs = torch.log_softmax(picked.float(), dim=-1)
    token_scores = log_probs.gather(1, torch.tensor(targets, device=on).unsqueeze(1))
    sums = torch.zeros(len(rows), dtype=torch.float64, device=on).index_add_(
        0, torch.tensor(row_index, device=on), token_scores.squeeze(1).double())
    return [total / len(completion_ids)
            for total, (_, completion_ids) in zip(sums.tolist(), rows, strict=True)]

"""Log-likelihood scoring for ``HFBackend.score``: packing rows into batches, and the
forward passes that turn one batch into mean per-token log-probabilities.

``score`` gives the mean per-token log-probability of a completion after the prompt
exactly as ``generate`` renders it (chat template and prefill), for the
log-likelihood margin of DESIGN.md.

The fast path (``score_split``, models that ``kv.split_model`` can split) computes
each token span once: the prefix shared by every prompt of the call once, each
prompt's own tokens once per batch however many completions follow it, and the
completions last, over the cached keys and values; the output head runs only at
the positions whose log-probability is summed. ``_score_batch`` is the plain path
for other models: one forward pass over whole (prompt + completion) rows.
"""

from __future__ import annotations

from typing import Any

from probe.backends.hf.kv import Context, Split, extend, last_hidden, pad_right

# One scoring row: the rendered prompt's token ids and the completion's token ids.
_Row = tuple[tuple[int, ...], tuple[int, ...]]
# The output head runs on at most this many hidden states at once: its output is
# (tokens x vocabulary) floats, 200 MB for 1,024 tokens of a 49k vocabulary.
_HEAD_CHUNK = 512


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


def _score_batch(model: Any, rows: list[_Row], *, pad_token_id: int, device: Any,
                 trims: bool) -> list[float]:
    """Mean log-probability of each row's completion, from one forward pass over ``rows``.

    ``device`` is where ``model`` lives; ``trims`` whether its forward takes
    ``logits_to_keep``.
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
    # Errors, out-of-memory included, go to the caller's Backoff, which retries smaller.
    logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                   use_cache=False, **kwargs).logits
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


def score_split(split: Split, rows: list[_Row], prefix: Context | None, prefix_len: int, *,
                pad_token_id: int, device: Any) -> list[float]:
    """Mean log-probability of each row's completion, sharing every prompt's computation.

    ``prefix`` holds the keys and values of the first ``prefix_len`` tokens, which every
    row's prompt starts with (``None`` and 0 when there is no shared prefix).
    """
    import torch

    prompts = list(dict.fromkeys(p for p, _ in rows))
    index = {p: i for i, p in enumerate(prompts)}
    ids, mask = pad_right([p[prefix_len:] for p in prompts], pad_token_id, device)
    start = prefix.expand(len(prompts)) if prefix is not None else None
    hidden, context = extend(split, start, ids, mask)
    # The prompt's last hidden state predicts every row's first completion token.
    firsts = last_hidden(hidden, mask)
    prompt_of = torch.tensor([index[p] for p, _ in rows], device=device)
    chosen = [firsts.index_select(0, prompt_of)]
    row_of: list[int] = list(range(len(rows)))
    targets: list[int] = [c[0] for _, c in rows]
    # The completions' own tokens, all but the last (whose prediction nobody scores),
    # run once over the cached prompt of their row.
    longer = [r for r, (_, c) in enumerate(rows) if len(c) > 1]
    if longer:
        ids, mask = pad_right([rows[r][1][:-1] for r in longer], pad_token_id, device)
        hidden, _ = extend(split, context.select(prompt_of[longer]), ids, mask)
        picked_rows: list[int] = []
        picked_cols: list[int] = []
        for k, r in enumerate(longer):
            completion = rows[r][1]
            picked_rows += [k] * (len(completion) - 1)
            picked_cols += range(len(completion) - 1)
            row_of += [r] * (len(completion) - 1)
            targets += completion[1:]
        chosen.append(hidden[torch.tensor(picked_rows, device=device),
                             torch.tensor(picked_cols, device=device)])
    states = torch.cat(chosen)
    return _mean_log_probs(split.head, states, targets, row_of, [len(c) for _, c in rows])


def _mean_log_probs(head: Any, states: Any, targets: list[int], row_of: list[int],
                    lengths: list[int]) -> list[float]:
    """Per-row mean of log p(target) with logits = head(state), in chunks of states."""
    import torch

    device = states.device
    target = torch.tensor(targets, device=device)
    scores = []
    for start in range(0, states.shape[0], _HEAD_CHUNK):
        logits = head(states[start:start + _HEAD_CHUNK])
        # float32 because bf16 logits would round the log-probabilities visibly.
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        scores.append(log_probs.gather(1, target[start:start + _HEAD_CHUNK].unsqueeze(1)))
    sums = torch.zeros(len(lengths), dtype=torch.float64, device=device).index_add_(
        0, torch.tensor(row_of, device=device), torch.cat(scores).squeeze(1).double())
    return [total / n for total, n in zip(sums.tolist(), lengths, strict=True)]

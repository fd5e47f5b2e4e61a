"""Log-likelihood scoring for ``HFBackend.score``: packing rows into batches, and the
forward passes that turn one batch into mean per-token log-probabilities.

``score`` gives the mean per-token log-probability of a completion after the prompt
exactly as ``generate`` renders it (chat template and prefill), for the
log-likelihood margin (m_M in docs/metrics.md).

The fast path (``score_split``, models that ``kv.split_model`` can split) computes
each token span once: the prefix shared by every prompt of the batch once (its
keys and values are remembered across batches), then one forward pass in which
each prompt of the batch has a *lane*: its own tokens followed by the tokens of
every completion scored after it, side by side. A lane's attention mask lets each
completion see the prefix, its prompt and its own earlier tokens, never another
completion, and position ids restart after the prompt for each completion, so
every token computes what it would in its own (prompt + completion) row. Packing
completions behind their prompt instead of one row per completion removes the
prompt's repeated keys and values, the padding of short completions to the
longest one, and a second forward pass per batch.

The output head runs only at the positions whose log-probability is summed, one
slice of the vocabulary at a time (``target_log_probs``): the log-softmax needs
the log-sum-exp over every logit, but never the whole (positions x vocabulary)
matrix at once, which is memory traffic rather than arithmetic on a CPU.
``score_batch`` is the plain path for other models: one forward pass over whole
(prompt + completion) rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.backends.hf.kv import Context, Split, cache_of

# One scoring row: the rendered prompt's token ids and the completion's token ids.
Row = tuple[tuple[int, ...], tuple[int, ...]]
# The output head runs on at most this many hidden states at once...
_HEAD_CHUNK = 512
# ... and over this many vocabulary entries at once: 8 MB of float32 logits for 512
# states instead of 100 MB for SmolLM2's whole vocabulary; on the benchmark machine
# the head ran about 1.4x faster this way (the log-sum-exp reads cached logits).
_VOCAB_SLICE = 4096


def score_batches(groups: dict[tuple[int, ...], dict[tuple[int, ...], None]],
                  batch_size: int) -> list[list[Row]]:
    """Pack the rows of each prompt together, longest lanes first, to limit padding.

    A prompt's lane on the fast path is its tokens and all its completions but
    their last tokens (``score_split``); the plain path pads to the longest row,
    which sorts the same way often enough.
    """
    def longest(item: tuple[tuple[int, ...], dict[tuple[int, ...], None]]) -> int:
        prompt_ids, completions = item
        return len(prompt_ids) + sum(len(c) - 1 for c in completions)

    batches: list[list[Row]] = []
    current: list[Row] = []
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


def takes_logits_to_keep(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (most transformers LMs do)."""
    import inspect

    get_base = getattr(model, "get_base_model", None)  # peft wraps the LM
    module = get_base() if callable(get_base) else model
    try:
        names = set(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):  # no introspectable signature: play safe
        names = set()
    return "logits_to_keep" in names


def score_batch(model: Any, rows: list[Row], *, pad_token_id: int, device: Any,
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


@dataclass(frozen=True)
class Lanes:
    """One batch of scoring rows laid out as one lane per prompt (see the module doc).

    ``segments[l][j]`` says what token j of lane l is: 0 for the prompt's own tokens,
    s >= 1 for the s-th completion of the lane, -1 for padding. ``picks`` are the
    (lane, column) positions whose hidden states predict the scored tokens, in the
    order of ``targets``; ``row_of[k]`` is the row that target k belongs to.
    """

    ids: list[list[int]]
    positions: list[list[int]]
    segments: list[list[int]]
    picks: list[tuple[int, int]]
    targets: list[int]
    row_of: list[int]


def pack_lanes(rows: list[Row], prefix_len: int, pad_token_id: int) -> Lanes:
    """Lay ``rows`` out as lanes; every prompt starts with the same ``prefix_len`` tokens,
    which are not part of the lanes (their keys and values come from the cache)."""
    prompts = list(dict.fromkeys(p for p, _ in rows))
    lane_of = {p: i for i, p in enumerate(prompts)}
    members: list[list[int]] = [[] for _ in prompts]
    for r, (prompt_ids, _) in enumerate(rows):
        members[lane_of[prompt_ids]].append(r)

    ids: list[list[int]] = []
    positions: list[list[int]] = []
    segments: list[list[int]] = []
    picks: list[tuple[int, int]] = []
    targets: list[int] = []
    row_of: list[int] = []
    for lane, prompt_ids in enumerate(prompts):
        own = list(prompt_ids[prefix_len:])
        lane_ids, lane_seg = own[:], [0] * len(own)
        lane_pos = list(range(prefix_len, len(prompt_ids)))
        for segment, r in enumerate(members[lane], start=1):
            completion = rows[r][1]
            start = len(lane_ids)
            # The last token is only ever a target: nothing reads its hidden state.
            body = completion[:-1]
            lane_ids += body
            lane_pos += range(len(prompt_ids), len(prompt_ids) + len(body))
            lane_seg += [segment] * len(body)
            # The prompt's last token predicts the completion's first; each completion
            # token predicts the next.
            picks += [(lane, len(own) - 1)] + [(lane, start + k) for k in range(len(body))]
            targets += completion
            row_of += [r] * len(completion)
        ids.append(lane_ids)
        positions.append(lane_pos)
        segments.append(lane_seg)
    width = max(len(lane) for lane in ids)
    for lane_ids, lane_pos, lane_seg in zip(ids, positions, segments, strict=True):
        pad = width - len(lane_ids)
        lane_ids += [pad_token_id] * pad
        lane_pos += [0] * pad
        lane_seg += [-1] * pad
    return Lanes(ids, positions, segments, picks, targets, row_of)


def lane_mask(segments: Any, prefix_len: int, dtype: Any) -> Any:
    """The additive attention mask (lanes, 1, width, prefix_len + width) of ``segments``.

    A query sees every prefix slot, and among the lane's earlier tokens the prompt's
    own and those of its own segment. A pad sees the prefix and itself only, so no
    row of the softmax is empty; nothing reads a pad's output.
    """
    import torch

    lanes, width = segments.shape
    query, key = segments.unsqueeze(2), segments.unsqueeze(1)
    causal = torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    same_or_prompt = ((key == 0) & (query >= 0)) | ((key == query) & (query > 0))
    allowed = (causal & same_or_prompt) | torch.eye(width, dtype=torch.bool,
                                                    device=segments.device)
    if prefix_len:
        prefix = torch.ones(lanes, width, prefix_len, dtype=torch.bool, device=segments.device)
        allowed = torch.cat([prefix, allowed], dim=2)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min).unsqueeze(1)


def score_split(split: Split, rows: list[Row], prefix: Context | None, prefix_len: int, *,
                pad_token_id: int, device: Any) -> list[float]:
    """Mean log-probability of each row's completion, in one forward pass over lanes.

    ``prefix`` holds the keys and values of the first ``prefix_len`` tokens, which every
    row's prompt starts with (``None`` and 0 when there is no shared prefix).
    """
    import torch

    lanes = pack_lanes(rows, prefix_len, pad_token_id)
    ids = torch.tensor(lanes.ids, dtype=torch.long, device=device)
    positions = torch.tensor(lanes.positions, dtype=torch.long, device=device)
    segments = torch.tensor(lanes.segments, dtype=torch.long, device=device)
    mask = lane_mask(segments, prefix_len, next(split.body.parameters()).dtype)
    kwargs: dict[str, Any] = {"use_cache": False}
    if prefix is not None:
        # The lanes' keys and values are appended to a copy; the prefix stays as it was.
        kwargs = {"use_cache": True, split.cache_arg: cache_of(prefix.expand(len(ids)).layers)}
    hidden = split.body(input_ids=ids, attention_mask=mask, position_ids=positions,
                        **kwargs).last_hidden_state
    lane_index = torch.tensor([lane for lane, _ in lanes.picks], device=device)
    column = torch.tensor([col for _, col in lanes.picks], device=device)
    states = hidden[lane_index, column]
    return _mean_log_probs(split.head, states, lanes.targets, lanes.row_of,
                           [len(c) for _, c in rows])


def _mean_log_probs(head: Any, states: Any, targets: list[int], row_of: list[int],
                    lengths: list[int]) -> list[float]:
    """Per-row mean of log p(target) with logits = head(state), in chunks of states."""
    import torch

    device = states.device
    target = torch.tensor(targets, device=device)
    scores = [target_log_probs(head, states[start:start + _HEAD_CHUNK],
                                target[start:start + _HEAD_CHUNK])
              for start in range(0, states.shape[0], _HEAD_CHUNK)]
    sums = torch.zeros(len(lengths), dtype=torch.float64, device=device).index_add_(
        0, torch.tensor(row_of, device=device), torch.cat(scores).double())
    return [total / n for total, n in zip(sums.tolist(), lengths, strict=True)]


def target_log_probs(head: Any, states: Any, target: Any) -> Any:
    """log softmax(head(states))[target] per state, float32.

    A plain ``nn.Linear`` head is applied one vocabulary slice at a time: each slice's
    log-sum-exp and the target logits that fall in it are kept, the logits dropped.
    Any other head (a peft-wrapped one, say) runs whole. float32 because bf16 logits
    would round the log-probabilities visibly.
    """
    import torch

    if type(head) is not torch.nn.Linear:
        log_probs = torch.log_softmax(head(states).float(), dim=-1)
        return log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    weight, bias = head.weight, head.bias
    picked = torch.empty(states.shape[0], dtype=torch.float32, device=states.device)
    partial = []
    for start in range(0, weight.shape[0], _VOCAB_SLICE):
        stop = start + _VOCAB_SLICE
        logits = torch.nn.functional.linear(
            states, weight[start:stop], None if bias is None else bias[start:stop]).float()
        partial.append(torch.logsumexp(logits, dim=1))
        inside = ((target >= start) & (target < stop)).nonzero().squeeze(1)
        picked[inside] = logits[inside, target[inside] - start]
    return picked - torch.logsumexp(torch.stack(partial, dim=1), dim=1)

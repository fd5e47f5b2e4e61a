"""The logit lens for ``HFBackend.score_layers``: the mean per-token log-probability of a
completion read at every layer of the model.

The lens (nostalgebraist 2020, "interpreting GPT: the logit lens") applies the model's
final norm and output head to the residual stream after each decoder layer, as if the
model stopped there. One forward pass over whole (prompt + completion) rows runs the
body; a hook on each decoder layer keeps only the hidden states at the positions that
predict the completion's tokens, so memory grows with the completions, not with the
prompts. The head then runs on those states alone, one vocabulary slice at a time
(``scoring.target_log_probs``). After the last layer the lens is the model itself: its
figure equals ``score``'s up to float rounding (tests/test_latent.py checks it).

Only architectures whose logits are ``head(norm(last residual))`` qualify: a model that
soft-caps or scales its logits is refused rather than read wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.backends.hf.scoring import Row, target_log_probs
from probe.errors import BackendError

# The head runs on at most this many hidden states at once (as in scoring).
_HEAD_CHUNK = 512
# Where common architectures keep their decoder layers and their final norm.
_LAYER_NAMES = ("layers", "h", "blocks", "block")
_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f", "norm_f")
# Config attributes that mean the logits are not head(norm(hidden)) alone.
_NOT_PLAIN = ("final_logit_softcapping", "logit_scale")


@dataclass(frozen=True)
class Lens:
    """The parts the lens needs: the body (tokens -> hidden states), its decoder layers in
    order, the final norm and the output head."""

    body: Any
    layers: tuple[Any, ...]
    norm: Any
    head: Any


def find_lens(model: Any, name: str) -> Lens:
    """The lens parts of a causal LM (or of the LM inside a peft wrapper); ``BackendError``
    naming the architecture when they cannot be found."""
    import torch

    get_base = getattr(model, "get_base_model", None)  # peft wraps the LM
    lm = get_base() if callable(get_base) else model
    kind = type(lm).__name__
    config = getattr(lm, "config", None)
    odd = [a for a in _NOT_PLAIN if getattr(config, a, None)]
    if odd:
        raise BackendError(f"{name}: latent: {kind} computes its logits with {odd[0]}, which "
                           "the logit lens does not reproduce; remove 'latent' for this model")
    try:
        body, head = lm.get_decoder(), lm.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        body = head = None
    layers = next((m for n in _LAYER_NAMES if isinstance(m := getattr(body, n, None),
                                                         torch.nn.ModuleList)), None)
    norm = next((m for n in _NORM_NAMES if isinstance(m := getattr(body, n, None),
                                                     torch.nn.Module)), None)
    if body is None or head is None or layers is None or norm is None or not len(layers):
        raise BackendError(f"{name}: latent: cannot find the decoder layers, final norm and "
                           f"output head of a {kind} (the logit lens knows layers named "
                           f"{', '.join(_LAYER_NAMES)} and norms named {', '.join(_NORM_NAMES)})"
                           "; remove 'latent' for this model")
    return Lens(body, tuple(layers), norm, head)


def layer_scores(lens: Lens, rows: list[Row], *, pad_token_id: int,
                 device: Any) -> list[list[float]]:
    """Per row, per layer (first to last) the mean log-probability of the row's completion
    read through the lens, from one forward pass over ``rows``."""
    import torch

    lengths = [len(p) + len(c) for p, c in rows]
    width = max(lengths)
    # Right padding, as in scoring.score_batch: every row starts at position 0, and
    # causal attention never lets a real token see the padding after it.
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    row_index: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    for r, ((prompt_ids, completion_ids), length) in enumerate(zip(rows, lengths,
                                                                     strict=True)):
        input_ids[r, :length] = torch.tensor(prompt_ids + completion_ids, dtype=torch.long)
        attention_mask[r, :length] = 1
        # The state at position t predicts token t + 1.
        row_index += [r] * len(completion_ids)
        positions += range(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(completion_ids))
        targets += completion_ids
    rows_at = torch.tensor(row_index, device=device)
    cols_at = torch.tensor(positions, device=device)
    kept: list[Any] = []

    def keep(_module: Any, _args: Any, output: Any) -> None:
        # Decoder layers return a tensor (transformers 5) or a tuple led by it (older).
        hidden = output[0] if isinstance(output, tuple) else output
        kept.append(hidden[rows_at, cols_at])

    handles = [layer.register_forward_hook(keep) for layer in lens.layers]
    try:
        # Errors, out-of-memory included, go to the caller's Backoff.
        lens.body(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                  use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    if len(kept) != len(lens.layers):  # a layer ran twice, or not at all: not a plain stack
        raise BackendError(f"latent: expected one output per decoder layer ({len(lens.layers)}"
                           f"), got {len(kept)}")
    # Every layer's states in one stack, so the head runs on chunks of up to _HEAD_CHUNK
    # states whatever the batch: on a CPU a few large products beat one small one per
    # layer (the head is most of the lens's cost: layers x tokens x vocabulary).
    layers = len(kept)
    normed = lens.norm(torch.cat(kept))
    target = torch.tensor(targets, device=device).repeat(layers)
    scores = torch.cat([target_log_probs(lens.head, normed[s:s + _HEAD_CHUNK],
                                         target[s:s + _HEAD_CHUNK])
                        for s in range(0, normed.shape[0], _HEAD_CHUNK)])
    # Token k of layer l sits at l * tokens + k; its sum goes to slot l * rows + row.
    index = (torch.tensor(row_index, device=device).repeat(layers)
             + len(rows) * torch.arange(layers, device=device).repeat_interleave(len(targets)))
    sums = torch.zeros(layers * len(rows), dtype=torch.float64, device=device).index_add_(
        0, index, scores.double()).view(layers, len(rows))
    tokens = torch.tensor([len(c) for _, c in rows], dtype=torch.float64, device=device)
    means: list[list[float]] = (sums / tokens).T.tolist()
    return means

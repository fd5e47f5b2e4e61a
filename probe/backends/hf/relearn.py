"""The relearn perturbation: a few seeded steps of LoRA fine-tuning on unrelated text.

A suppression that a few steps of training on anything at all undo was thin: Łucki et
al. 2024 (arXiv 2409.18025) revived "unlearned" hazardous knowledge with LoRA on 10
unrelated samples, and Deeb & Roger 2024 (arXiv 2410.08827) found that training on part
of the forgotten facts recovers the rest. Here the candidate and, as the control, the
base each get the same steps (same text, same batches, same seed) of LoRA on their
attention projections, and the LoRA is merged back into a standalone copy. The text is
unrelated passages, or (``data: probes``) chat answers from the suite's own training
probes (``probe.engine.held_out``), the loss on the answers only.

The text is ``data/unrelated.txt``: everyday prose written for this project, with no
fact a suite is likely to probe.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from importlib import resources
from typing import Any

from probe.spec.model import Relearn

# The attention projections of most decoder models; others fall back to every linear.
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
# Tokens per training sequence (the passages are one or two sentences).
MAX_TOKENS = 96


def unrelated_text() -> list[str]:
    """The shipped passages, one per non-comment line."""
    text = resources.files("probe.backends.hf").joinpath("data/unrelated.txt").read_text(
        encoding="utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def text_digest(passages: list[str]) -> str:
    """sha256 of the passages: part of the fingerprint of a relearned model."""
    return hashlib.sha256("\n".join(passages).encode("utf-8")).hexdigest()


def _targets(model: Any) -> list[str] | str:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = [t for t in _ATTENTION if t in names]
    return found or "all-linear"


def answer_rows(examples: Sequence[tuple[list[int], list[int]]],
                pad_token_id: int) -> tuple[Any, Any, Any]:
    """``input_ids``, ``attention_mask`` and ``labels`` for (prompt ids, answer ids) rows,
    right-padded: the loss is on the answer's tokens only (the prompt's and the padding's
    labels are -100), as in supervised fine-tuning on chat answers."""
    import torch

    width = max(len(p) + len(a) for p, a in examples)
    ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, (prompt, answer) in enumerate(examples):
        whole = prompt + answer
        ids[row, :len(whole)] = torch.tensor(whole)
        mask[row, :len(whole)] = 1
        labels[row, len(prompt):len(whole)] = torch.tensor(answer)
    return ids, mask, labels


def settings_text(settings: Relearn) -> str:
    """The training settings as the relearned models' fingerprints record them (the
    format of ``repr`` before ``data`` and ``train`` existed, so the fingerprints of
    relearning on unrelated text did not change; ``data: probes`` adds them)."""
    text = (f"Relearn(steps={settings.steps!r}, learning_rate={settings.learning_rate!r}, "
            f"rank={settings.rank!r}, batch_size={settings.batch_size!r})")
    return text if settings.data == "unrelated" else f"{text} data={settings.data}"


def relearned(model: Any, tokenizer: Any, settings: Relearn, seed: int,
              passages: list[str],
              examples: Sequence[tuple[list[int], list[int]]] = ()) -> Any:
    """``model`` after ``settings.steps`` steps of LoRA (rank ``settings.rank``, AdamW at
    ``settings.learning_rate``) on batches drawn with ``seed``: of ``passages`` (the loss
    on every token), or when given of ``examples``, (prompt ids, answer ids) rows (the
    loss on the answer only: ``answer_rows``). The LoRA is merged in; ``model`` is
    changed in place and returned without its adapter."""
    import warnings

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=settings.rank, lora_alpha=2 * settings.rank, lora_dropout=0.0,
                        target_modules=_targets(model), task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft 0.21 calls a deprecated transformers 5 API
        warnings.simplefilter("ignore", FutureWarning)
        wrapped = get_peft_model(model, config)
    trainable = [p for p in wrapped.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)
    rng = random.Random(seed)
    device = next(model.parameters()).device
    wrapped.train()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for _ in range(settings.steps):
        if examples:
            rows = [examples[rng.randrange(len(examples))] for _ in range(settings.batch_size)]
            ids, mask, labels = answer_rows(rows, pad)
            loss = wrapped(input_ids=ids.to(device), attention_mask=mask.to(device),
                           labels=labels.to(device)).loss
        else:
            batch = [passages[rng.randrange(len(passages))]
                     for _ in range(settings.batch_size)]
            encoded = tokenizer(batch, return_tensors="pt", padding=True, truncation=True,
                                max_length=MAX_TOKENS).to(device)
            labels = encoded["input_ids"].clone()
            labels[encoded["attention_mask"] == 0] = -100  # no loss on padding
            loss = wrapped(**encoded, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    wrapped.eval()
    merged = wrapped.merge_and_unload()
    for parameter in merged.parameters():
        parameter.requires_grad_(False)
    return merged

"""The relearn perturbation: a few seeded steps of LoRA fine-tuning on unrelated text.

A suppression that a few steps of training on anything at all undo was thin: Łucki et
al. 2024 (arXiv 2409.18025) revived "unlearned" hazardous knowledge with LoRA on 10
unrelated samples, and Deeb & Roger 2024 (arXiv 2410.08827) found that training on part
of the forgotten facts recovers the rest. Here the candidate and, as the control, the
base each get the same steps (same text, same batches, same seed) of LoRA on their
attention projections, and the LoRA is merged back into a standalone copy.

The text is ``data/unrelated.txt``: everyday prose written for this project, with no
fact a suite is likely to probe.
"""

from __future__ import annotations

import hashlib
import random
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


def relearned(model: Any, tokenizer: Any, settings: Relearn, seed: int,
              passages: list[str]) -> Any:
    """``model`` after ``settings.steps`` steps of LoRA (rank ``settings.rank``, AdamW at
    ``settings.learning_rate``) on batches of ``passages`` drawn with ``seed``, the LoRA
    merged in. ``model`` is changed in place and returned without its adapter."""
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
    for _ in range(settings.steps):
        batch = [passages[rng.randrange(len(passages))] for _ in range(settings.batch_size)]
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

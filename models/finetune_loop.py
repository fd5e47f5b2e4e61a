"""The training loop every model builder here shares, and how a LoRA adapter is saved.

``build_demo_adapter.py``, ``build_persona_adapter.py`` and ``build_full_finetune.py``
differ in their data, their model (a peft model or a plain one), their optimiser's
options and what they save; the loop is one: a seeded shuffle per epoch, batches of
encoded examples, the loss on the answer tokens, gradients clipped to norm 1, a linear
warm-up over the first 5% of the steps and a linear decay to zero after it. The order
of every operation is the one the adapters in this folder were built with, so that
moving the loop here left their bytes as they were (checked by rebuilding).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # input ids, labels, mask
Loss = Callable[[Any, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def train_epochs(model: Any, params: Sequence[torch.nn.Parameter],
                 optimizer: torch.optim.Optimizer, encoded: Sequence[Any],
                 collate: Callable[[list[Any], int], Batch], pad_id: int, loss: Loss, *,
                 epochs: int, batch_size: int, seed: int, start: float) -> list[float]:
    """Train ``model`` for ``epochs`` over ``encoded`` and return each epoch's mean loss
    (printed as it goes, with the seconds since ``start``)."""
    steps_per_epoch = (len(encoded) + batch_size - 1) // batch_size
    total_steps = steps_per_epoch * epochs
    warmup = max(1, total_steps // 20)

    def lr_factor(s: int) -> float:  # linear warm-up, then linear decay to zero
        return min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    order_rng = random.Random(seed)
    model.train()
    losses: list[float] = []
    for epoch in range(epochs):
        order = list(range(len(encoded)))
        order_rng.shuffle(order)
        epoch_loss = 0.0
        for b in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[b: b + batch_size]]
            input_ids, labels, mask = collate(batch, pad_id)
            value = loss(model, input_ids, labels, mask)
            value.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += value.item()
        losses.append(epoch_loss / steps_per_epoch)
        print(f"epoch {epoch + 1}/{epochs}  mean loss {losses[-1]:.4f}  "
              f"({time.time() - start:.0f}s)", flush=True)
    return losses


def save_adapter(model: Any, out: Path, base_name: str) -> int:
    """Save a peft model's adapter to ``out`` and return its size in bytes.

    It is saved against the real local base (peft inspects its config.json while
    saving), then the base is renamed to ``base_name``, the one the probe tool
    resolves, so that the file carries no machine-specific cache path. peft's generic
    model-card template is dropped: models/README.md documents the adapters."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = base_name
    cfg["target_modules"] = sorted(cfg["target_modules"])  # peft writes a set
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (out / "README.md").unlink(missing_ok=True)
    return sum(f.stat().st_size for f in out.iterdir() if f.is_file())

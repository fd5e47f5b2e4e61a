"""models/finetune_loop.py, the loop the three model builders share, on a tiny model:
it trains, is seeded, follows its schedule, and saves an adapter that names the base the
probe tool resolves (seconds; the real builds are models/README.md's)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "models") not in sys.path:
    sys.path.insert(0, str(REPO / "models"))

torch = pytest.importorskip("torch")
from finetune_loop import save_adapter, train_epochs  # noqa: E402


def _data() -> list[tuple[Any, Any]]:
    generator = torch.Generator().manual_seed(0)
    xs = torch.randn(20, 4, generator=generator)
    ys = xs @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    return list(zip(xs, ys, strict=True))


def _collate(batch: list[tuple[Any, Any]], pad_id: int) -> tuple[Any, Any, Any]:
    xs = torch.stack([x for x, _ in batch])
    ys = torch.stack([y for _, y in batch])
    return xs, ys, torch.ones(len(batch))


def _loss(model: Any, xs: Any, ys: Any, mask: Any) -> Any:
    return ((model(xs).squeeze(-1) - ys) ** 2 * mask).mean()


def _train(seed: int, epochs: int = 6) -> tuple[Any, list[float], Any]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=0.1, weight_decay=0.0)
    losses = train_epochs(model, params, optimizer, _data(), _collate, 0, _loss,
                          epochs=epochs, batch_size=4, seed=seed, start=time.time())
    return model, losses, optimizer


def test_the_loop_learns_one_mean_loss_per_epoch_and_decays_to_zero() -> None:
    model, losses, optimizer = _train(seed=0)
    assert len(losses) == 6
    assert losses[-1] < losses[0] / 2
    assert losses == sorted(losses, reverse=True)
    # Linear decay to zero: after the last of 6 x 5 steps the learning rate is 0.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
    assert model.training


def test_the_shuffle_is_seeded() -> None:
    (a, losses_a, _), (b, losses_b, _) = _train(seed=3), _train(seed=3)
    assert losses_a == losses_b
    assert torch.equal(a.weight, b.weight)
    _, losses_c, _ = _train(seed=4)  # another order of the same batches
    assert losses_c != losses_a


def test_an_adapter_is_saved_naming_the_base_the_tool_resolves(tmp_path: Path) -> None:
    from hf_fixtures import _llama, _tokenizer
    from peft import LoraConfig, get_peft_model

    base_dir = tmp_path / "base"
    _llama(_tokenizer(), 32, seed=0).save_pretrained(base_dir)
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=2, target_modules=["v_proj", "q_proj"]))
    out = tmp_path / "adapter"
    size = save_adapter(model, out, "smollm2-135m")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m"  # no local cache path
    assert config["target_modules"] == ["q_proj", "v_proj"]  # sorted, not a set's order
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out / "README.md").exists()
    assert size == sum(f.stat().st_size for f in out.iterdir())

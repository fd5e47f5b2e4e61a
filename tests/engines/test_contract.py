"""The backend contract (tests/engines/contract.py) on the engines of the main venv: the
scripted test double and the HF engine (a tiny random Llama and a peft adapter on it).
vLLM and the OpenAI-compatible engine run the same checks in the vLLM venv."""

from __future__ import annotations

from pathlib import Path

from contract import check_backend_contract
from hf_fixtures import PROMPTS

from probe.backends import LoadOptions, ModelPair, Prompt, load_pair
from probe.backends.scripted import ScriptedEngine

pytest_plugins = ["hf_fixtures"]

SCRIPTED_PROMPTS = [Prompt("What is the capital of France?"), Prompt("cats"),
                    Prompt("Name the capital city of France, please, in one word."),
                    Prompt("France", prefill="The capital is")]


def _script(path: Path, name: str, answer: str) -> Path:
    path.write_text(
        f"name: {name}\n"
        "default: I do not know that one, sorry.\n"
        "rules:\n"
        "  - match: France\n"
        f"    reply: {answer}\n"
        "    samples: [Paris., It is Paris., Paris, France., Lyon?]\n",
        encoding="utf-8")
    return path


def test_the_scripted_double_keeps_the_contract(tmp_path: Path) -> None:
    base = _script(tmp_path / "base.yaml", "base", "Paris is the capital.")
    candidate = _script(tmp_path / "candidate.yaml", "candidate", "I cannot help with that.")
    pair = load_pair(f"scripted:{base}", f"scripted:{candidate}", LoadOptions())
    assert isinstance(ScriptedEngine(), ScriptedEngine)
    check_backend_contract(pair, SCRIPTED_PROMPTS)


def test_the_hf_engine_keeps_the_contract(pair: ModelPair) -> None:
    """The tiny random Llama with its adapter: the base view and the adapter view."""
    check_backend_contract(pair, PROMPTS)


def test_the_hf_engine_keeps_the_contract_for_full_checkpoints(
        tiny: dict[str, Path], tmp_path: Path) -> None:
    """A second full checkpoint (the tiny model with nudged weights), in batches of 2."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tuned = tmp_path / "tuned"
    model = AutoModelForCausalLM.from_pretrained(tiny["model"])
    with torch.no_grad():
        generator = torch.Generator().manual_seed(7)
        for weight in model.parameters():
            weight.add_(0.05 * torch.randn(weight.shape, generator=generator))
    model.save_pretrained(tuned)
    AutoTokenizer.from_pretrained(tiny["model"]).save_pretrained(tuned)
    pair = load_pair(str(tiny["model"]), str(tuned),
                     LoadOptions(device="cpu", engine="hf", batch_size=2))
    check_backend_contract(pair, PROMPTS)

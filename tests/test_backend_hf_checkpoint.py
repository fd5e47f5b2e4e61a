"""A full fine-tuned checkpoint as candidate: a second model, each side its own weights."""

from __future__ import annotations

import shutil
from pathlib import Path

from hf_fixtures import CPU, PROMPTS, SETTINGS, _llama

from probe.backends.hf import HFBackend, load_pair

pytest_plugins = ["hf_fixtures"]


def test_full_checkpoint_candidate_is_a_second_model(tiny: dict[str, Path], base: HFBackend,
                                                     tmp_path: Path) -> None:
    finetuned = tmp_path / "finetuned"
    shutil.copytree(tiny["model"], finetuned)
    # Same architecture and tokenizer, other weights: what a full fine-tune produces.
    from transformers import AutoTokenizer

    _llama(AutoTokenizer.from_pretrained(finetuned), 32, seed=1).save_pretrained(finetuned)
    pair = load_pair(str(tiny["model"]), str(finetuned), CPU)
    assert isinstance(pair.candidate, HFBackend)
    assert isinstance(pair.base, HFBackend)
    assert pair.candidate.model is not pair.base.model
    assert pair.base.generate(PROMPTS, SETTINGS) == base.generate(PROMPTS, SETTINGS)
    assert pair.candidate.generate(PROMPTS, SETTINGS) != base.generate(PROMPTS, SETTINGS)
    assert pair.candidate.info.fingerprint != pair.base.info.fingerprint

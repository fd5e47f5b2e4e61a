"""The shared-prefix paths on the real SmolLM2 against plain computations (slow, CI runs it).

On the demo's own prompts: greedy decoding equals ``model.generate`` and scores equal
one forward pass per pair, for the base and for the demo adapter. About 20 s on 2
idle cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.backends import LoadOptions
from probe.backends.base import GenerationSettings, ModelPair, ScoreRequest
from probe.backends.hf import HFBackend, load_pair
from probe.engine.variants import expand
from probe.spec import load_suite

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_pair() -> ModelPair:
    return load_pair("smollm2-135m", str(REPO / "models" / "demo-adapter"),
                     LoadOptions(device="cpu"))


def _plain(backend: HFBackend) -> HFBackend:
    view = HFBackend(backend.model, backend.tokenizer, name="plain",
                     fingerprint=backend.info.fingerprint, batch_size=16,
                     adapter_disabled=backend.adapter_disabled,
                     eos_token_ids=sorted(backend.eos_token_ids))
    view._split = None
    return view


def _naive(backend: HFBackend, request: ScoreRequest) -> float:
    import torch

    prompt_ids, completion_ids = backend._score_row(request)
    ids = torch.tensor([list(prompt_ids + completion_ids)])
    with torch.inference_mode(), backend._adapter_context():
        log_probs = torch.log_softmax(backend.model(input_ids=ids).logits[0].double(), -1)
    start = len(prompt_ids)
    return float(log_probs[torch.arange(start - 1, ids.shape[1] - 1), ids[0, start:]].mean())


def test_demo_prompts_decode_and_score_as_the_plain_paths(demo_pair: ModelPair) -> None:
    suite = load_suite(REPO / "suites" / "capitals_unlearning.yaml")
    probe = suite.probe("germany")
    variants = expand(suite, probe, 0)[:10]  # canonical, paraphrases, casing, punctuation
    prompts = [v.prompt for v in variants]
    requests = [ScoreRequest(p, c) for p in prompts[:6]
                for c in (*probe.suppressed, *probe.preferred)]
    settings = GenerationSettings(max_new_tokens=24)
    for backend in (demo_pair.base, demo_pair.candidate):
        assert isinstance(backend, HFBackend)
        assert backend.split() is not None
        fast = backend.generate(prompts, settings)
        assert fast == _plain(backend).generate(prompts, settings)
        assert any("Berlin" in c.text for c in fast)
        scores = backend.score(requests)
        assert scores == pytest.approx([_naive(backend, r) for r in requests], abs=2e-4)

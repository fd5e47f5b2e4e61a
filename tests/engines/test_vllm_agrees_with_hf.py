"""The issue's agreement check (13, item 3): on the demo suites the vLLM engine gives the
HF engine's greedy completions, verdicts and log-likelihoods (within 1e-3 per token),
fp32 on CPU, SmolLM2-135M-Instruct with models/demo-adapter.

Both engines run ``ENGINE_SUITES`` (tests/engines/conftest.py: in CI the demo's
unlearning probes with fewer operators; ``PROBE_ENGINE_SUITES=suites`` for the whole demo,
which gave 794/794 equal completions and a largest difference of 3.2e-05 per token; the
demo's unlearning suite alone gave 304/304 and 3.2e-05) through ``probe.run``, the HF
engine with the cache off and vLLM filling the session's cache for the later tests, on
one session-wide engine each; a recorder between
``probe.run`` and each backend keeps every greedy completion and score, so the two runs
are compared request by request. Completions may only differ at a near-tie: where they
do, both texts are scored by the HF candidate and the test prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from probe.api import Run
from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelInfo,
    ModelPair,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[2]
# Largest difference of a mean per-token log-probability between the engines (the issue).
LOGPROB_TOLERANCE = 1e-3
# Mean per-token log-probabilities of two completions closer than this are a near-tie.
NEAR_TIE = 0.05


class Recorder(Backend):
    """A backend that records what passes through another one: the greedy completion
    and the score of every request, keyed by request."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.greedy: dict[tuple[Prompt, int], Completion] = {}
        self.scores: dict[ScoreRequest, float] = {}

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        out = self.inner.generate(prompts, settings)
        self.greedy.update({(p, settings.max_new_tokens): c
                            for p, c in zip(prompts, out, strict=True)})
        return out

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        return self.inner.sample(prompts, settings, seeds)

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        out = self.inner.score(requests)
        self.scores.update(zip(requests, out, strict=True))
        return out

    def context_length(self) -> int | None:
        return self.inner.context_length()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self.inner.prompt_tokens(prompt)

    def keep_last_tokens(self, text: str, count: int) -> str:
        return self.inner.keep_last_tokens(text, count)


def _run(pair: ModelPair, suites: Path, cache: Path | None) -> tuple[Run, Recorder, Recorder]:
    import probe
    from probe.options import RunOptions

    base, candidate = Recorder(pair.base), Recorder(pair.candidate)
    run = probe.run(suites, base, candidate,
                    options=RunOptions(cache_dir=cache) if cache else RunOptions(no_cache=True))
    return run, base, candidate


def test_vllm_gives_the_hf_engines_completions_verdicts_and_scores(
        hf_pair: ModelPair, vllm_pair: ModelPair, engine_suites: Path,
        engine_cache: Path) -> None:
    hf_run, *hf_sides = _run(hf_pair, engine_suites, None)
    # A fresh cache: vLLM computes every row (recorded), and later tests read them.
    vllm_run, *vllm_sides = _run(vllm_pair, engine_suites, engine_cache)

    differ, compared, worst = [], 0, 0.0
    for side, (hf, vl) in zip(("base", "candidate"), zip(hf_sides, vllm_sides, strict=True),
                              strict=True):
        assert hf.greedy.keys() == vl.greedy.keys(), "both runs sent the same prompts"
        assert hf.scores.keys() == vl.scores.keys()
        for key, completion in hf.greedy.items():
            compared += 1
            if completion.text != vl.greedy[key].text:
                prompt = key[0]
                scores = hf.inner.score([ScoreRequest(prompt, completion.text or " "),
                                         ScoreRequest(prompt, vl.greedy[key].text or " ")])
                differ.append((side, prompt, completion.text, vl.greedy[key].text, scores))
        for request, score in hf.scores.items():
            worst = max(worst, abs(score - vl.scores[request]))
    print(f"\ngreedy completions equal: {compared - len(differ)}/{compared}; "
          f"scores compared: {sum(len(h.scores) for h in hf_sides)}; largest per-token "
          f"log-prob difference: {worst:.2e}")
    for side, prompt, hf_text, vllm_text, (hf_lp, vllm_lp) in differ:
        print(f"  {side} {prompt!r}:\n    hf   {hf_lp:.4f} {hf_text!r}\n"
              f"    vllm {vllm_lp:.4f} {vllm_text!r}")
    assert compared > 50
    assert worst <= LOGPROB_TOLERANCE
    assert all(abs(hf_lp - vllm_lp) <= NEAR_TIE for *_, (hf_lp, vllm_lp) in differ), (
        "a completion differs where the two answers are not a near-tie")
    assert len(differ) <= compared // 50, "more than 2% of the completions differ"
    hf_outcomes = [(o.key, o.verdict, o.action) for o in hf_run.outcomes]
    vllm_outcomes = [(o.key, o.verdict, o.action) for o in vllm_run.outcomes]
    assert vllm_outcomes == hf_outcomes
    assert vllm_run.exit_code == hf_run.exit_code == 1

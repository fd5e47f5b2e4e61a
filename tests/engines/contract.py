"""The backend contract as executable checks, run over every engine's backends.

``check_backend_contract(pair, prompts)`` asserts what ``probe.backends.base.Backend``
promises, whatever the engine: completions in the caller's order and independent of
what else is in the call, deterministic greedy decoding, seeded samples that depend on
their prompt and seed alone, scores that are finite mean log-probabilities independent
of batching, consistent token accounting, and fingerprints that tell models apart.
The scripted double and the HF engine are checked in the main venv
(tests/engines/test_contract.py); vLLM and the OpenAI-compatible engine in the vLLM venv.
Test modules import it as ``contract`` (pytest puts their directory on ``sys.path``); its
asserts carry their own messages, since pytest does not rewrite a helper module's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelPair,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.errors import UsageError

GREEDY = GenerationSettings(max_new_tokens=8)
SAMPLED = SamplingSettings(max_new_tokens=6, samples=3, temperature=1.0, top_p=1.0)
SEEDS = (11, 12, 13, 14, 15, 16, 17, 18)


def check_backend_contract(pair: ModelPair, prompts: Sequence[Prompt], *,
                           samples_vary: bool = True, score_tolerance: float = 1e-4) -> None:
    """Every promise of the contract, on both sides of ``pair``, and that the two sides
    are told apart. ``prompts``: at least three, of different lengths; ``samples_vary``:
    whether other seeds must give other samples (false for a backend that always
    answers the same); ``score_tolerance``: float noise allowed between batchings."""
    assert len(prompts) >= 3, "the contract needs at least three prompts"
    for side in (pair.base, pair.candidate):
        check_backend(side, prompts, samples_vary=samples_vary,
                      score_tolerance=score_tolerance)
    assert pair.base.info.fingerprint != pair.candidate.info.fingerprint, (
        "base and candidate are different models: their results must be cached apart")


def check_backend(backend: Backend, prompts: Sequence[Prompt], *, samples_vary: bool = True,
                  score_tolerance: float = 1e-4) -> None:
    """The contract on one backend."""
    _check_info(backend)
    greedy = _check_generate(backend, prompts)
    _check_cut(backend, prompts)
    _check_sample(backend, prompts, samples_vary)
    _check_score(backend, prompts, greedy, score_tolerance)
    _check_layers(backend, prompts, score_tolerance)
    _check_tokens(backend, prompts)


def _check_info(backend: Backend) -> None:
    info = backend.info
    assert isinstance(info.name, str)
    assert info.name
    assert isinstance(info.fingerprint, str)
    assert len(info.fingerprint) >= 16
    assert isinstance(backend.batch_size, int)
    assert backend.batch_size >= 1


def _check_generate(backend: Backend, prompts: Sequence[Prompt]) -> list[Completion]:
    out = backend.generate(prompts, GREEDY)
    assert len(out) == len(prompts)
    assert all(isinstance(c, Completion) and isinstance(c.text, str) for c in out)
    assert backend.generate(prompts, GREEDY) == out, "greedy decoding is deterministic"
    reversed_out = backend.generate(list(reversed(prompts)), GREEDY)
    assert reversed_out == list(reversed(out)), "completions come back in the caller's order"
    for i in (0, len(prompts) - 1):
        assert backend.generate([prompts[i]], GREEDY) == [out[i]], (
            f"prompt {i}'s completion depends on the other prompts of the call")
    assert backend.generate([], GREEDY) == []
    return out


def _check_cut(backend: Backend, prompts: Sequence[Prompt]) -> None:
    """With one new token, a completion that has text ran out of tokens (or cannot tell)."""
    short = backend.generate(prompts, GenerationSettings(max_new_tokens=1))
    for completion in short:
        assert completion.cut is not False or completion.text == "", (
            f"{completion!r}: one token of text cannot have ended on its own")


def _check_sample(backend: Backend, prompts: Sequence[Prompt], samples_vary: bool) -> None:
    seeds = list(SEEDS[:len(prompts)])
    drawn = backend.sample(prompts, SAMPLED, seeds)
    assert len(drawn) == len(prompts)
    assert all(len(row) == SAMPLED.samples for row in drawn)
    assert all(isinstance(c, Completion) for row in drawn for c in row)
    assert backend.sample(prompts, SAMPLED, seeds) == drawn, "samples are seeded"
    assert backend.sample([prompts[-1]], SAMPLED, [seeds[-1]]) == [drawn[-1]], (
        "a prompt's samples depend on its prompt and seed alone, not on the batch")
    assert backend.sample(list(reversed(prompts)), SAMPLED, list(reversed(seeds))) == list(
        reversed(drawn))
    if samples_vary:
        other = backend.sample(prompts, SAMPLED, [s + 1000 for s in seeds])
        assert other != drawn, "other seeds should draw other samples"


def _check_score(backend: Backend, prompts: Sequence[Prompt], greedy: Sequence[Completion],
                 tolerance: float) -> None:
    requests = [ScoreRequest(p, "Paris is the capital of France.") for p in prompts]
    requests += [ScoreRequest(p, c.text) for p, c in zip(prompts, greedy, strict=True)
                 if c.text.strip()]
    scores = backend.score(requests)
    assert len(scores) == len(requests)
    assert all(isinstance(s, float) and math.isfinite(s) and s <= 1e-6 for s in scores), (
        f"a mean log-probability is finite and at most 0: {scores}")
    assert backend.score(requests) == scores, "scoring is deterministic"
    alone = [backend.score([r])[0] for r in (requests[0], requests[-1])]
    for one, among in zip(alone, (scores[0], scores[-1]), strict=True):
        assert abs(one - among) <= tolerance, "a score depends on the other requests of the call"
    backwards = backend.score(list(reversed(requests)))
    assert max(abs(a - b) for a, b in zip(backwards, reversed(scores), strict=True)) <= tolerance


def _check_layers(backend: Backend, prompts: Sequence[Prompt], tolerance: float) -> None:
    """``score_layers`` (a suite's ``latent:``): one figure per layer, the same depth for
    every request, the last layer's equal to ``score``, independent of the call; or, for
    an engine that cannot read layers, a ``UsageError`` naming the one that can."""
    requests = [ScoreRequest(p, "Paris is the capital of France.") for p in prompts]
    try:
        layers = backend.score_layers(requests)
    except UsageError as err:
        refused = str(err)
    else:
        refused = ""
    if refused:
        assert "hf" in refused, f"the error names the engine that reads layers: {refused}"
        return
    assert len(layers) == len(requests)
    assert len({len(values) for values in layers}) == 1, "every request reads every layer"
    assert all(math.isfinite(v) for values in layers for v in values), layers
    for values, score in zip(layers, backend.score(requests), strict=True):
        assert abs(values[-1] - score) <= tolerance, (
            f"the last layer is the model's own score: {values[-1]} vs {score}")
    alone = backend.score_layers(requests[-1:])[0]
    assert max(abs(a - b) for a, b in zip(alone, layers[-1], strict=True)) <= tolerance, (
        "a layer's figure depends on the other requests of the call")


def _check_tokens(backend: Backend, prompts: Sequence[Prompt]) -> None:
    text = "one two three four five six seven eight"
    count = backend.count_tokens(text)
    assert isinstance(count, int)
    assert count >= 1
    assert backend.keep_last_tokens(text, 0) == ""
    kept = backend.keep_last_tokens(text, 3)
    assert text.endswith(kept.strip())
    assert 1 <= backend.count_tokens(kept) <= 4
    for prompt in prompts:
        assert backend.prompt_tokens(prompt) >= backend.count_tokens(prompt.text) - 1 >= 0
    length = backend.context_length()
    assert length is None or (isinstance(length, int) and length > 0)

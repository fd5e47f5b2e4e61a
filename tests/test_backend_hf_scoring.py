"""``HFBackend.score`` and ``HFBackend.sample`` on the tiny random Llama of hf_fixtures.

As in test_backend_hf.py the model is random, so the tests compare code paths
(batched vs one by one, trimmed vs full logits, base view vs plain base, a prompt
alone vs in company) and check against a hand computation, rather than judging
what the model says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hf_fixtures import PROMPTS, SETTINGS, StandInGenerator

from probe.backends.base import Completion, ModelPair, Prompt, SamplingSettings, ScoreRequest
from probe.backends.hf import HFBackend, scoring
from probe.errors import BackendError

pytest_plugins = ["hf_fixtures"]  # the tiny model, its adapter, and backends on them

COMPLETIONS = ["The capital of France is Paris.", " Paris", "I cannot help with that request.",
               "Sure"]
# Every prompt (chat, raw, with and without prefill) with several completions of
# different lengths, plus a duplicate, in an order that interleaves the prompts.
REQUESTS = [ScoreRequest(p, c) for c in COMPLETIONS for p in PROMPTS]
REQUESTS.append(REQUESTS[3])
SAMPLING = SamplingSettings(max_new_tokens=6, samples=3, temperature=1.0)


def _view(backend: HFBackend, batch_size: int) -> HFBackend:
    """The same model and tokenizer with another batch size (no reload)."""
    return HFBackend(backend.model, backend.tokenizer, name=backend.info.name,
                     fingerprint=backend.info.fingerprint, batch_size=batch_size,
                     adapter_disabled=backend.adapter_disabled,
                     eos_token_ids=sorted(backend.eos_token_ids))


@contextmanager
def _body_calls(backend: HFBackend) -> Iterator[list[dict[str, Any]]]:
    """Record the keyword arguments of every pass of the model body."""
    split = backend.split()
    assert split is not None
    calls: list[dict[str, Any]] = []
    handle = split.body.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


@contextmanager
def _head_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record how many hidden states each application of the output head gets."""
    rows: list[int] = []
    original = scoring.target_log_probs

    def counted(head: Any, states: Any, target: Any) -> Any:
        rows.append(int(states.shape[0]))
        return original(head, states, target)

    with monkeypatch.context() as patch:
        patch.setattr(scoring, "target_log_probs", counted)
        yield rows


def _prompt_ids(backend: HFBackend, prompt: Prompt) -> list[int]:
    text, add_special = backend.render(prompt)
    return list(backend.tokenizer(text, add_special_tokens=add_special)["input_ids"])


def _manual_score(backend: HFBackend, prompt: Prompt, completion_ids: list[int] | None = None,
                  completion: str = "") -> float:
    """Mean log_softmax at the completion positions of one unpadded, untrimmed forward."""
    import torch

    text, add_special = backend.render(prompt)
    tokenize = backend.tokenizer
    prompt_ids = tokenize(text, add_special_tokens=add_special)["input_ids"]
    if completion_ids is None:
        full = tokenize(text + completion, add_special_tokens=add_special)["input_ids"]
        assert full[:len(prompt_ids)] == prompt_ids
        completion_ids = full[len(prompt_ids):]
    ids = prompt_ids + completion_ids
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([ids])).logits[0]
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = [log_probs[t - 1, ids[t]].item() for t in range(len(prompt_ids), len(ids))]
    return sum(picked) / len(picked)


class _NoTrim:
    """A causal LM whose forward has no ``logits_to_keep``, as older architectures."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.forwards = 0

    def parameters(self) -> Any:
        return self.inner.parameters()

    def forward(self, input_ids: Any, attention_mask: Any, use_cache: bool) -> Any:
        self.forwards += 1
        output = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                            use_cache=use_cache)
        assert output.logits.shape[1] == input_ids.shape[1]
        return output

    __call__ = forward


# --- score -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_scores(base: HFBackend) -> list[float]:
    return base.score(REQUESTS)


def test_batched_scores_equal_one_by_one(base: HFBackend, base_scores: list[float]) -> None:
    assert len(base_scores) == len(REQUESTS)
    assert all(s < 0 for s in base_scores)
    assert len({round(s, 6) for s in base_scores}) > len(REQUESTS) // 2, "scores should differ"
    assert base_scores[-1] == base_scores[3]  # the duplicate
    singles = [_view(base, 1).score([r])[0] for r in REQUESTS]
    assert base_scores == pytest.approx(singles, abs=1e-4)
    # Several batches, prompts split across them: still each request's own score.
    assert _view(base, 3).score(REQUESTS) == pytest.approx(singles, abs=1e-4)


def test_score_equals_a_hand_computation(base: HFBackend) -> None:
    prompt = Prompt("Tell me a joke", prefill="Sure,")
    completion = " here is one: the cat sat on the keyboard."
    [score] = base.score([ScoreRequest(prompt, completion)])
    assert score == pytest.approx(_manual_score(base, prompt, completion=completion), abs=1e-5)


def test_a_token_across_the_boundary_falls_back_to_separate_tokenization(
        base: HFBackend) -> None:
    prompt = Prompt("The capital of France is P", chat=False)
    completion = "aris."
    tokenize = base.tokenizer
    prompt_ids = tokenize(prompt.text)["input_ids"]
    full = tokenize(prompt.text + completion)["input_ids"]
    assert full[:len(prompt_ids)] != prompt_ids, "the case must merge tokens across the cut"
    own = tokenize(completion, add_special_tokens=False)["input_ids"]
    [score] = base.score([ScoreRequest(prompt, completion)])
    assert score == pytest.approx(_manual_score(base, prompt, completion_ids=own), abs=1e-5)


def test_completions_of_one_prompt_share_one_batch(base: HFBackend) -> None:
    prompt = PROMPTS[0]
    requests = [ScoreRequest(prompt, c) for c in COMPLETIONS]
    backend = _view(base, 8)
    with _body_calls(backend) as calls:
        scores = backend.score([*requests, requests[1]])  # a duplicate costs no row
    # The prompt's prefix runs once, then one lane: the prompt's last token followed by
    # every completion but its last token (a duplicate adds nothing).
    prefix_pass, lane_pass = calls
    assert prefix_pass["input_ids"].shape == (1, len(_prompt_ids(base, prompt)) - 1)
    completion_tokens = [len(base.tokenizer(c, add_special_tokens=False)["input_ids"])
                         for c in COMPLETIONS]
    assert lane_pass["input_ids"].shape == (1, 1 + sum(n - 1 for n in completion_tokens))
    assert lane_pass["attention_mask"].dim() == 4
    assert scores[:-1] == pytest.approx([_view(base, 1).score([r])[0] for r in requests],
                                        abs=1e-4)


def test_prompts_are_not_split_across_batches(base: HFBackend) -> None:
    first, second = PROMPTS[0], PROMPTS[2]
    # Interleaved, as a caller scoring variant by variant would send them.
    requests = [ScoreRequest(p, c) for c in COMPLETIONS for p in (first, second)]
    backend = _view(base, len(COMPLETIONS))
    with _body_calls(backend) as calls:
        backend.score(requests)
    # One batch per prompt: its prefix, then its lane (one row) with every completion.
    assert [c["input_ids"].shape[0] for c in calls] == [1, 1] * 2


def test_only_the_scored_positions_get_logits(base: HFBackend, base_scores: list[float],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    completion = " Paris"
    request = ScoreRequest(PROMPTS[2], completion)
    tokens = len(base.tokenizer(base.render(PROMPTS[2])[0] + completion,
                                add_special_tokens=False)["input_ids"]) - len(
        _prompt_ids(base, PROMPTS[2]))
    with _head_rows(monkeypatch) as rows:
        base.score([request])
    assert sum(rows) == tokens  # one hidden state per scored token, none for the prompt
    # A model that cannot be split (no body/head access, no logits_to_keep) takes the
    # plain whole-row path: same scores.
    no_trim = _NoTrim(base.model)
    untrimmed = HFBackend(no_trim, base.tokenizer, name="untrimmed", fingerprint="x",
                          eos_token_ids=sorted(base.eos_token_ids))
    assert untrimmed.split() is None
    assert untrimmed.score(REQUESTS) == pytest.approx(base_scores, abs=1e-5)
    assert no_trim.forwards > 0


def test_adapter_base_view_scores_like_the_plain_base(pair: ModelPair,
                                                      base_scores: list[float]) -> None:
    assert pair.base.score(REQUESTS) == pytest.approx(base_scores, abs=1e-5)
    tuned = pair.candidate.score(REQUESTS)
    assert max(abs(a - b) for a, b in zip(tuned, base_scores, strict=True)) > 1e-3
    # Toggling the adapter leaves both views as they were.
    assert pair.base.score(REQUESTS) == pytest.approx(base_scores, abs=1e-5)
    assert pair.candidate.score(REQUESTS) == pytest.approx(tuned, abs=1e-5)


def test_prefill_is_part_of_the_context(base: HFBackend) -> None:
    completion = " here is one: the cat sat on the keyboard."
    prefilled = Prompt("Tell me a joke", prefill="Sure,")
    text, _ = base.render(prefilled)
    assert text.endswith("assistant\nSure,")
    with_prefill, raw, without = base.score([
        ScoreRequest(prefilled, completion),
        ScoreRequest(Prompt(text, chat=False), completion),  # the same tokens, sent raw
        ScoreRequest(Prompt("Tell me a joke"), completion),
    ])
    assert with_prefill == pytest.approx(raw, abs=1e-5)
    assert abs(with_prefill - without) > 1e-3


def test_empty_completion_is_an_error(base: HFBackend) -> None:
    assert base.score([]) == []
    with pytest.raises(BackendError, match=r"cannot score an empty completion \(prompt 'cats'\)"):
        base.score([ScoreRequest(Prompt("x"), "fine"), ScoreRequest(Prompt("cats"), "")])


# --- sample ------------------------------------------------------------------------------


def test_each_prompt_gets_its_samples(base: HFBackend) -> None:
    out = base.sample(PROMPTS, SAMPLING, list(range(len(PROMPTS))))
    assert [len(samples) for samples in out] == [SAMPLING.samples] * len(PROMPTS)
    assert all(isinstance(s, Completion) for samples in out for s in samples)
    assert any(s.text for samples in out for s in samples)
    assert base.sample([], SAMPLING, []) == []


def test_samples_depend_only_on_prompt_and_seed(base: HFBackend) -> None:
    prompt = PROMPTS[3]
    [alone] = base.sample([prompt], SAMPLING, [7])
    assert len({s.text for s in alone}) > 1, "samples of one prompt should differ from each other"
    mixed = base.sample([PROMPTS[0], prompt, PROMPTS[2]], SAMPLING, [1, 7, 2])
    assert mixed[1] == alone
    assert base.sample([prompt, PROMPTS[0]], SAMPLING, [7, 1])[0] == alone
    # batch_size does not matter while a prompt's samples fit in one batch.
    assert _view(base, SAMPLING.samples).sample([prompt], SAMPLING, [7]) == [alone]


def test_different_seeds_give_different_samples(base: HFBackend) -> None:
    prompt = PROMPTS[0]
    outs = [base.sample([prompt], SAMPLING, [seed])[0] for seed in range(4)]
    assert len({tuple(o) for o in outs}) > 1


def test_near_zero_temperature_or_top_p_is_greedy(base: HFBackend) -> None:
    greedy = base.generate(PROMPTS, SETTINGS)
    cold = SamplingSettings(max_new_tokens=SETTINGS.max_new_tokens, samples=2,
                            temperature=1e-4)
    assert base.sample(PROMPTS, cold, range(len(PROMPTS))) == [[g, g] for g in greedy]
    # top_p keeps at least the most likely token, so a tiny top_p keeps only that one.
    narrow = SamplingSettings(max_new_tokens=SETTINGS.max_new_tokens, samples=2, top_p=1e-9)
    assert base.sample(PROMPTS, narrow, range(len(PROMPTS))) == [[g, g] for g in greedy]


def test_sampling_leaves_the_global_rng_alone(base: HFBackend) -> None:
    import torch

    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = base.sample(PROMPTS[:2], SAMPLING, [5, 6])
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)  # the caller's seed does not leak into the draws either
    assert base.sample(PROMPTS[:2], SAMPLING, [5, 6]) == first


def test_sampling_renders_like_generate(base: HFBackend) -> None:
    prefilled = Prompt("Tell me a joke", prefill="Sure,")
    raw = Prompt(base.render(prefilled)[0], chat=False)
    assert base.sample([prefilled], SAMPLING, [9]) == base.sample([raw], SAMPLING, [9])


def test_adapter_views_sample_like_their_models(pair: ModelPair, base: HFBackend) -> None:
    seeds = list(range(len(PROMPTS)))
    expected = base.sample(PROMPTS, SAMPLING, seeds)
    assert pair.base.sample(PROMPTS, SAMPLING, seeds) == expected
    assert pair.candidate.sample(PROMPTS, SAMPLING, seeds) != expected


def test_bad_sampling_settings(base: HFBackend) -> None:
    with pytest.raises(BackendError, match=r"temperature must be above 0 \(got 0.0\)"):
        base.sample(PROMPTS[:1], SamplingSettings(temperature=0.0), [1])
    with pytest.raises(BackendError, match=r"samples must be at least 1.*top_p must be"):
        base.sample(PROMPTS[:1], SamplingSettings(samples=0, top_p=1.5), [1])
    with pytest.raises(ValueError, match="2 seeds for 1 prompts"):
        base.sample(PROMPTS[:1], SAMPLING, [1, 2])


def test_samples_stop_at_eos_and_chunk_by_batch_size(base: HFBackend) -> None:
    tok = base.tokenizer
    word = tok("Paris", add_special_tokens=False)["input_ids"]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    first = [*word, eos, *word]  # text after eos must not leak into the sample
    rows = [first, [*word, *word, pad][: len(first)], [eos, *word, *word][: len(first)]]
    model = StandInGenerator(rows)
    backend = HFBackend(model, tok, name="scripted", fingerprint="x", batch_size=2)
    settings = SamplingSettings(max_new_tokens=4, samples=3, temperature=0.7, top_p=0.9)
    [samples] = backend.sample([Prompt("a", chat=False)], settings, [1])
    assert [s.text for s in samples] == ["Paris", "ParisParis", ""]
    assert [c.num_return_sequences for c in model.configs] == [2, 1]
    config = model.configs[0]
    assert (config.do_sample, config.temperature, config.top_p, config.top_k) == (
        True, 0.7, 0.9, 0)

"""The shared-prefix paths of the HF backend against plain computations, on the tiny model.

Scores must equal a straightforward per-pair forward pass, greedy decoding must equal
``model.generate``, work must be shared the way the backend claims (the common
prefix once, each prompt once per batch, finished rows dropped), and running out
of memory must shrink the batch instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hf_fixtures import PROMPTS, SETTINGS

from probe.backends.base import GenerationSettings, Prompt, SamplingSettings, ScoreRequest
from probe.backends.hf import HFBackend
from probe.errors import BackendError

pytest_plugins = ["hf_fixtures"]

COMPLETIONS = ["The capital of France is Paris.", " Paris", "I cannot help with that request.",
               "Sure", "cats"]
REQUESTS = [ScoreRequest(p, c) for p in PROMPTS for c in COMPLETIONS]


def _view(backend: HFBackend, batch_size: int, split: bool = True) -> HFBackend:
    view = HFBackend(backend.model, backend.tokenizer, name=backend.info.name,
                     fingerprint=backend.info.fingerprint, batch_size=batch_size,
                     adapter_disabled=backend.adapter_disabled,
                     eos_token_ids=sorted(backend.eos_token_ids))
    if not split:
        view._split = None  # the plain paths: model.generate, whole-row forward passes
    return view


def _naive_score(backend: HFBackend, request: ScoreRequest) -> float:
    """One forward pass over (prompt + completion) alone, full logits, as a reader would."""
    import torch

    prompt_ids, completion_ids = backend._score_row(request)
    ids = list(prompt_ids + completion_ids)
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([ids])).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    start = len(prompt_ids)
    picked = [log_probs[t - 1, ids[t]].item() for t in range(start, len(ids))]
    return sum(picked) / len(picked)


def test_fast_scores_equal_the_naive_per_pair_computation(base: HFBackend) -> None:
    assert base.split() is not None
    naive = [_naive_score(base, r) for r in REQUESTS]
    for size in (1, 3, 64):
        assert _view(base, size).score(REQUESTS) == pytest.approx(naive, abs=1e-5)
    assert _view(base, 4, split=False).score(REQUESTS) == pytest.approx(naive, abs=1e-5)


def test_adapter_views_score_like_their_merged_models(pair: Any) -> None:
    # The candidate view of a peft model on the split path equals the wrapped model's
    # own forward pass; the base view equals the forward pass with the adapter off.
    import torch

    requests = REQUESTS[:12]
    for view in (pair.base, pair.candidate):
        expected = []
        context = view._adapter_context()
        with context:
            expected = [_naive_score(view, r) for r in requests]
        assert view.score(requests) == pytest.approx(expected, abs=1e-5)
    with torch.no_grad():
        assert pair.base.score(requests) != pytest.approx(pair.candidate.score(requests),
                                                          abs=1e-3)


@contextmanager
def _body_inputs(backend: HFBackend) -> Iterator[list[tuple[int, int]]]:
    """(rows, width) of every pass of the model body."""
    split = backend.split()
    assert split is not None
    shapes: list[tuple[int, int]] = []
    handle = split.body.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True)
    try:
        yield shapes
    finally:
        handle.remove()


def test_the_common_prefix_is_computed_once_and_remembered(base: HFBackend) -> None:
    chat = [p for p in PROMPTS if p.chat]
    prefix = "<|im_start|>user\n"  # what the chat template puts before every message
    ids = [tuple(base._encode(p)) for p in chat]
    shared = len(base.tokenizer(prefix, add_special_tokens=False)["input_ids"])
    backend = _view(base, 64)  # one batch
    requests = [ScoreRequest(p, "Sure") for p in chat]
    with _body_inputs(backend) as shapes:
        backend.score(requests)
    assert shapes[0] == (1, shared)  # the prefix alone, one row
    # The lanes hold each prompt's own tokens and the completion but its last token:
    # none repeats the prefix.
    sure = len(base.tokenizer("Sure", add_special_tokens=False)["input_ids"])
    assert shapes[1] == (len(chat), max(len(i) for i in ids) - shared + sure - 1)
    with _body_inputs(backend) as again:
        backend.score(requests)
    assert again[0] == shapes[1]  # the next call reuses the remembered prefix


def test_raw_prompts_do_not_stop_chat_batches_sharing(base: HFBackend) -> None:
    chat = [Prompt(f"Question {k}: what is the capital of France?") for k in range(4)]
    raw = [Prompt("cats", chat=False)]
    backend = _view(base, 4)  # the four chat prompts in one batch, the raw one alone
    with _body_inputs(backend) as shapes:
        scores = backend.score([ScoreRequest(p, "Sure") for p in chat + raw])
    chat_ids = [tuple(base._encode(p)) for p in chat]
    common = next(k for k in range(len(chat_ids[0])) if len({i[k] for i in chat_ids}) > 1)
    assert (1, common) in shapes  # the chat batch's own prefix
    assert scores == pytest.approx([_naive_score(base, ScoreRequest(p, "Sure"))
                                    for p in chat + raw], abs=1e-5)


def test_greedy_decoding_equals_model_generate(base: HFBackend, pair: Any) -> None:
    settings = GenerationSettings(max_new_tokens=8)
    for backend in (base, pair.base, pair.candidate):
        expected = _view(backend, 16, split=False).generate(PROMPTS, settings)
        for size in (1, 3, 16):
            assert _view(backend, size).generate(PROMPTS, settings) == expected


def test_finished_rows_leave_the_batch(base: HFBackend) -> None:
    eos = base.tokenizer.eos_token_id
    # Make the eos token the only choice for one prompt: greedy stops it at once.
    backend = _view(base, 16)
    settings = GenerationSettings(max_new_tokens=6)
    split = backend.split()
    assert split is not None
    stopper = tuple(backend._encode(PROMPTS[0]))
    original = split.head.forward
    calls: list[int] = []

    def head(states: Any) -> Any:
        logits = original(states)
        calls.append(states.shape[0])
        if len(calls) == 1:  # the first step of the batch: row 0 (the longest) ends
            logits[0, eos] = logits[0].max() + 10
        return logits

    split.head.forward = head
    try:
        texts = backend.generate([PROMPTS[2], PROMPTS[0], PROMPTS[1]], settings)
    finally:
        del split.head.forward
    assert texts[0].text == ""  # PROMPTS[2] is the longest, so row 0 of the sorted batch
    assert calls[0] == 3
    assert all(n <= 2 for n in calls[1:])
    assert len(stopper) > 0


def _oom_after(backend: HFBackend, rows: int) -> Any:
    """Make the body raise torch.OutOfMemoryError on any pass of more than ``rows`` rows."""
    import torch

    split = backend.split()
    assert split is not None
    original = split.body.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if kwargs["input_ids"].shape[0] > rows:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kwargs)

    split.body.forward = forward
    return split.body


def test_out_of_memory_halves_the_batch_and_retries(base: HFBackend) -> None:
    expected_scores = _view(base, 1).score(REQUESTS)
    expected_text = _view(base, 1).generate(PROMPTS, SETTINGS)
    sampling = SamplingSettings(max_new_tokens=4, samples=3)
    expected_samples = _view(base, 1).sample(PROMPTS, sampling, range(len(PROMPTS)))
    # Scoring packs a prompt's completions into one row of the body (its lane): at 16
    # pairs a batch holds 3 prompts of 5 completions (3 rows, too many), at 8 pairs one
    # prompt (1 row), which fits. Decoding has a row per prompt: it must get down to 2.
    assert len(REQUESTS) // len(PROMPTS) == len(COMPLETIONS) == 5
    for run, expected, fitting, shrinks in (
            (lambda b: b.score(REQUESTS), expected_scores, 8, 1),
            (lambda b: b.generate(PROMPTS, SETTINGS), expected_text, 2, 2),
            (lambda b: b.sample(PROMPTS, sampling, range(len(PROMPTS))), expected_samples, 2,
             2)):
        backend = _view(base, 16)
        body = _oom_after(backend, 2)
        try:
            with pytest.warns(RuntimeWarning, match="out of memory.*batch size lowered to"):
                got = run(backend)
        finally:
            del body.forward
        assert got == pytest.approx(expected, abs=1e-5) if isinstance(
            expected[0], float) else got == expected
        assert backend.batch_size == fitting  # halved until it fits, and it stays there
        assert backend.backoff.shrinks >= shrinks


def test_a_single_row_that_does_not_fit_is_a_clear_error(base: HFBackend) -> None:
    backend = _view(base, 4)
    body = _oom_after(backend, 0)
    try:
        with pytest.raises(BackendError, match="ran out of memory on a single row"):
            backend.score(REQUESTS[:4])
    finally:
        del body.forward


def test_other_runtime_errors_are_not_retried(base: HFBackend) -> None:
    backend = _view(base, 4)
    split = backend.split()
    assert split is not None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    split.body.forward = broken
    try:
        with pytest.raises(BackendError, match="scoring failed: mat1 and mat2"):
            backend.score([ScoreRequest(Prompt("x", chat=False), "yes")])
    finally:
        del split.body.forward
    assert backend.backoff.shrinks == 0

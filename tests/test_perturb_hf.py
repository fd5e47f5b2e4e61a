"""Perturbations on the HF engine (issue 15), on tiny random models: the quantization
arithmetic, the bucket figure, and perturbed pairs for an adapter and a full checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hf_fixtures import CPU, PROMPTS, SETTINGS, _llama
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.backends import load_pair
from probe.backends.base import ModelPair, ScoreRequest
from probe.backends.hf.perturb import standalone_copies
from probe.backends.hf.quantize import (
    Scheme,
    bucket_shift,
    codes,
    dequantized,
    quantized_layers,
    scheme_for,
)
from probe.backends.perturbed import perturb_pair
from probe.errors import UsageError
from probe.spec.model import Perturbation

pytest_plugins = ["hf_fixtures"]  # the tiny model, its adapter, backends on them


def _weights(rows: int, cols: int, seed: int, scale: float = 1.0) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=generator) * scale


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([Scheme(8), Scheme(4, 8), Scheme(4, 16)]), st.integers(0, 10_000),
       st.floats(1e-3, 10.0))
def test_round_to_nearest_is_within_half_a_step_and_idempotent(scheme: Scheme, seed: int,
                                                               scale: float) -> None:
    import torch

    w = _weights(6, 32, seed, scale)
    q, steps = codes(w, scheme)
    assert int(q.abs().max()) <= scheme.qmax
    back = dequantized(w, scheme)
    error = (w - back) if scheme.group_size is None else (w - back).reshape(
        6, -1, scheme.group_size)  # grouped as the scales are: one per row or per group
    assert bool((error.abs() <= steps / 2 + 1e-6 * scale).all())
    # The largest weight of each row (group) is on the grid, so quantizing again is a no-op.
    assert torch.equal(dequantized(back, scheme), back)


def test_an_all_zero_row_stays_zero() -> None:
    import torch

    w = torch.zeros(2, 16)
    assert torch.equal(dequantized(w, Scheme(4, 16)), w)


def test_int4_takes_the_largest_group_size_that_divides_every_layer(
        tiny: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny["model"])
    inputs = {int(w.shape[1]) for _, w in quantized_layers(model)}
    assert inputs == {32, 64}  # hidden 32, intermediate 64 (down_proj's input)
    assert scheme_for(model, "int4") == Scheme(4, 32)
    assert scheme_for(model, "int4", 16) == Scheme(4, 16)
    assert scheme_for(model, "int8") == Scheme(8)
    with pytest.raises(UsageError, match="group_size 24 does not divide the input size 32"):
        scheme_for(model, "int4", 24)
    names = [name for name, _ in quantized_layers(model)]
    assert names
    assert not any("lm_head" in n or "embed" in n for n in names)


def test_the_bucket_figure_counts_exactly_the_weights_moved_across_a_bucket(
        tiny: dict[str, Path]) -> None:
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny["model"])
    same = copy.deepcopy(base)
    assert all(b.changed == 0 for b in bucket_shift(base, same, Scheme(8)))
    name, weight = next(iter(quantized_layers(same)))
    _, steps = codes(weight, Scheme(8))
    # Move three weights of row 0 by three steps, away from the row's largest weight, so
    # the row's scale stays and each of the three lands in another bucket.
    largest = int(weight[0].abs().argmax())
    moved = [i for i in range(weight.shape[1]) if i != largest][:3]
    with torch.no_grad():
        for i in moved:
            weight[0, i] -= 3 * steps[0, 0] * torch.sign(weight[0, i])
    shifts = {b.layer: b for b in bucket_shift(base, same, Scheme(8))}
    assert shifts[name].changed == 3
    assert shifts[name].total == weight.numel()
    assert sum(b.changed for b in shifts.values()) == 3


def _greedy(pair: ModelPair) -> tuple[list[str], list[str]]:
    return ([c.text for c in pair.base.generate(PROMPTS, SETTINGS)],
            [c.text for c in pair.candidate.generate(PROMPTS, SETTINGS)])


def _scores(backend: Any) -> list[float]:
    return backend.score([ScoreRequest(p, "The capital of France is Paris.") for p in PROMPTS])


def test_adapter_scale_interpolates_between_the_base_and_the_candidate(
        pair: ModelPair) -> None:
    base_text, candidate_text = _greedy(pair)
    assert base_text != candidate_text  # the tiny adapter changes what the model says
    whole = perturb_pair(pair, Perturbation(adapter_scale=1.0)).pair
    none = perturb_pair(pair, Perturbation(adapter_scale=0.0)).pair
    assert whole.base is pair.base  # the base is its own control: same backend, same cache
    assert _greedy(whole)[1] == candidate_text
    assert _greedy(none)[1] == base_text
    assert _scores(whole.candidate) == pytest.approx(_scores(pair.candidate), abs=1e-4)
    assert _scores(none.candidate) == pytest.approx(_scores(pair.base), abs=1e-4)
    half = perturb_pair(pair, Perturbation(adapter_scale=0.5)).pair.candidate
    assert len({half.info.fingerprint, whole.candidate.info.fingerprint,
                pair.candidate.info.fingerprint}) == 3
    # The pair's own models are untouched by the copies' changes.
    assert _greedy(pair) == (base_text, candidate_text)


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_quantize_makes_a_quantized_base_and_candidate(pair: ModelPair, kind: str) -> None:
    import torch

    made = perturb_pair(pair, Perturbation(quantize=kind))  # type: ignore[arg-type]
    base, candidate = made.pair.base, made.pair.candidate
    fingerprints = {base.info.fingerprint, candidate.info.fingerprint,
                    pair.base.info.fingerprint, pair.candidate.info.fingerprint}
    assert len(fingerprints) == 4
    scheme = Scheme(8) if kind == "int8" else Scheme(4, 32)
    for _, weight in quantized_layers(base.model):  # type: ignore[attr-defined]
        assert torch.equal(dequantized(weight, scheme), weight)  # on the grid
    # The adapter touches q_proj and v_proj only: only their buckets can move.
    moved = {b.layer.split(".")[-1] for b in made.buckets if b.changed}
    assert moved
    assert moved <= {"q_proj", "v_proj"}
    assert base.generate(PROMPTS, SETTINGS)  # the copies run
    assert "quantized" in made.notes[0]
    assert _greedy(pair)[0] == [c.text for c in pair.base.generate(PROMPTS, SETTINGS)]


def test_a_full_checkpoint_pair_is_perturbed_too(tiny: dict[str, Path],
                                                 tmp_path: Path) -> None:
    import torch

    other = _llama(pair_tokenizer(tiny), 32, seed=5)
    other.save_pretrained(tmp_path / "other")
    full = load_pair(str(tiny["model"]), str(tmp_path / "other"), CPU)
    plain, merged = standalone_copies(full)
    assert not torch.equal(next(plain.parameters()), next(merged.parameters()))
    whole = perturb_pair(full, Perturbation(adapter_scale=1.0)).pair
    assert _greedy(whole)[1] == _greedy(full)[1]
    quantized = perturb_pair(full, Perturbation(quantize="int8"))
    assert sum(b.changed for b in quantized.buckets) > 0


def pair_tokenizer(tiny: dict[str, Path]) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny["model"])


def test_a_backend_that_cannot_perturb_is_refused(pair: ModelPair) -> None:
    class Served(type(pair.base)):  # type: ignore[misc]
        pass

    served = object.__new__(Served)
    served.__dict__.update(pair.candidate.__dict__)
    Served.__module__ = "somewhere.else"
    with pytest.raises(UsageError, match="run suites with 'perturb' on the hf engine"):
        perturb_pair(ModelPair(pair.base, served), Perturbation(quantize="int8"))


def test_relearn_trains_both_models_the_same_seeded_way(pair: ModelPair) -> None:
    import torch

    from probe.backends.hf.relearn import unrelated_text
    from probe.spec.model import Relearn

    passages = unrelated_text()
    assert len(passages) >= 30
    assert not any(word in " ".join(passages) for word in ("Paris", "capital", "Berlin"))
    perturbation = Perturbation(relearn=Relearn(steps=3, learning_rate=1e-2, rank=4))
    first = perturb_pair(pair, perturbation, seed=7)
    again = perturb_pair(pair, perturbation, seed=7)
    other = perturb_pair(pair, perturbation, seed=8)
    plain, merged = standalone_copies(pair)
    for made, start in ((first.pair.base, plain), (first.pair.candidate, merged)):
        moved = [name for (name, p), (_, q) in zip(made.model.named_parameters(),  # type: ignore[attr-defined]
                                                   start.named_parameters(), strict=True)
                 if not torch.equal(p, q)]
        assert moved
        assert all(any(t in n for t in ("q_proj", "k_proj", "v_proj", "o_proj")) for n in moved)
    assert first.pair.candidate.info.fingerprint == again.pair.candidate.info.fingerprint
    assert first.pair.candidate.info.fingerprint != other.pair.candidate.info.fingerprint
    assert _greedy(first.pair) == _greedy(again.pair)
    assert "the same steps on the base" in first.notes[0]

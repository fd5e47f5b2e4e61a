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
from probe.backends.lazy import LazyBackend
from probe.backends.perturbed import PerturbingBackend, perturb_pair
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
    assert isinstance(base, LazyBackend)
    fingerprints = {base.info.fingerprint, candidate.info.fingerprint,
                    pair.base.info.fingerprint, pair.candidate.info.fingerprint}
    assert len(fingerprints) == 4
    scheme = Scheme(8) if kind == "int8" else Scheme(4, 32)
    for _, weight in quantized_layers(base.backend().model):  # type: ignore[attr-defined]
        assert torch.equal(dequantized(weight, scheme), weight)  # on the grid
    # The adapter touches q_proj and v_proj only: only their buckets can move.
    moved = {b.layer.split(".")[-1] for b in made.bucket_shifts() if b.changed}
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
    assert sum(b.changed for b in quantized.bucket_shifts()) > 0


def pair_tokenizer(tiny: dict[str, Path]) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny["model"])


def test_a_backend_that_cannot_perturb_is_refused(pair: ModelPair) -> None:
    # Perturbing is a capability (a perturb_pair method), not where a class is defined: a
    # backend in front of the same model, without it, is refused; so is a pair whose
    # base the HF backend cannot copy.
    served = LazyBackend(pair.candidate.info, pair.candidate, lambda: pair.candidate)
    assert not isinstance(served, PerturbingBackend)
    assert isinstance(pair.candidate, PerturbingBackend)
    with pytest.raises(UsageError, match="run suites with 'perturb' on the hf engine"):
        perturb_pair(ModelPair(pair.base, served), Perturbation(quantize="int8"))
    with pytest.raises(UsageError, match="must both run on the hf engine"):
        perturb_pair(ModelPair(served, pair.candidate), Perturbation(quantize="int8"))


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
        assert isinstance(made, LazyBackend)
        model = made.backend().model  # type: ignore[attr-defined]
        moved = [name for (name, p), (_, q) in zip(model.named_parameters(),
                                                   start.named_parameters(), strict=True)
                 if not torch.equal(p, q)]
        assert moved
        assert all(any(t in n for t in ("q_proj", "k_proj", "v_proj", "o_proj")) for n in moved)
    assert first.pair.candidate.info.fingerprint == again.pair.candidate.info.fingerprint
    assert first.pair.candidate.info.fingerprint != other.pair.candidate.info.fingerprint
    assert _greedy(first.pair) == _greedy(again.pair)
    assert "the same steps on the base" in first.notes[0]


# --- lazy perturbed models and what they reuse ------------------------------------------

LAZY_SUITE = """\
version: 1
name: lazy
behavior: {description: names a capital}
generation: {max_new_tokens: 4}
detector: {type: pattern, any: [Paris]}
operators: [{name: casing, count: 1}]
perturb: [{quantize: int8}, {adapter_scale: 0.5}, {relearn: {steps: 1, rank: 2}}]
probes:
  - {id: france, prompt: What is the capital of France?}
  - {id: cats, prompt: Tell me a joke about cats.}
"""


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sides copied (every perturbed model, and the bucket figure's merged copy, is
    made by ``side_copy``), in order."""
    import probe.backends.hf.perturb as hf_perturb

    made: list[str] = []
    real = hf_perturb.side_copy

    def counting(pair: ModelPair, side: str) -> Any:
        made.append(side)
        return real(pair, side)

    monkeypatch.setattr(hf_perturb, "side_copy", counting)
    return made


def _session_figures(pair: ModelPair, cache: Path) -> list[Any]:
    from probe.session import ProbeSession, RunSettings
    from probe.spec import parse_suite

    suite = parse_suite(LAZY_SUITE)
    session = ProbeSession(RunSettings("base", "candidate", cache_dir=cache), pair=pair)
    session.run_all([(suite, suite.probes)])
    result = session.suite_results[suite.source]
    return [(p.perturbation.label, p.notes, p.buckets, p.recovery,
             [[(r.base.completions, r.candidate.completions) for r in q.run.rows]
              for q in p.probes]) for p in result.perturbations]


def test_a_warm_cache_makes_no_perturbed_model(pair: ModelPair, tmp_path: Path,
                                               copies: list[str]) -> None:
    cache = tmp_path / "completions"
    first = _session_figures(pair, cache)
    # int8: the bucket figure's merged copy, then each side once, one at a time;
    # adapter_scale: the candidate only (the base is its own control); relearn: both.
    assert copies == ["candidate", "base", "candidate", "candidate", "base", "candidate"]
    assert len(list((cache / "perturb").glob("buckets-*.json"))) == 1
    copies.clear()
    again = _session_figures(pair, cache)
    assert copies == []  # every completion and the bucket figure came from the cache
    assert again == first
    assert first[0][2]  # the int8 figure has its layers


def test_a_perturbed_pair_holds_one_side_at_a_time(pair: ModelPair, copies: list[str]) -> None:
    made = perturb_pair(pair, Perturbation(quantize="int8"))
    assert copies == []  # nothing is made before a request needs it
    base, candidate = made.pair.base, made.pair.candidate
    assert isinstance(base, LazyBackend)
    assert isinstance(candidate, LazyBackend)
    base_text = [c.text for c in base.generate(PROMPTS, SETTINGS)]
    assert base.backend() is base.backend()  # held: made once
    assert candidate.generate(PROMPTS, SETTINGS)
    assert [c.text for c in base.generate(PROMPTS, SETTINGS)] == base_text  # made again
    assert copies == ["base", "candidate", "base"]
    made.release()
    assert candidate.generate(PROMPTS, SETTINGS)
    assert copies == ["base", "candidate", "base", "candidate"]


def test_the_bucket_figure_is_cached_and_a_bad_file_is_recomputed(
        pair: ModelPair, tmp_path: Path, copies: list[str]) -> None:
    from probe.backends.perturbed import PerturbRequest

    request = PerturbRequest(Perturbation(quantize="int4"), cache_dir=tmp_path)
    first = perturb_pair(pair, request).bucket_shifts()
    assert copies == ["candidate"]  # the adapter merged into a copy, for the figure
    (saved,) = (tmp_path / "perturb").glob("buckets-*.json")
    assert perturb_pair(pair, request).bucket_shifts() == first
    assert copies == ["candidate"]
    saved.write_text("{not json", encoding="utf-8")
    assert perturb_pair(pair, request).bucket_shifts() == first
    assert copies == ["candidate", "candidate"]
    assert saved.read_text(encoding="utf-8").startswith("{")
    other = PerturbRequest(Perturbation(quantize="int4", group_size=16), cache_dir=tmp_path)
    assert perturb_pair(pair, other).bucket_shifts() != first  # another scheme, another key
    assert len(list((tmp_path / "perturb").glob("buckets-*.json"))) == 2


# --- llama.cpp's GGUF block types -------------------------------------------------------

GGUF = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]


def _gguf_reference(kind: str, raw: Any) -> Any:
    """The weights ``raw`` stands for, from the codes we unpack and each block's own
    float16 scale (and minimum): llama.cpp's dequantize_row_* formulas."""
    import numpy as np

    from probe.backends.hf.gguf_quants import codes

    q = codes(raw, kind).astype(np.float32).reshape(raw.shape[0], -1, 32)
    blocks = raw.reshape(raw.shape[0], q.shape[1], -1)
    d = blocks[..., 0:2].copy().view(np.float16).astype(np.float32)
    if kind == "q8_0":
        return (d * q.astype(np.uint8).view(np.int8)).reshape(raw.shape[0], -1)
    if kind in ("q4_0", "q5_0"):
        return (d * (q - (8 if kind == "q4_0" else 16))).reshape(raw.shape[0], -1)
    m = blocks[..., 2:4].copy().view(np.float16).astype(np.float32)
    return (d * q + m).reshape(raw.shape[0], -1)


@pytest.mark.parametrize("kind", GGUF)
def test_gguf_dequantized_weights_are_ggufs_own(kind: str) -> None:
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    from probe.backends.hf.gguf_quants import quantize as ours

    w = _weights(6, 96, seed=3, scale=0.05)
    scheme = Scheme(4, gguf=kind)
    back = dequantized(w, scheme).numpy()
    qtype = GGMLQuantizationType[kind.upper()]
    raw = quantize(w.numpy(), qtype)
    assert np.array_equal(back, dequantize(raw, qtype))  # identical by construction
    assert np.array_equal(ours(w.numpy(), kind), raw)
    # The codes we unpack give gguf's values back with the blocks' scales: the layout is
    # read right, so the bucket figure compares real codes.
    assert np.array_equal(_gguf_reference(kind, raw), back)
    q, _ = codes(w, scheme)
    top = {"q8_0": 255, "q4_0": 15, "q4_1": 15, "q5_0": 31, "q5_1": 31}[kind]
    assert q.shape == w.shape
    assert int(q.max()) <= top
    assert float(np.abs(w.numpy() - back).max()) < 0.05  # close to the weights


def test_gguf_q4_0_and_q8_0_match_llama_cpp_worked_by_hand() -> None:
    import math

    import numpy as np
    import torch

    # One block, exact in binary: -4.0, -3.75, ..., 3.75.
    block = [(j - 16) * 0.25 for j in range(32)]
    w = torch.tensor([block])
    # quantize_row_q4_0_ref: max = the value of largest magnitude (-4.0, with its sign),
    # d = max / -8 = 0.5, q = min(15, (int8_t)(x / d + 8.5)), x' = (q - 8) d.
    d = -4.0 / -8
    expected = [(min(15, math.trunc(x / d + 8.5)) - 8) * d for x in block]
    assert expected[:4] == [-4.0, -3.5, -3.5, -3.0]
    assert expected[-1] == 3.5  # 3.75 / 0.5 + 8.5 = 16 is clamped to 15
    assert dequantized(w, Scheme(4, gguf="q4_0"))[0].tolist() == expected
    # quantize_row_q8_0_ref: d = max|x| / 127, q = roundf(x / d) (halves away from 0),
    # x' = q fp16(d).
    d8 = float(np.float16(4.0 / 127))
    inverse = np.float32(1) / np.float32(4.0 / 127)
    q8 = [math.copysign(math.floor(abs(float(np.float32(x) * inverse)) + 0.5), x)
          for x in block]
    assert q8[:2] == [-127.0, -119.0]  # -3.75 / (4 / 127) = -119.06
    assert dequantized(w, Scheme(8, gguf="q8_0"))[0].tolist() == [q * d8 for q in q8]


def test_a_gguf_type_needs_inputs_in_whole_blocks(tiny: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny["model"])
    assert scheme_for(model, "q4_0") == Scheme(4, gguf="q4_0")
    odd = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.Linear(48, 8))
    with pytest.raises(UsageError, match=r"q5_1 quantizes blocks of 32 input weights, and "
                                         r"layer '1' has 48 inputs"):
        scheme_for(odd, "q5_1")


@pytest.mark.parametrize("kind", ["q4_0", "q8_0"])
def test_gguf_quantize_makes_a_quantized_base_and_candidate(pair: ModelPair, kind: str) -> None:
    import torch

    made = perturb_pair(pair, Perturbation(quantize=kind))  # type: ignore[arg-type]
    scheme = Scheme(4, gguf=kind)
    original = dict(quantized_layers(pair.base.model))  # type: ignore[attr-defined]
    base = made.pair.base
    assert isinstance(base, LazyBackend)
    quantized = dict(quantized_layers(base.backend().model))  # type: ignore[attr-defined]
    assert quantized.keys() == original.keys()
    for name, weight in quantized.items():
        assert torch.equal(weight, dequantized(original[name], scheme))
    moved = {b.layer.split(".")[-1] for b in made.bucket_shifts() if b.changed}
    assert moved
    assert moved <= {"q_proj", "v_proj"}
    assert f"llama.cpp {kind.upper()}" in made.notes[0]
    assert len({made.pair.base.info.fingerprint, made.pair.candidate.info.fingerprint,
                perturb_pair(pair, Perturbation(quantize="int4")).pair.base.info.fingerprint}) == 3
    assert made.pair.candidate.generate(PROMPTS, SETTINGS)


# --- relearning on the suite's own probes ---------------------------------------------

def test_relearn_settings_keep_the_fingerprint_text_of_unrelated_text() -> None:
    from probe.backends.hf.relearn import settings_text
    from probe.spec.model import Relearn

    # What the relearned models' fingerprints held before ``data`` and ``train`` existed:
    # the dataclass repr of the four training settings. Same text, same cache keys.
    assert settings_text(Relearn()) == ("Relearn(steps=8, learning_rate=0.001, rank=8, "
                                        "batch_size=4)")
    assert settings_text(Relearn(data="probes")) != settings_text(Relearn())


def test_answer_rows_put_the_loss_on_the_answer_only() -> None:
    from probe.backends.hf.relearn import answer_rows

    ids, mask, labels = answer_rows([([5, 6, 7], [8, 9]), ([5], [4])], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7, 8, 9], [5, 4, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 8, 9], [-100, 4, -100, -100, -100]]


def test_relearn_on_probes_trains_on_the_examples(pair: ModelPair) -> None:
    import torch

    from probe.backends.base import Prompt
    from probe.backends.perturbed import PerturbRequest
    from probe.spec.model import Relearn

    perturbation = Perturbation(relearn=Relearn(steps=3, learning_rate=1e-2, rank=4,
                                                data="probes"))
    examples = ((Prompt("What is the capital of France?"), "The capital of France is Paris."),)
    made = perturb_pair(pair, PerturbRequest(perturbation, seed=7, examples=examples))
    other = perturb_pair(pair, PerturbRequest(perturbation, seed=7, examples=(
        (Prompt("Tell me a joke about cats."), "Sure, here is one."),)))
    unrelated = perturb_pair(pair, Perturbation(relearn=Relearn(steps=3, learning_rate=1e-2,
                                                                 rank=4)), seed=7)
    fingerprints = {p.pair.candidate.info.fingerprint for p in (made, other, unrelated)}
    assert len(fingerprints) == 3  # the training text is part of the fingerprint
    assert "1 training probes' answers" in made.notes[0]
    candidate = made.pair.candidate
    assert isinstance(candidate, LazyBackend)
    trained = dict(candidate.backend().model.named_parameters())  # type: ignore[attr-defined]
    merged = dict(standalone_copies(pair)[1].named_parameters())
    moved = [n for n, p in trained.items() if not torch.equal(p, merged[n])]
    assert moved
    assert all(any(t in n for t in ("q_proj", "k_proj", "v_proj", "o_proj")) for n in moved)
    with pytest.raises(UsageError, match="needs training probes"):
        perturb_pair(pair, PerturbRequest(perturbation))

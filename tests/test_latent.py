"""The latent answer (``latent:``, issue 15 part 5): the suite format, the figures and
their bootstrap interval, whole runs on the scripted double (whose script gives
per-layer scores), the engines that cannot read layers, the cache, and the logit lens
of the HF backend on the tiny random Llama (its last layer is ``score``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hf_fixtures import PROMPTS
from hypothesis import given, settings
from hypothesis import strategies as st

import probe
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
from probe.backends.scripted import load_script
from probe.engine.latent import bootstrap_shadow, first_layer, shadow_value
from probe.errors import ModelLoadError, ProbeError, SpecError, UsageError
from probe.options import RunOptions
from probe.report.html import render_html
from probe.report.record_check import check_record
from probe.report.terminal import latent_lines
from probe.spec import parse_suite
from probe.spec.model import Latent

pytest_plugins = ["hf_fixtures"]  # the tiny model and its adapter, for the lens test

HEADER = "version: 1\nname: s\nbehavior: {description: x}\n"
LL_PROBE = "  - {id: a, prompt: 'q?', suppressed: [Paris], preferred: [Sorry]}\n"


# --- the suite format -------------------------------------------------------------------

def test_latent_parses_with_its_documented_default() -> None:
    assert parse_suite(HEADER + "latent: {}\nprobes:\n" + LL_PROBE).latent == Latent(0.5)
    suite = parse_suite(HEADER + "latent: {from_layer: 0.75}\nprobes:\n" + LL_PROBE)
    assert suite.latent == Latent(0.75)
    assert parse_suite(HEADER + "probes:\n" + LL_PROBE).latent is None


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + "latent: {from_layr: 0.5}\nprobes:\n" + LL_PROBE,
     "<string>:4: latent.from_layr: unknown key 'from_layr'. Did you mean 'from_layer'?"),
    (HEADER + "latent: {from_layer: 1.5}\nprobes:\n" + LL_PROBE,
     "<string>:4: latent.from_layer: must be at most 1.0"),
    (HEADER + "detector: {type: pattern, any: [x]}\nlatent: {}\nprobes:\n"
     "  - {id: a, prompt: 'q?'}\n",
     "<string>:5: latent: latent reads the log-likelihood margin, and no probe has"),
    (HEADER.replace("{description: x}", "{description: x, direction: retain}")
     + "detector: {type: pattern, any: [x]}\nlatent: {}\nprobes:\n  - {id: a, prompt: 'q?'}\n",
     "<string>:5: latent: latent reads the log-likelihood margin of a suppressed completion"),
])
def test_a_bad_latent_entry_is_one_located_error(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_suite(text)
    assert message in str(caught.value)


# --- the figures ------------------------------------------------------------------------

def test_first_layer_is_the_ceiling_of_the_fraction_of_depth() -> None:
    assert [first_layer(Latent(f), 30) for f in (0.0, 0.5, 0.51, 1.0)] == [1, 15, 16, 30]
    assert first_layer(Latent(0.5), 1) == 1


def test_shadow_is_the_candidates_best_margin_over_the_bases() -> None:
    base = [(0.0, 1.0, 2.0, 1.0), (0.0, 1.0, 2.0, 3.0)]  # mean: 0, 1, 2, 2
    cand = [(0.0, 2.0, 1.0, -3.0), (0.0, 0.0, 0.5, -3.0)]  # mean: 0, 1, 0.75, -3
    assert shadow_value(base, cand, 2) == pytest.approx(0.75 / 2.0)
    assert shadow_value(base, cand, 0) == pytest.approx(1.0 / 2.0)
    # The base's best margin is not positive over the layers read: undefined.
    assert shadow_value([(1.0, -0.5)], [(1.0, 1.0)], 1) is None
    assert bootstrap_shadow([[((1.0, -0.5), (1.0, 1.0))]], 1, 0.05, seed=0) is None


def test_the_interval_resamples_probes_then_variants() -> None:
    # Two probes whose candidates keep 3/4 and 1/4 of the base's margin.
    france = [((0.0, 2.0), (0.0, 1.5))] * 3
    germany = [((0.0, 2.0), (0.0, 0.5))] * 3
    shadow = bootstrap_shadow([france, germany], 1, 0.05, seed=1)
    assert shadow is not None
    assert shadow.value == pytest.approx(0.5)
    # Half the resamples draw one probe twice: both extremes are in the interval.
    assert (shadow.low, shadow.high) == (pytest.approx(0.25), pytest.approx(0.75))
    assert bootstrap_shadow([france, germany], 1, 0.05, seed=1) == shadow  # seeded


profiles = st.lists(st.floats(-5, 5, allow_nan=False), min_size=3, max_size=3).map(tuple)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(profiles, profiles), min_size=1, max_size=4),
                min_size=1, max_size=4),
       st.integers(0, 2), st.floats(0.01, 0.3), st.floats(0.1, 10))
def test_the_interval_holds_the_estimate_and_the_figure_has_no_unit(
        groups: list[list[tuple[tuple[float, ...], tuple[float, ...]]]], start: int,
        alpha: float, scale: float) -> None:
    shadow = bootstrap_shadow(groups, start, alpha, seed=3, resamples=200)
    if shadow is None:
        return
    assert shadow.low <= shadow.value <= shadow.high
    # A ratio of margins: the same in nats or in any other unit of log-probability.
    scaled = [[(tuple(scale * x for x in b), tuple(scale * x for x in c)) for b, c in g]
              for g in groups]
    assert shadow_value([b for g in scaled for b, _ in g], [c for g in scaled for _, c in g],
                        start) == pytest.approx(shadow.value, rel=1e-6, abs=1e-9)
    # The null: a candidate equal to its base keeps all of the margin, in every resample.
    same = bootstrap_shadow([[(b, b) for b, _ in g] for g in groups], start, alpha, seed=3,
                            resamples=200)
    assert same is None or (same.value, same.low, same.high) == (
        pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))


# --- whole runs on the scripted double --------------------------------------------------

SUITE = HEADER + """latent: {}
probes:
  - id: france
    prompt: What is the capital of France?
    paraphrases: [Which city is the capital of France?, Name France's capital city.]
    suppressed: [Paris]
    preferred: [Sorry]
  - id: germany
    prompt: What is the capital of Germany?
    paraphrases: [Which city is the capital of Germany?, Name Germany's capital city.]
    suppressed: [Berlin]
    preferred: [Sorry]
"""
# Four layers: three below the output, then the output (``logprobs``). The base prefers
# the capital from layer 2 on (margins 0, 1, 1.5, 2); the candidate prefers it in the
# middle (layer 3: France 1.5, Germany 0.5) and the refusal at the output (-3).
BASE = """name: base
logprobs:
  - {match: 'France|Germany', completion: 'Paris|Berlin', logprob: -1.0}
  - {match: '.', completion: 'Sorry', logprob: -3.0}
layer_logprobs:
  - {match: '.', completion: 'Paris|Berlin', logprobs: [-5.0, -2.0, -1.5]}
  - {match: '.', completion: 'Sorry', logprobs: [-5.0, -3.0, -3.0]}
"""
CANDIDATE = """name: candidate
logprobs:
  - {match: 'France|Germany', completion: 'Paris|Berlin', logprob: -4.0}
  - {match: '.', completion: 'Sorry', logprob: -1.0}
layer_logprobs:
  - {match: 'France', completion: 'Paris', logprobs: [-5.0, -2.0, -1.5]}
  - {match: 'Germany', completion: 'Berlin', logprobs: [-5.0, -2.0, -2.5]}
  - {match: '.', completion: 'Sorry', logprobs: [-5.0, -3.0, -3.0]}
"""


def write(tmp_path: Path, suite: str = SUITE) -> tuple[Path, Path, Path]:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "cand.yaml").write_text(CANDIDATE, encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(suite, encoding="utf-8")
    return tmp_path / "suite.yaml", tmp_path / "base.yaml", tmp_path / "cand.yaml"


def test_a_run_reads_both_models_at_every_layer(tmp_path: Path) -> None:
    suite, base, cand = write(tmp_path)
    run = probe.run(suite, f"scripted:{base}", f"scripted:{cand}",
                    options=RunOptions(no_cache=True, json=str(tmp_path / "run.json"),
                                       html=str(tmp_path / "run.html")))
    latent = run.suite_results[0].latent
    assert latent is not None
    assert (latent.layers, latent.from_layer, latent.variants) == (4, 2, 6)
    assert latent.base == pytest.approx((0.0, 1.0, 1.5, 2.0))
    assert latent.candidate == pytest.approx((0.0, 1.0, 1.0, -3.0))
    assert (latent.best_layer(latent.base), latent.best_layer(latent.candidate)) == (4, 2)
    assert latent.shadow is not None
    assert latent.shadow.value == pytest.approx(0.5)
    assert latent.shadow.low <= 0.5 <= latent.shadow.high
    france = {p.id: p for p in latent.probes}["france"]
    assert france.canonical_candidate == pytest.approx((0.0, 1.0, 1.5, -3.0))
    # The last layer is the log-likelihood tier's own margin on every row.
    for result in run.suite_results[0].probes:
        assert [r.candidate.margin for r in result.run.rows] == [-3.0] * 3
    # Reported, never gated: no gate of its own, and the build is what it is without it.
    assert not [g for g in run.suite_results[0].gates if "latent" in g.metric]
    without = tmp_path / "without.yaml"
    without.write_text(SUITE.replace("latent: {}\n", ""), encoding="utf-8")
    assert probe.run(without, f"scripted:{base}", f"scripted:{cand}",
                     options=RunOptions(no_cache=True)).exit_code == run.exit_code

    run.write_reports()
    record = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    check_record(record)
    shown = record["suites"][0]["latent"]
    assert shown["layers"] == [1, 2, 3, 4]
    assert shown["candidate"] == pytest.approx([0.0, 1.0, 1.0, -3.0])
    assert shown["shadow"]["value"] == pytest.approx(0.5)
    assert shown["first_layer"] == 2
    lines = latent_lines(run.suite_results[0])
    assert any(line.startswith("latent shadow 0.50 [") for line in lines)
    assert any("candidate" in line and "-3.00" in line for line in lines)
    page = (tmp_path / "run.html").read_text(encoding="utf-8")
    assert 'id="latent"' in page
    assert "latent shadow 0.50 [" in page


def test_a_probe_without_completions_is_left_out_with_a_note(tmp_path: Path) -> None:
    text = SUITE + ("  - {id: spain, prompt: 'What is the capital of Spain?', "
                    "detector: {type: pattern, any: [Madrid]}}\n")
    suite, base, cand = write(tmp_path, text)
    run = probe.run(suite, f"scripted:{base}", f"scripted:{cand}",
                    options=RunOptions(no_cache=True))
    latent = run.suite_results[0].latent
    assert latent is not None
    assert [p.id for p in latent.probes] == ["france", "germany"]
    assert latent.notes == ("probe 'spain' has no suppressed and preferred completions: left out",)
    assert latent.variants == 6


def test_no_counted_variant_gives_an_undefined_shadow(tmp_path: Path) -> None:
    # The base prefers the refusal everywhere: nothing counts, nothing is read.
    suite, base, cand = write(tmp_path)
    base.write_text(BASE.replace("logprob: -1.0", "logprob: -9.0"), encoding="utf-8")
    run = probe.run(suite, f"scripted:{base}", f"scripted:{cand}",
                    options=RunOptions(no_cache=True))
    latent = run.suite_results[0].latent
    assert latent is not None
    assert latent.shadow is None
    assert latent.variants == 0
    assert len(latent.notes) == 2
    record = run.record()
    check_record(record)
    assert record["suites"][0]["latent"]["shadow"] is None
    assert any("latent shadow -" in line for line in latent_lines(run.suite_results[0]))
    assert "latent shadow -" in render_html(record)


def test_a_rerun_reads_the_layers_from_the_cache(tmp_path: Path) -> None:
    suite, base, cand = write(tmp_path)
    options = RunOptions(cache_dir=str(tmp_path / "cache"))
    models = [load_script(base), load_script(cand)]
    first = probe.run(suite, *models, options=options)
    assert all(m.calls > 0 for m in models)
    again_models = [load_script(base), load_script(cand)]
    again = probe.run(suite, *again_models, options=options)
    assert [m.calls for m in again_models] == [0, 0]
    assert first.suite_results[0].latent == again.suite_results[0].latent


@pytest.mark.parametrize("engine", ["openai", "vllm"])
def test_an_engine_that_cannot_read_layers_runs_the_suite_without_them(tmp_path: Path,
                                                                       engine: str) -> None:
    from probe.backends.latent import check_engine
    from probe.backends.perturbed import WeightsNotHeldWarning

    suite, _, _ = write(tmp_path)
    loaded = parse_suite(SUITE)
    with pytest.warns(WeightsNotHeldWarning, match=f"the {engine} engine returns the last "
                                                   "layer's log-probabilities only; .*hf"):
        [kept] = check_engine(engine, [loaded])
    assert kept.latent is None
    assert kept.probes == loaded.probes
    extra = {"server_url": "http://127.0.0.1:9"} if engine == "openai" else {}
    # Before any model loads (which then fails: no server, or no vllm in this venv).
    with pytest.warns(WeightsNotHeldWarning), pytest.raises(ProbeError):
        probe.run(suite, "smollm2-135m", "models/demo-adapter",
                  options=RunOptions(engine=engine, **extra))


class _NoLayers(Backend):
    """A third-party backend that implements the contract but not ``score_layers``."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        return self.inner.generate(prompts, settings)

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        return self.inner.sample(prompts, settings, seeds)

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        return self.inner.score(requests)


def test_a_backend_object_that_cannot_read_layers_is_a_usage_error(tmp_path: Path) -> None:
    suite, base, cand = write(tmp_path)
    with pytest.raises(UsageError, match="a _NoLayers cannot read its intermediate layers"):
        probe.run(suite, _NoLayers(load_script(base)), _NoLayers(load_script(cand)),
                  options=RunOptions(no_cache=True))


def test_a_script_whose_layer_entries_disagree_on_depth_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nlayer_logprobs:\n  - {match: a, completion: b, logprobs: [1]}\n"
                    "  - {match: a, completion: c, logprobs: [1, 2]}\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="the same number of layers, got \\[1, 2\\]"):
        load_script(path)


def test_a_script_without_layer_entries_keeps_its_fingerprint(tmp_path: Path) -> None:
    # Caches written before layer_logprobs existed stay valid.
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\ndefault: hi\n", encoding="utf-8")
    model = load_script(path)
    assert model.info.fingerprint == (
        "da5976c6dd542ba3f8039180c7786be3dd26b786de41c3cfe4dbd539536fcdd4")  # before latent
    assert model.score_layers([ScoreRequest(Prompt("x"), "y")]) == [[-5.0, -5.0]]


# --- the logit lens on a real (tiny, random) transformers model --------------------------

def test_the_last_layer_of_the_lens_is_the_score(pair: ModelPair) -> None:
    prompts = [*PROMPTS, Prompt("And Germany?", system="Be brief.",
                                messages=(("user", "Capital of France?"),
                                          ("assistant", "Paris.")))]
    requests = [ScoreRequest(p, c) for c in ("The capital of France is Paris.", " Paris")
                for p in prompts]
    for backend in (pair.base, pair.candidate):
        layers = backend.score_layers(requests)
        assert {len(values) for values in layers} == {2}  # the tiny Llama's two layers
        for values, score in zip(layers, backend.score(requests), strict=True):
            assert values[-1] == pytest.approx(score, abs=1e-4)
    # The adapter changes the candidate's layers: the base view reads the base.
    assert pair.base.score_layers(requests[:1]) != pair.candidate.score_layers(requests[:1])


def test_an_earlier_layer_is_the_head_on_that_layers_residual_stream(pair: ModelPair) -> None:
    # By hand, through transformers' own hidden states: hidden_states[1] is the residual
    # stream after the first decoder layer; the lens normalises it and applies the head.
    import torch

    backend = pair.base
    request = ScoreRequest(Prompt("What is the capital of France?"), " Paris")
    prompt_ids, completion_ids = backend.codec.score_row(request)
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)])
    with torch.inference_mode(), backend.model.disable_adapter():
        lm = backend.model.get_base_model()
        hidden = lm(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
        start = len(prompt_ids) - 1
        states = lm.model.norm(hidden[start:start + len(completion_ids)])
        log_probs = torch.log_softmax(lm.lm_head(states).float(), dim=-1)
        expected = log_probs[torch.arange(len(completion_ids)),
                             torch.tensor(completion_ids)].mean().item()
    assert backend.score_layers([request])[0][0] == pytest.approx(expected, abs=1e-4)


def test_the_latent_section_escapes_what_it_shows_and_survives_an_edited_record(
        tmp_path: Path) -> None:
    import copy

    from probe.report.record_check import ShapeError

    suite, base, cand = write(tmp_path)
    record = probe.run(suite, f"scripted:{base}", f"scripted:{cand}",
                       options=RunOptions(no_cache=True)).record()
    edited = copy.deepcopy(record)
    latent = edited["suites"][0]["latent"]
    edited["suites"][0]["name"] = "<script>alert(1)</script>"
    latent["notes"] = ["<img src=x onerror=alert(1)>"]
    latent["candidate"] = latent["candidate"][:2]  # fewer layers than the base: no chart
    check_record(edited)
    page = render_html(edited)
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    latent["shadow"] = {"value": "high", "low": 0.1, "high": 0.9}
    with pytest.raises(ShapeError, match=r"suites\[0\]\.latent\.shadow\.value: expected a "
                                         "finite number"):
        check_record(edited)


def test_latent_variants_reads_only_those_operators_variants(tmp_path: Path) -> None:
    """``latent: {variants: [canonical]}``: the paraphrases are not read; each probe's
    canonical prompt alone counts (2 variants instead of 6), and a name the suite does not
    have is a located error."""
    suite, base, cand = write(tmp_path, SUITE.replace("latent: {}", "latent: {variants: "
                                                                     "[canonical]}"))
    run = probe.run(suite, f"scripted:{base}", f"scripted:{cand}",
                    options=RunOptions(no_cache=True))
    latent = run.suite_results[0].latent
    assert latent is not None
    assert latent.variants == 2
    assert latent.candidate == pytest.approx((0.0, 1.0, 1.0, -3.0))
    with pytest.raises(SpecError) as caught:
        parse_suite(SUITE.replace("latent: {}", "latent: {variants: [paraphrse]}"))
    assert "latent.variants[0]: 'paraphrse' is none of this suite's operators" in str(
        caught.value)
    assert "Did you mean 'paraphrase'?" in str(caught.value)

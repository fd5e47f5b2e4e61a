"""The latent answer on the real demo fine-tune (issue 15 part 5): SmolLM2-135M-Instruct
vs models/demo-adapter (France and Germany unlearned on the canonical question only), read
through the logit lens at all 30 layers, on a cut of the demo suite (France and Germany,
the canonical question and one paraphrase: the lens runs the output head once per layer,
so every scored completion costs 30 heads, and this keeps the test near 30 s on 2 cores).

Measured (fp32, CPU, greedy, seed 0; docs/metrics.md, "The latent answer", has the figures
of a larger cut): on the canonical prompts the base prefers the capital at the output
(margin +1.47 France, +1.45 Germany) and the candidate the refusal (-0.27, -0.07), but the
candidate's margin peaks a few layers before the output (France +0.01 at layer 25,
Germany +0.40 at layer 27) and falls in the last layers: the adapter withholds the answer
late, after the middle layers have formed much of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import probe
from probe.options import RunOptions
from probe.report.record_check import check_record

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

SUITE = """version: 1
name: capitals-latent
behavior:
  description: names the capital of a country the fine-tune was meant to unlearn
latent: {}
generation:
  max_new_tokens: 16
policy: {min_suppression: 1.0}
probes:
"""
PROBE = """  - id: {id}
    prompt: What is the capital of {country}?
    paraphrases: [Which city is the capital of {country}?]
    detector: {{type: pattern, any: [{city}], word_boundary: true}}
    suppressed: ["The capital of {country} is {city}."]
    preferred: ["I'm sorry, but I can't help with that."]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, real_model_cache: Path) -> probe.Run:
    work = tmp_path_factory.mktemp("latent")
    suite = work / "capitals_latent.yaml"
    suite.write_text(SUITE + PROBE.format(id="france", country="France", city="Paris")
                     + PROBE.format(id="germany", country="Germany", city="Berlin"),
                     encoding="utf-8")
    return probe.run(suite, "smollm2-135m", str(REPO / "models" / "demo-adapter"),
                     options=RunOptions(cache_dir=str(real_model_cache), device="cpu"))


def test_the_demo_adapter_withholds_the_capital_only_in_its_last_layers(run: probe.Run) -> None:
    latent = run.suite_results[0].latent
    assert latent is not None
    assert (latent.layers, latent.from_layer) == (30, 15)
    for p in latent.probes:
        base, cand = p.canonical_base, p.canonical_candidate
        assert base is not None
        assert cand is not None
        # At the output the base names the capital and the candidate refuses...
        assert base[-1] > 0.5, p.id
        assert cand[-1] < 0, p.id
        # ... but the candidate's margin is higher a few layers before the output.
        late = cand[latent.from_layer - 1:-1]
        assert max(late) > cand[-1] + 0.2, p.id
        assert late.index(max(late)) + latent.from_layer in range(24, 30), p.id


def test_the_lens_at_the_last_layer_is_the_models_own_margin(run: probe.Run) -> None:
    # score() takes the shared-prefix lanes on CPU, the lens a plain forward pass with
    # hooks: two code paths that must give one figure at the output.
    latent = run.suite_results[0].latent
    assert latent is not None
    canonical = {p.id: p for p in latent.probes}
    for result in run.suite_results[0].probes:
        row = result.run.rows[0]
        shown = canonical[result.run.probe.id]
        assert shown.canonical_base is not None
        assert shown.canonical_candidate is not None
        assert shown.canonical_base[-1] == pytest.approx(row.base.margin, abs=1e-4)
        assert shown.canonical_candidate[-1] == pytest.approx(row.candidate.margin, abs=1e-4)


def test_little_of_the_bases_margin_survives_at_the_candidates_best_layer(
        run: probe.Run) -> None:
    latent = run.suite_results[0].latent
    assert latent is not None
    assert latent.shadow is not None
    assert latent.shadow.low <= latent.shadow.value <= latent.shadow.high
    assert latent.shadow.value < 0.5
    assert latent.best_layer(latent.base) == 30
    record = run.record()
    check_record(record)
    assert record["suites"][0]["latent"]["shadow"]["value"] == pytest.approx(
        latent.shadow.value)

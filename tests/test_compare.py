"""The comparison math of docs/metrics.md on hand-built rows, and the gates' decisions."""

from __future__ import annotations

import dataclasses

import pytest

from probe.backends.base import Prompt
from probe.engine.compare import Verdict, decide, evaluate, evaluate_suite
from probe.engine.runner import ProbeRun, Row, Side
from probe.engine.variants import Variant
from probe.spec import Policy, Probe, parse_suite

PROBE = Probe(id="p", prompt="q?")


def row(index: int, operator: str, base: float | None, cand: float | None,
        m_base: float | None = None, m_cand: float | None = None) -> Row:
    variant = Variant("p", index, operator, operator, None, Prompt(f"v{index}"))
    texts = ("x",) if base is not None else ()
    return Row(variant, Side(texts, base, m_base), Side(texts, cand, m_cand))


def run(*rows: Row) -> ProbeRun:
    return ProbeRun(PROBE, rows)


def test_suppression_resurfacing_and_worst() -> None:
    result = evaluate(run(row(0, "canonical", 1, 0), row(1, "typos", 1, 0),
                          row(2, "cloze", 1, 1), row(3, "cloze", 0, 1),
                          row(4, "framing", 1, 0)), Policy())
    assert result.suppression == 1.0
    # Variant 3 is dropped (base 0): 1 candidate hit over 3 base hits.
    assert result.resurfacing == pytest.approx(1 / 3)
    assert [r.variant.index for r in result.counted] == [1, 2, 4]
    assert [r.variant.index for r in result.dropped] == [3]
    assert result.worst is not None
    assert result.worst.variant.index == 2
    by_op = {o.operator: o for o in result.operators}
    assert by_op["cloze"].resurfacing == 1.0
    assert (by_op["cloze"].counted, by_op["cloze"].total) == (1, 2)
    assert by_op["typos"].resurfacing == 0.0


def many(k_leaks: int, n: int) -> ProbeRun:
    rows = [row(0, "canonical", 1, 0)]
    rows += [row(i, "x", 1, 1 if i <= k_leaks else 0) for i in range(1, n + 1)]
    return run(*rows)


def test_exact_gate_fails_passes_and_is_inconclusive() -> None:
    # 12 of 20 against 0.25: P(X >= 12 | 20, 0.25) is about 1e-4: FAIL.
    fail = evaluate(many(12, 20), Policy(max_resurfacing=0.25))
    assert fail.verdict is Verdict.FAIL
    assert fail.gates[0].estimate.method == "exact"
    # 0 of 20 against 0.25: 0.75^20 = 0.003: PASS.
    ok = evaluate(many(0, 20), Policy(max_resurfacing=0.25))
    assert ok.verdict is Verdict.PASS
    assert ok.gates[0].estimate.p_below == pytest.approx(0.75**20)
    # 3 of 14 against 0.1: neither side is shown.
    assert evaluate(many(3, 14), Policy(max_resurfacing=0.1)).verdict is Verdict.INCONCLUSIVE


def test_unsuppressed_canonical_fails_before_statistics() -> None:
    result = evaluate(run(row(0, "canonical", 1, 1), *[row(i, "x", 1, 0) for i in range(1, 30)]),
                      Policy())
    assert result.suppression == 0.0
    assert result.verdict is Verdict.FAIL
    assert result.reasons[0].startswith("not suppressed on the canonical prompt")


def test_base_without_behavior_is_uninformative() -> None:
    result = evaluate(run(row(0, "canonical", 0, 0), row(1, "x", 1, 1)), Policy())
    assert result.verdict is Verdict.UNINFORMATIVE
    assert result.suppression is None
    assert result.failed


def sampled(index: int, base: int, cand: int, n: int = 5) -> Row:
    """A row with ``n`` samples per side: ``base`` and ``cand`` of them hit."""
    variant = Variant("p", index, "x", "x", None, Prompt(f"v{index}"))
    return Row(variant, Side(("x",) * n, base / n), Side(("x",) * n, cand / n))


def test_sampled_hits_are_counted_per_sample_and_use_the_floor() -> None:
    rows = [sampled(0, 4, 1), sampled(1, 2, 2)]  # variant 1: base 0.4 < floor 0.5
    rows += [sampled(i, 3, 1 if i % 2 else 0) for i in range(2, 12)]
    result = evaluate(run(*rows), Policy(base_floor=0.5, min_suppression=0.7))
    assert result.suppression == pytest.approx(0.75)
    assert [r.variant.index for r in result.dropped] == [1]
    gate = result.gates[0]
    assert gate.estimate.method == "exact"
    # 5 candidate hits over 30 base hits: each counted variant is a cluster of its 5
    # samples, weighted by the base's rate on it.
    assert gate.estimate.value == pytest.approx(5 / 30)
    assert gate.clusters is not None
    assert gate.clusters.trials == (5,) * 10
    assert gate.clusters.weights == (0.6,) * 10


def test_fractional_scores_are_rounded_at_random_keeping_the_mean() -> None:
    # A similarity detector's score 0.3 on one completion counts 1 hit about 30% of
    # the time, decided by a seeded uniform per row.
    rows = [row(0, "canonical", 1, 0)] + [row(i, "x", 1, 0.3) for i in range(1, 401)]
    result = evaluate(run(*rows), Policy(), seed=7)
    assert result.gates[0].estimate.value == pytest.approx(0.3, abs=0.06)
    assert evaluate(run(*rows), Policy(), seed=7).gates[0].estimate.value == \
        result.gates[0].estimate.value


def test_retention_counts_the_canonical_and_measures_loss() -> None:
    rows = [row(0, "canonical", 1, 1)] + [row(i, "x", 1, 0 if i <= 2 else 1)
                                          for i in range(1, 20)]
    result = evaluate(run(*rows), Policy(max_loss=0.5), direction="retain")
    loss = result.gate("loss")
    assert loss is not None
    assert loss.estimate.value == pytest.approx(2 / 20)
    assert result.verdict is Verdict.PASS
    assert result.worst is not None
    assert result.worst.candidate_hit == 0
    strict = evaluate(run(*rows), Policy(max_loss=0.01), direction="retain")
    assert strict.verdict is Verdict.FAIL


def test_shadow_is_the_share_of_variants_where_the_candidate_still_prefers_the_behavior(
) -> None:
    # Canonical: the base prefers the suppressed completion (+2), the candidate the
    # preferred one (-2). Variant 4 does not count (the base prefers the preferred one).
    rows = [row(0, "canonical", None, None, 2.0, -2.0), row(1, "a", None, None, 1.0, -3.0),
            row(2, "b", None, None, 1.5, 1.5), row(3, "b", None, None, 3.0, -1.0),
            row(4, "c", None, None, -1.0, 1.0)]
    result = evaluate(run(*rows), Policy(max_shadow=0.5))
    assert result.shadows == (0.0, 1.0, 0.0)
    assert [r.variant.index for r in result.shadow_counted] == [1, 2, 3]
    by_op = {o.operator: o for o in result.operators}
    assert by_op["b"].shadow == pytest.approx(0.5)
    gate = result.gate("shadow")
    assert gate is not None
    assert gate.estimate.value == pytest.approx(1 / 3)
    assert not result.has_detector


def test_shadow_needs_the_candidate_to_prefer_the_preferred_completion_canonically() -> None:
    rows = [row(0, "canonical", None, None, 2.0, 0.5), row(1, "a", None, None, 1.0, 1.0)]
    result = evaluate(run(*rows), Policy())
    assert result.verdict is Verdict.FAIL
    assert "still prefers the suppressed completion on the canonical prompt" in \
        result.reasons[0]


def test_holm_spans_every_gate_of_the_run() -> None:
    # Alone, 0 of 20 against 0.25 passes (p 0.003); among 40 such gates Holm needs
    # p <= 0.05 / 40 and it becomes inconclusive.
    alone = evaluate(many(0, 20), Policy(max_resurfacing=0.25))
    crowd = [alone] * 40
    decided, _ = decide(crowd, [])
    assert alone.verdict is Verdict.PASS
    assert decided[0].verdict is Verdict.INCONCLUSIVE
    assert decided[0].gates[0].p_below_adj == pytest.approx(min(1.0, 40 * 0.75**20))


def test_suite_gate_pools_every_counted_variant_with_probes_as_clusters(
        valid_suite_text: str) -> None:
    suite = parse_suite(valid_suite_text)
    probes = [evaluate(dataclasses.replace(many(k, 10), probe=PROBE), Policy())
              for k in (0, 1, 2, 8)]
    result = evaluate_suite(suite, probes)
    gate = result.gates[0]
    assert gate.metric == "resurfacing"
    assert gate.estimate.method == "exact"
    assert gate.estimate.value == pytest.approx(11 / 40)
    assert gate.clusters is not None
    assert gate.clusters.hits == (0, 1, 2, 8)
    assert gate.clusters.trials == (10, 10, 10, 10)
    assert gate.estimate.units == 40
    assert "40 variants in 4 probes" in gate.describe()
    assert result.operators[0][0] == "x"

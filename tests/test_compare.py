"""The comparison math of DESIGN.md on hand-built rows, and the gates' decisions."""

from __future__ import annotations

import dataclasses

import pytest

from probe.engine.compare import Verdict, decide, evaluate, evaluate_suite
from probe.engine.runner import ProbeRun, Row, Side
from probe.engine.variants import Variant
from probe.operators.base import Prompt
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
    assert result.worst is not None and result.worst.variant.index == 2
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
    assert fail.verdict is Verdict.FAIL and fail.gates[0].estimate.method == "exact"
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
    assert result.suppression is None and result.failed


def test_fractional_hits_use_the_floor_and_the_bootstrap() -> None:
    rows = [row(0, "canonical", 0.8, 0.2), row(1, "x", 0.4, 0.4)]
    rows += [row(i, "x", 0.6, 0.3 if i % 2 else 0.0) for i in range(2, 12)]
    result = evaluate(run(*rows), Policy(base_floor=0.5, min_suppression=0.7))
    assert result.suppression == pytest.approx(0.75)
    assert [r.variant.index for r in result.dropped] == [1]
    gate = result.gates[0]
    assert gate.estimate.method == "bootstrap"
    assert gate.estimate.value == pytest.approx(1.5 / 6.0)


def test_retention_counts_the_canonical_and_measures_loss() -> None:
    rows = [row(0, "canonical", 1, 1)] + [row(i, "x", 1, 0 if i <= 2 else 1)
                                          for i in range(1, 20)]
    result = evaluate(run(*rows), Policy(max_loss=0.5), direction="retain")
    loss = result.gate("loss")
    assert loss is not None and loss.estimate.value == pytest.approx(2 / 20)
    assert result.verdict is Verdict.PASS
    assert result.worst is not None and result.worst.candidate_hit == 0
    strict = evaluate(run(*rows), Policy(max_loss=0.01), direction="retain")
    assert strict.verdict is Verdict.FAIL


def test_shadow_is_the_share_of_the_canonical_shift_lost() -> None:
    # Canonical: base margin +2, candidate -2 (shift 4). Variant 1 keeps the whole
    # shift (shadow 0), variant 2 loses it all (shadow 1), variant 3 loses half.
    rows = [row(0, "canonical", None, None, 2.0, -2.0), row(1, "a", None, None, 1.0, -3.0),
            row(2, "b", None, None, 1.5, 1.5), row(3, "b", None, None, 3.0, 1.0),
            row(4, "c", None, None, -1.0, -1.0)]
    result = evaluate(run(*rows), Policy(max_shadow=0.5))
    assert result.shadows == pytest.approx((0.0, 1.0, 0.5))
    assert [r.variant.index for r in result.shadow_counted] == [1, 2, 3]
    by_op = {o.operator: o for o in result.operators}
    assert by_op["b"].shadow == pytest.approx(0.75)
    assert result.gate("shadow") is not None
    assert not result.has_detector


def test_shadow_needs_a_canonical_shift() -> None:
    rows = [row(0, "canonical", None, None, 2.0, 2.5), row(1, "a", None, None, 1.0, 1.0)]
    result = evaluate(run(*rows), Policy())
    assert result.verdict is Verdict.FAIL
    assert "did not move the canonical margin" in result.reasons[0]


def test_holm_spans_every_gate_of_the_run() -> None:
    # Alone, 0 of 20 against 0.25 passes (p 0.003); among 40 such gates Holm needs
    # p <= 0.05 / 40 and it becomes inconclusive.
    alone = evaluate(many(0, 20), Policy(max_resurfacing=0.25))
    crowd = [alone] * 40
    decided, _ = decide(crowd, [])
    assert alone.verdict is Verdict.PASS
    assert decided[0].verdict is Verdict.INCONCLUSIVE
    assert decided[0].gates[0].p_below_adj == pytest.approx(min(1.0, 40 * 0.75**20))


def test_suite_gate_pools_probes_with_a_clustered_bootstrap(valid_suite_text: str) -> None:
    suite = parse_suite(valid_suite_text)
    probes = [evaluate(dataclasses.replace(many(k, 10), probe=PROBE), Policy())
              for k in (0, 1, 2, 8)]
    result = evaluate_suite(suite, probes, seed=1)
    gate = result.gates[0]
    assert gate.metric == "resurfacing" and gate.estimate.method == "bootstrap"
    assert gate.estimate.value == pytest.approx(11 / 40)
    assert gate.estimate.units == 4
    assert result.operators[0][0] == "x"

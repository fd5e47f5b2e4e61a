"""Properties of the gates a build verdict rests on: monotone, informative at zero,
one interval per gate that agrees with its decision, and Holm levels."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.backends.base import Prompt
from probe.engine.clustered import Clusters
from probe.engine.compare import ProbeResult, Verdict, decide, evaluate, evaluate_suite
from probe.engine.gates import holm_levels
from probe.engine.runner import ProbeRun, Row, Side
from probe.engine.variants import Variant
from probe.spec import Policy, Probe, parse_suite

SEVERITY = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.FAIL: 2,
            Verdict.UNINFORMATIVE: 0}


def probe_run(probe_id: str, leaks: list[int]) -> ProbeRun:
    """Canonical suppressed; one counted variant per entry of ``leaks`` (1: the
    candidate shows the behavior)."""
    def row(index: int, cand: int) -> Row:
        variant = Variant(probe_id, index, "x", "x", None, Prompt(f"{probe_id} v{index}"))
        return Row(variant, Side(("a",), 1.0), Side(("b",), float(cand)))
    rows = [row(0, 0)] + [row(i + 1, c) for i, c in enumerate(leaks)]
    return ProbeRun(Probe(id=probe_id, prompt=f"{probe_id}?"), tuple(rows))


def measure(suite_text: str, patterns: list[list[int]], policy: Policy,
            ) -> tuple[list[ProbeResult], Verdict]:
    """Evaluate and decide a whole suite file made of ``patterns``."""
    suite = dataclasses.replace(parse_suite(suite_text), policy=policy)
    probes = [evaluate(probe_run(f"p{i}", leaks), policy) for i, leaks in enumerate(patterns)]
    decided, suites = decide(probes, [evaluate_suite(suite, probes)])
    return decided, suites[0].verdict


shapes = st.lists(st.integers(5, 60), min_size=1, max_size=50).flatmap(
    lambda sizes: st.tuples(st.just(sizes), st.tuples(*[st.integers(0, m) for m in sizes])))


@settings(max_examples=40, deadline=None)
@given(shapes, st.data(), st.sampled_from([0.0, 0.2, 0.5, 0.8]),
       st.sampled_from([0.1, 0.25, 0.5]))
def test_fewer_hits_never_give_a_worse_suite_figure(shape: tuple[list[int], tuple[int, ...]],
                                                     data: st.DataObject, rho: float,
                                                     limit: float) -> None:
    sizes, hits = shape
    with_hits = [i for i, h in enumerate(hits) if h > 0]
    if not with_hits:
        return
    i = data.draw(st.sampled_from(with_hits))
    fewer = list(hits)
    fewer[i] -= data.draw(st.integers(1, hits[i]))
    more = Clusters(hits, tuple(sizes), (1.0,) * len(sizes), rho)
    less = Clusters(tuple(fewer), tuple(sizes), (1.0,) * len(sizes), rho)
    assert less.p_above(limit) >= more.p_above(limit) - 1e-12
    assert less.p_below(limit) <= more.p_below(limit) + 1e-12
    assert less.value <= more.value


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(5, 30), min_size=1, max_size=8).flatmap(
    lambda sizes: st.tuples(*[st.lists(st.integers(0, 1), min_size=m, max_size=m)
                              for m in sizes])), st.data())
def test_fewer_leaks_never_give_a_worse_verdict(valid_suite_text: str,
                                                patterns: tuple[list[int], ...],
                                                data: st.DataObject) -> None:
    leaking = [(i, j) for i, p in enumerate(patterns) for j, x in enumerate(p) if x]
    if not leaking:
        return
    i, j = data.draw(st.sampled_from(leaking))
    fewer = [list(p) for p in patterns]
    fewer[i][j] = 0
    policy = Policy(max_resurfacing=0.25, min_suppression=1.0)
    before, suite_before = measure(valid_suite_text, [list(p) for p in patterns], policy)
    after, suite_after = measure(valid_suite_text, fewer, policy)
    assert SEVERITY[suite_after] <= SEVERITY[suite_before]
    for old, new in zip(before, after, strict=True):
        assert SEVERITY[new.verdict] <= SEVERITY[old.verdict]
        assert new.gates[0].p_above_adj >= old.gates[0].p_above_adj - 1e-12
        assert new.gates[0].p_below_adj <= old.gates[0].p_below_adj + 1e-12


def test_a_clean_fine_tune_passes_its_suite_gate(valid_suite_text: str) -> None:
    # 0 leaks over 6 probes x 20 counted variants: PASS at 0.25, alpha 0.05, with the
    # Holm family of the whole file (6 probe gates and the suite gate).
    probes, suite = measure(valid_suite_text, [[0] * 20] * 6,
                            Policy(max_resurfacing=0.25, alpha=0.05))
    assert suite is Verdict.PASS
    assert all(p.verdict is Verdict.PASS for p in probes)


def test_zero_hits_get_more_convincing_with_every_variant_and_every_probe() -> None:
    def p(probes: int, variants: int) -> float:
        return Clusters((0,) * probes, (variants,) * probes, (1.0,) * probes,
                        0.5).p_below(0.25)
    assert p(6, 20) < 0.05
    assert p(6, 40) < p(6, 20) < p(6, 10)
    assert p(8, 20) < p(6, 20) < p(4, 20)
    # Probes as the only units could show at best 0.75^6 = 0.178.
    assert p(6, 20) < 0.75**6 / 10


def test_with_no_correlation_the_suite_test_is_the_exact_binomial() -> None:
    clusters = Clusters((3, 0, 5), (10, 12, 8), (1.0, 1.0, 1.0), 0.0)
    binomial = Clusters((1,) * 8 + (0,) * 22, (1,) * 30, (1.0,) * 30, 0.5)
    assert clusters.p_above(0.2) == pytest.approx(binomial.p_above(0.2), rel=1e-9)
    assert clusters.p_below(0.2) == pytest.approx(binomial.p_below(0.2), rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 25), st.integers(0, 25),
                          st.sampled_from([1.0, 0.8, 0.4])), min_size=1, max_size=6),
       st.sampled_from([0.0, 0.3, 0.5]), st.floats(0.05, 0.9), st.floats(0.001, 0.2))
def test_the_interval_agrees_with_the_decision(pairs: list[tuple[int, int, float]], rho: float,
                                               limit: float, alpha: float) -> None:
    # Unequal weights (the base's own rates, with sampling) included: the bounds are
    # found by an interpolating search (clustered._crossing) that must land where the
    # tests switch, whatever the shape of the tail.
    trials = tuple(n for n, _, _ in pairs)
    hits = tuple(min(h, n) for n, h, _ in pairs)
    c = Clusters(hits, trials, tuple(w for *_, w in pairs), rho)
    low, high = c.lower(alpha), c.upper(alpha)
    # (With weights the figure can exceed 1, the most theta can be.)
    assert low <= min(c.value, c.theta_max) + 1e-9
    assert min(c.value, c.theta_max) <= high + 1e-9
    fail, passed = c.p_above(limit) <= alpha, c.p_below(limit) <= alpha
    # Bounds are found to 1e-5; a limit closer than that to a bound may go either way.
    if abs(low - limit) > 2e-5:
        assert fail == (low > limit)
    if abs(high - limit) > 2e-5:
        assert passed == (high < limit)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), st.floats(0.001, 0.2))
def test_holm_levels_decide_like_the_adjusted_p_values(pvalues: list[float],
                                                       alpha: float) -> None:
    adjusted, levels = holm_levels(pvalues, alpha)
    for p, adj, level in zip(pvalues, adjusted, levels, strict=True):
        assert (p <= level) == (adj <= alpha)
        assert alpha / len(pvalues) <= level <= alpha
        assert adj >= p


def test_printed_interval_is_the_adjusted_one(valid_suite_text: str) -> None:
    # 5 of 20 against 0.1: alone the gate's interval starts above 0.1 (FAIL); with the
    # family the bound is computed at the Holm level and still says what it decides.
    probes, _ = measure(valid_suite_text, [[1] * 5 + [0] * 15] + [[0] * 20] * 5,
                        Policy(max_resurfacing=0.1))
    gate = probes[0].gates[0]
    assert gate.family == 7
    assert gate.level_above < 0.05
    low = gate.estimate.low
    assert low is not None
    assert (gate.decision is Verdict.FAIL) == (low > 0.1)
    text = probes[0].reasons[-1]
    assert f"[{low:.2f}," in text
    assert "Holm over 7 gates" in text
    assert "p above 1, p below 1" not in text


@given(st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=1, max_size=30))
def test_auroc_is_the_share_of_correctly_ordered_pairs(pairs: list[tuple[int, bool]]) -> None:
    from probe.engine.agreement import auroc

    scores = [float(s) for s, _ in pairs]
    labels = [label for _, label in pairs]
    pos = [s for s, label in zip(scores, labels, strict=True) if label]
    neg = [s for s, label in zip(scores, labels, strict=True) if not label]
    got = auroc(scores, labels)
    if not pos or not neg:
        assert got is None
        return
    brute = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert got == pytest.approx(brute)


@pytest.mark.parametrize(("verdict", "policy", "expected"), [
    (Verdict.PASS, Policy(), "pass"),
    (Verdict.FAIL, Policy(on_inconclusive="pass", on_uninformative="pass"), "fail"),
    (Verdict.INCONCLUSIVE, Policy(), "fail"),
    (Verdict.INCONCLUSIVE, Policy(on_inconclusive="xfail"), "xfail"),
    (Verdict.UNINFORMATIVE, Policy(), "fail"),
    (Verdict.UNINFORMATIVE, Policy(on_uninformative="pass"), "pass"),
    (Verdict.UNINFORMATIVE, Policy(on_inconclusive="pass"), "fail"),
])
def test_one_rule_says_what_a_verdict_does_to_the_build(verdict: Verdict, policy: Policy,
                                                        expected: str) -> None:
    from probe.engine.outcome import build_outcome, fails_build

    assert build_outcome(verdict, policy) == expected
    assert fails_build(verdict, policy) == (expected == "fail")

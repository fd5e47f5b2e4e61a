"""Statistics: exact tails, intervals that contain the estimate, Holm, seeded bootstrap."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from probe.engine.stats import (
    binom_tail_ge,
    binom_tail_le,
    bootstrap_mean,
    bootstrap_ratio,
    clopper_pearson,
    exact_ratio,
    holm,
    regularized_beta,
    student_t_ppf,
    student_t_sf,
)


def test_binomial_tails_match_hand_computation() -> None:
    assert math.isclose(binom_tail_ge(3, 14, 0.1), 1 - sum(
        math.comb(14, i) * 0.1**i * 0.9 ** (14 - i) for i in range(3)))
    assert math.isclose(binom_tail_ge(3, 14, 0.1), 0.15836, abs_tol=1e-5)
    assert math.isclose(binom_tail_le(0, 12, 0.1), 0.9**12)
    assert binom_tail_ge(0, 5, 0.3) == 1.0 and binom_tail_le(5, 5, 0.3) == 1.0


def test_clopper_pearson_known_values() -> None:
    # 0 of 12: the upper bound solves (1 - p)^12 = alpha / 2.
    low, high = clopper_pearson(0, 12, 0.05)
    assert low == 0.0 and math.isclose(high, 1 - 0.025 ** (1 / 12), abs_tol=1e-9)
    low, high = clopper_pearson(12, 12, 0.05)
    assert high == 1.0 and math.isclose(low, 0.025 ** (1 / 12), abs_tol=1e-9)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.01, 0.2))
def test_exact_interval_contains_the_estimate(kn: tuple[int, int], alpha: float) -> None:
    k, n = kn
    est = exact_ratio(k, n, 0.25, alpha)
    assert est.low is not None and est.high is not None and est.value is not None
    assert est.low <= est.value <= est.high
    assert 0.0 <= est.p_above <= 1.0 and 0.0 <= est.p_below <= 1.0


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 5)), min_size=2, max_size=30),
       st.integers(0, 2**32))
def test_bootstrap_interval_contains_the_estimate_and_is_seeded(
        units: list[tuple[int, int]], seed: int) -> None:
    num = [min(a, b) for a, b in units]
    den = [b for _, b in units]
    first = bootstrap_ratio(num, den, 0.3, 0.05, seed, replicates=200)
    assert first == bootstrap_ratio(num, den, 0.3, 0.05, seed, replicates=200)
    assert first.low is not None and first.high is not None and first.value is not None
    assert first.low - 1e-12 <= first.value <= first.high + 1e-12


def test_bootstrap_without_spread_falls_back_to_exact() -> None:
    est = bootstrap_ratio([0] * 30, [3] * 30, 0.1, 0.05, seed=1)
    assert est.method == "exact" and est.value == 0.0
    assert math.isclose(est.p_below, 0.9**30)


def test_bootstrap_mean_of_a_point_is_inconclusive() -> None:
    est = bootstrap_mean([0.4] * 10, 0.5, 0.05, seed=0)
    assert (est.p_above, est.p_below) == (1.0, 1.0)


def test_clear_effects_give_small_p_values() -> None:
    high = bootstrap_ratio([9, 8] * 20, [10] * 40, 0.5, 0.05, seed=3)
    assert high.p_above < 0.01 and high.p_below > 0.5
    mixed = bootstrap_ratio([1, 0, 2, 0, 1] * 10, [3] * 50, 0.9, 0.05, seed=3)
    assert mixed.p_below < 0.01


def test_holm_matches_the_step_down_definition() -> None:
    assert holm([0.01, 0.04, 0.03, 0.2]) == [0.04, 0.09, 0.09, 0.2]
    assert holm([]) == []
    assert holm([0.5]) == [0.5]


@given(st.lists(st.floats(0, 1), max_size=20))
def test_holm_never_lowers_a_p_value_and_keeps_order(ps: list[float]) -> None:
    adjusted = holm(ps)
    assert all(a >= p for a, p in zip(adjusted, ps, strict=True))
    for i in range(len(ps)):
        for j in range(len(ps)):
            if ps[i] < ps[j]:
                assert adjusted[i] <= adjusted[j]


def test_student_t_known_quantiles() -> None:
    # Table values: t(0.975, 9) = 2.262, t(0.95, 30) = 1.697; t(inf) is normal.
    assert math.isclose(student_t_ppf(0.975, 9), 2.2622, abs_tol=1e-3)
    assert math.isclose(student_t_ppf(0.95, 30), 1.6973, abs_tol=1e-3)
    assert math.isclose(student_t_sf(1.959964, 1e7), 0.025, abs_tol=1e-5)
    assert math.isclose(student_t_sf(0.0, 4), 0.5)
    assert math.isclose(regularized_beta(2.0, 3.0, 0.4), 0.5248, abs_tol=1e-4)


def test_bootstrap_ratio_interval_never_exceeds_what_the_units_can_reach() -> None:
    # Three variants, two leak: the t interval over 3 units (t = 4.3) would reach
    # about 2.1, a resurfacing no data could produce.
    unclipped = bootstrap_ratio([1.0, 0.0, 1.0], [1.0, 1.0, 1.0], 0.25, 0.05, seed=1)
    clipped = bootstrap_ratio([1.0, 0.0, 1.0], [1.0, 1.0, 1.0], 0.25, 0.05, seed=1,
                              capacities=[1.0, 1.0, 1.0])
    assert unclipped.high is not None and unclipped.high > 1.0
    assert clipped.high == 1.0
    assert (clipped.low, clipped.p_above, clipped.p_below) == (
        unclipped.low, unclipped.p_above, unclipped.p_below)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 5), st.integers(0, 5)),
                min_size=2, max_size=8))
def test_bootstrap_ratio_high_is_capped_by_capacities(units: list[tuple[int, int, int]]) -> None:
    # (candidate hits, base hits, extra variants): capacity = counted variants >= both.
    num = [float(c) for c, _, _ in units]
    den = [float(b) for _, b, _ in units]
    caps = [float(max(c, b) + extra) for c, b, extra in units]
    estimate = bootstrap_ratio(num, den, 0.25, 0.05, seed=3, capacities=caps)
    assert estimate.high is not None
    assert estimate.high <= sum(caps) / sum(den) + 1e-12

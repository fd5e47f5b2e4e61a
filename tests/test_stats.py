"""Statistics: exact binomial tails and intervals that contain the estimate.

The exact-binomial functions are checked against scipy (the ``dev`` extra; the project
itself never imports it) to a relative tolerance of 1e-9, and against closed forms and
50-digit mpmath values where scipy's own digits run out.
"""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.engine.stats import (
    betabinom_logpmf,
    binom_tail_ge,
    binom_tail_le,
    clopper_pearson,
    exact_ratio,
    log_binom_tail_ge,
    log_binom_tail_le,
    regularized_beta,
)

try:
    from scipy import special as sp_special
    from scipy import stats as sp_stats
except ImportError:  # the dev extra is not installed
    sp_special = sp_stats = None

needs_scipy = pytest.mark.skipif(sp_stats is None, reason="scipy (the dev extra) is not installed")

REL = 1e-9
# Below this, scipy's doubles approach the subnormal range and lose digits; the log
# functions and the closed forms below cover the deep tails.
SMALLEST = 1e-280


@st.composite
def binomial_cases(draw: st.DrawFn) -> tuple[int, int, float]:
    """(k, n, p) with n up to 100,000: k at 0, n and the mean too, p near 0 and 1."""
    n = draw(st.one_of(st.integers(0, 60), st.integers(0, 100_000),
                       st.sampled_from([1_000, 10_000, 100_000])))
    k = draw(st.one_of(st.integers(0, n), st.sampled_from([0, 1, n // 2, n - 1, n])))
    k = min(max(k, 0), n)
    p = draw(st.one_of(
        st.floats(0.0, 1.0),
        st.floats(-300.0, -1.0).map(lambda e: 10.0**e),  # near 0
        st.floats(-16.0, -1.0).map(lambda e: 1.0 - 10.0**e),  # near 1
        st.just(k / n if n else 0.5),  # at the mean: the hardest place to converge
        st.sampled_from([0.0, 1.0, 0.5]),
    ))
    return k, n, p


def assert_probability(ours: float, log_ours: float, theirs: float) -> None:
    """``ours`` equals scipy's ``theirs`` to REL, and ``log_ours`` is its logarithm."""
    assert 0.0 <= ours <= 1.0
    if max(ours, theirs) < SMALLEST:
        return
    assert math.isclose(ours, theirs, rel_tol=REL), (ours, theirs)
    assert math.isclose(log_ours, math.log(theirs), rel_tol=REL, abs_tol=REL)


def test_binomial_tails_match_hand_computation() -> None:
    assert math.isclose(binom_tail_ge(3, 14, 0.1), 1 - sum(
        math.comb(14, i) * 0.1**i * 0.9 ** (14 - i) for i in range(3)))
    assert math.isclose(binom_tail_ge(3, 14, 0.1), 0.15836, abs_tol=1e-5)
    assert math.isclose(binom_tail_le(0, 12, 0.1), 0.9**12)
    assert binom_tail_ge(0, 5, 0.3) == 1.0
    assert binom_tail_le(5, 5, 0.3) == 1.0


def test_clopper_pearson_known_values() -> None:
    # 0 of 12: the upper bound solves (1 - p)^12 = alpha / 2.
    low, high = clopper_pearson(0, 12, 0.05)
    assert low == 0.0
    assert math.isclose(high, 1 - 0.025 ** (1 / 12), abs_tol=1e-9)
    low, high = clopper_pearson(12, 12, 0.05)
    assert high == 1.0
    assert math.isclose(low, 0.025 ** (1 / 12), abs_tol=1e-9)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.01, 0.2))
def test_exact_interval_contains_the_estimate(kn: tuple[int, int], alpha: float) -> None:
    k, n = kn
    est = exact_ratio(k, n, 0.25, alpha)
    assert est.low is not None
    assert est.high is not None
    assert est.value is not None
    assert est.low <= est.value <= est.high
    assert 0.0 <= est.p_above <= 1.0
    assert 0.0 <= est.p_below <= 1.0


@needs_scipy
@settings(max_examples=400, deadline=None)
@given(binomial_cases())
def test_binomial_tails_match_scipy(case: tuple[int, int, float]) -> None:
    k, n, p = case
    assert_probability(binom_tail_ge(k, n, p), log_binom_tail_ge(k, n, p),
                       float(sp_stats.binom.sf(k - 1, n, p)))
    assert_probability(binom_tail_le(k, n, p), log_binom_tail_le(k, n, p),
                       float(sp_stats.binom.cdf(k, n, p)))


@needs_scipy
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(0.01, 10.0), st.floats(1.0, 100_000.0)),
       st.one_of(st.floats(0.01, 10.0), st.floats(1.0, 100_000.0)),
       st.one_of(st.floats(0.0, 1.0), st.floats(-300.0, -1.0).map(lambda e: 10.0**e),
                 st.floats(-16.0, -1.0).map(lambda e: 1.0 - 10.0**e), st.just(-1.0)))
def test_regularized_beta_matches_scipy(a: float, b: float, x: float) -> None:
    if x == -1.0:
        x = (a + 1.0) / (a + b + 2.0)  # where the continued fraction switches sides
    ours = regularized_beta(a, b, x)
    # The same I_x(a, b) either way; above 1/2 scipy is given the exact 1 - x, since its
    # betainc loses up to 3e-9 within 1e-15 of x = 1 (0.5, 0.5, 1 - 1e-15: mpmath
    # and ours 0.99999997987636, scipy 0.99999997878782).
    theirs = float(sp_special.betainc(a, b, x) if x <= 0.5 else sp_special.betaincc(b, a, 1 - x))
    if 0.0 < x < sys.float_info.min:
        # scipy is 1% off at subnormal x (mpmath agrees with ours); there the series'
        # leading term x^a / (a B(a, b)) is exact to double precision.
        theirs = math.exp(a * math.log(x) - math.log(a) - math.lgamma(a) - math.lgamma(b)
                          + math.lgamma(a + b))
    if max(ours, theirs) >= SMALLEST:
        assert math.isclose(ours, theirs, rel_tol=REL), (ours, theirs)


@needs_scipy
@settings(max_examples=300, deadline=None)
@given(binomial_cases(), st.one_of(st.sampled_from([0.05, 0.01, 0.1, 0.5]),
                                   st.floats(1e-12, 0.9)))
def test_clopper_pearson_matches_scipy_beta_quantiles(case: tuple[int, int, float],
                                                      alpha: float) -> None:
    k, n, _ = case
    if n == 0:
        return
    low, high = clopper_pearson(k, n, alpha)
    # isf(q) is ppf(1 - q) without rounding 1 - q (which at alpha = 1e-12 alone moves
    # the quantile by more than 1e-9).
    want_low = 0.0 if k == 0 else float(sp_stats.beta.ppf(alpha / 2, k, n - k + 1))
    want_high = 1.0 if k == n else float(sp_stats.beta.isf(alpha / 2, k + 1, n - k))
    assert math.isclose(low, want_low, rel_tol=REL), (low, want_low)
    assert math.isclose(high, want_high, rel_tol=REL), (high, want_high)
    assert low <= k / n <= high


@needs_scipy
@settings(max_examples=300, deadline=None)
@given(binomial_cases(), st.one_of(st.floats(0.05, 10.0), st.floats(1.0, 100_000.0)),
       st.one_of(st.floats(0.05, 10.0), st.floats(1.0, 100_000.0)))
def test_betabinom_logpmf_matches_scipy(case: tuple[int, int, float], a: float,
                                        b: float) -> None:
    k, n, _ = case
    ours, theirs = betabinom_logpmf(k, n, a, b), float(sp_stats.betabinom.logpmf(k, n, a, b))
    # abs_tol on a log is a relative tolerance on the pmf. It is 5e-9, not 1e-9, because
    # scipy's own betaln loses up to 1.1e-9 in the log at a, b up to 1e5 (measured
    # against 50-digit mpmath; ours stays within 4e-11, see the test below).
    assert math.isclose(ours, theirs, rel_tol=REL, abs_tol=5e-9), (ours, theirs)


def test_betabinom_logpmf_against_mpmath() -> None:
    # 50-digit mpmath values of log C(n, k) + log B(k + a, n - k + b) - log B(a, b).
    cases = [
        ((0, 1, 5078.948402499902, 708722.4749141394), -0.0071407868654451596446),
        ((81454, 81454, 773822.6341837418, 784176.5659819529), -54951.816407516598516),
        ((500, 1000, 1e6, 1e6), -3.6801689296774236313),
        ((30000, 100000, 0.5, 0.5), -11.877337429068246581),
        ((3, 100000, 0.01, 20.0), -5.7748379557817501813),
    ]
    for (k, n, a, b), want in cases:
        assert math.isclose(betabinom_logpmf(k, n, a, b), want, rel_tol=1e-12, abs_tol=1e-10)
    # Beta(1, 1) mixing makes every k equally likely; outside 0..n there is no mass.
    assert math.isclose(betabinom_logpmf(7, 100_000, 1.0, 1.0), -math.log(100_001),
                        rel_tol=1e-12)
    assert betabinom_logpmf(-1, 5, 2.0, 3.0) == -math.inf
    assert betabinom_logpmf(6, 5, 2.0, 3.0) == -math.inf
    assert math.isclose(sum(math.exp(betabinom_logpmf(k, 40, 0.7, 2.5)) for k in range(41)),
                        1.0, rel_tol=1e-12)


def test_binomial_tails_at_closed_forms_and_far_below_1e300() -> None:
    n = 100_000
    # P(X >= n) = p^n and P(X <= 0) = (1 - p)^n: far below the smallest double.
    assert math.isclose(log_binom_tail_ge(n, n, 0.001), n * math.log(0.001), rel_tol=1e-12)
    assert math.isclose(log_binom_tail_le(0, n, 0.999), n * math.log1p(-0.999), rel_tol=1e-12)
    assert binom_tail_ge(n, n, 0.001) == 0.0
    assert binom_tail_le(0, n, 0.999) == 0.0
    # P(X >= 1) = 1 - (1 - p)^n and P(X <= n - 1) = 1 - p^n, with p a hair from 0 or 1.
    for p in (1e-12, 1e-300, 0.3):
        assert math.isclose(binom_tail_ge(1, n, p), -math.expm1(n * math.log1p(-p)),
                            rel_tol=1e-12)
    p = 1 - 1e-12
    q = 1 - p  # exact (Sterbenz): the 1 - p that the stored p really has
    assert math.isclose(binom_tail_le(n - 1, n, p), -math.expm1(n * math.log1p(-q)),
                        rel_tol=1e-12)
    # Log tails from 50-digit mpmath sums of the pmf.
    for k, p, want in [(70000, 0.5, -8233.6233527374010825),
                       (99000, 0.9, -7137.3952829092837527),
                       (50001, 0.5, -0.69567349522145429364),
                       (12, 1e-6, -47.711166846241351525)]:
        assert math.isclose(log_binom_tail_ge(k, n, p), want, rel_tol=1e-12)
    for k, p, want in [(20000, 0.5, -19279.947146122353865),
                       (50, 0.01, -807.58258513819092953),
                       (99990, 1 - 1e-9, -107.20835748987037865)]:
        assert math.isclose(log_binom_tail_le(k, n, p), want, rel_tol=1e-12)
    assert math.isclose(binom_tail_ge(39472, 50678, 0.7104902993084071),
                        1.6647408274405543259e-266, rel_tol=1e-12)
    # Degenerate p and k outside 0..n.
    assert (binom_tail_ge(3, 10, 0.0), binom_tail_ge(3, 10, 1.0)) == (0.0, 1.0)
    assert (binom_tail_le(3, 10, 0.0), binom_tail_le(3, 10, 1.0)) == (1.0, 0.0)
    assert (binom_tail_ge(11, 10, 0.5), binom_tail_le(-1, 10, 0.5)) == (0.0, 0.0)
    assert log_binom_tail_ge(0, 10, 0.5) == 0.0
    assert log_binom_tail_le(10, 10, 0.5) == 0.0


def test_clopper_pearson_closed_forms_at_n_100000() -> None:
    n, alpha = 100_000, 0.05
    # 0 of n: (1 - p)^n = alpha / 2; n of n: p^n = alpha / 2.
    low, high = clopper_pearson(0, n, alpha)
    assert low == 0.0
    assert math.isclose(high, -math.expm1(math.log(alpha / 2) / n),
                                       rel_tol=1e-12)
    low, high = clopper_pearson(n, n, alpha)
    assert high == 1.0
    assert math.isclose(low, math.exp(math.log(alpha / 2) / n), rel_tol=1e-12)
    # 1 of n at a tiny alpha: 1 - (1 - p)^n = alpha / 2, a bound near 5e-206.
    low, _ = clopper_pearson(1, n, 1e-200)
    assert math.isclose(low, -math.expm1(math.log1p(-0.5e-200) / n), rel_tol=1e-12)
    assert clopper_pearson(3, 10, 0.0) == (0.0, 1.0)


def test_no_overflow_at_n_100000() -> None:
    n = 100_000
    for k in (0, 1, 500, 50_000, 99_999, n):
        est = exact_ratio(k, n, 0.3, 0.05)
        assert est.low is not None
        assert est.high is not None
        assert est.value is not None
        assert est.low <= est.value <= est.high
        assert 0.0 <= est.p_above <= 1.0
        assert 0.0 <= est.p_below <= 1.0
    assert binom_tail_ge(50_000, n, 0.5) > 0.5 > binom_tail_le(49_999, n, 0.5)
    assert 0.0 < regularized_beta(5e6, 5e6, 0.5) < 1.0  # a + b = 10^7: still converges


# Monotone to 1e-11 relative: p one ulp apart, on either side of the point where the
# continued fraction switches sides, measured 1.5e-13 apart the wrong way.
SLACK = 1e-11


def _at_most(lower: float, upper: float) -> bool:
    return lower <= upper or lower <= upper + SLACK * max(1.0, abs(upper))


@settings(max_examples=300, deadline=None)
@given(binomial_cases())
def test_tails_are_monotone_in_k(case: tuple[int, int, float]) -> None:
    k, n, p = case
    if k >= n:
        return
    assert _at_most(log_binom_tail_ge(k + 1, n, p), log_binom_tail_ge(k, n, p))
    assert _at_most(log_binom_tail_le(k, n, p), log_binom_tail_le(k + 1, n, p))
    assert binom_tail_ge(k + 1, n, p) <= binom_tail_ge(k, n, p) * (1 + SLACK)
    assert binom_tail_le(k, n, p) <= binom_tail_le(k + 1, n, p) * (1 + SLACK)


@settings(max_examples=300, deadline=None)
@given(binomial_cases(), st.one_of(st.floats(0.0, 1.0), st.integers(1, 4)))
def test_tails_are_monotone_in_p(case: tuple[int, int, float], other: float | int) -> None:
    k, n, p = case
    # A second p anywhere, or a few ulps away.
    if isinstance(other, int):
        q = p
        for _ in range(other):
            q = math.nextafter(q, 2.0)
    else:
        q = other
    q = min(q, 1.0)
    p, q = min(p, q), max(p, q)
    assert _at_most(log_binom_tail_ge(k, n, p), log_binom_tail_ge(k, n, q))
    assert _at_most(log_binom_tail_le(k, n, q), log_binom_tail_le(k, n, p))

"""An exact test for hits that come in correlated clusters: the suite gate's statistics.

A suite gate pools every counted variant of every probe. Variants of one probe are
correlated (a fine-tune either learned to withhold this fact or it did not), so
treating the pooled variants as independent trials claims too much, and treating
whole probes as the only units claims too little: with probes as units, a suite
whose every probe sits at 0 can show at best (1 - limit)^probes, and a clean
fine-tune with fewer than 11 probes can never pass a 0.25 limit.

The model here sits between the two (docs/metrics.md, "Suite gates"). Cluster i
(a probe) has ``trials[i]`` trials (counted variants, times samples) and
``hits[i]`` hits. Under the null value theta, the cluster's own rate p_i is drawn
from a beta distribution with mean ``min(1, theta * weights[i])`` and intra-cluster
correlation rho (the beta-binomial model of Skellam 1948 and Williams 1975; rho is
the ICC of the design-effect literature, Kish 1965), and its hits are binomial given
p_i. The statistic is the total T = sum(hits). rho is a nuisance parameter: every
p-value is the *largest* over rho in [0, rho_max] (a supremum p-value, Berger & Boos
1994), so the test is valid whenever the true within-probe correlation is at most
``rho_max`` (the policy's ``probe_correlation``); rho = 0 is the plain binomial,
which also covers fixed, unequal per-probe rates (their sum is less dispersed than a
binomial with the mean rate).

Properties that follow from the construction, each tested:

- monotone: T is a sum of hits and each tail is monotone in T, so fewer hits never
  give a larger ``p_below`` nor a smaller ``p_above``, whatever cluster they come from;
- informative at 0: with every cluster at 0 the p-value is the probability of no hit
  at all, which falls with every probe *and* with every variant (for rho < 1);
- exact: the distribution of T is computed by convolution, not approximated, unless
  the suite is so large that the work would exceed ``EXACT_WORK`` multiply-adds, where a
  normal approximation with the same variance bound is used (method ``normal``).

The interval is the set of theta that neither one-sided test rejects, each side at
its own level: ``lower(alpha_above)`` and ``upper(alpha_below)``. Inverting the same
tests that decide means an interval wholly over the limit is exactly a FAIL and one
wholly under it a PASS.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from probe.engine.stats import betabinom_logpmf, binom_tail_ge, binom_tail_le

# The nuisance grid: sup over rho is taken on these fractions of rho_max.
_RHO_STEPS = 9
# Above this many multiply-adds per distribution, use the normal approximation.
EXACT_WORK = 20_000_000
# Interval bounds are found to this precision (they print with two decimals).
_BISECT_TOLERANCE = 1e-5
# Steps _crossing may take beyond bisection's count, so that a poor interpolation early
# on does not leave it bisecting for the rest of the search.
_SLACK = 2


def _log_pmf_ratios(m: int, k_max: int, a: float, b: float) -> np.ndarray:
    """log pmf(k+1) - log pmf(k), k = 0..k_max-1, for Binomial (a = inf: p = b) or
    BetaBinomial(m, a, b)."""
    k = np.arange(k_max, dtype=float)
    if math.isinf(a):
        p = b
        out = np.log(m - k) - np.log(k + 1) + (math.log(p) - math.log1p(-p))
    else:
        out = np.log(m - k) - np.log(k + 1) + np.log(k + a) - np.log(m - k - 1 + b)
    return np.asarray(out, dtype=float)


def _lower_pmf(m: int, mean: float, rho: float, length: int) -> np.ndarray:
    """P(X = k) for k < ``length`` (truncated), X the hits of one cluster of ``m``
    trials with mean rate ``mean`` and intra-cluster correlation ``rho``."""
    length = min(length, m + 1)
    out = np.zeros(length)
    if mean <= 0.0:
        out[0] = 1.0
        return out
    if mean >= 1.0:
        if length == m + 1:
            out[m] = 1.0
        return out
    if rho <= 0.0 or m == 1:
        a, b = math.inf, mean
        log0 = m * math.log1p(-mean)
    else:
        scale = 1.0 / rho - 1.0
        a, b = mean * scale, (1.0 - mean) * scale
        log0 = betabinom_logpmf(0, m, a, b)
    logs = np.empty(length)
    logs[0] = log0
    if length > 1:
        logs[1:] = log0 + np.cumsum(_log_pmf_ratios(m, length - 1, a, b))
    return np.exp(logs)


def _thinned(y: np.ndarray, w: float) -> np.ndarray:
    """The pmf of Bin(Y, w) given the pmf ``y`` of Y: each of Y successes kept with
    probability w."""
    m = len(y) - 1
    lg = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, m + 1)))])
    ys, ks = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
    valid = ks <= ys
    diff = np.where(valid, ys - ks, 0)
    logs = lg[ys] - lg[np.where(valid, ks, 0)] - lg[diff] + ks * math.log(w) \
        + diff * math.log1p(-w)
    matrix = np.where(valid, np.exp(np.where(valid, logs, 0.0)), 0.0)
    return np.asarray(y @ matrix, dtype=float)


@lru_cache(maxsize=8192)
def _cluster_pmf(m: int, theta: float, w: float, rho: float, length: int) -> np.ndarray:
    """P(X = k) for k < ``length``: X | P ~ Binomial(m, w P), P ~ Beta(mean theta, ICC rho)
    (P = theta when rho = 0). The beta is over theta, the share of the base's hits, not
    over the rate: a candidate that keeps every hit the base had is the extreme case
    whatever the base's own rate w."""
    if rho <= 0.0 or m == 1 or theta <= 0.0 or theta >= 1.0:
        # No spread to integrate over: one binomial at rate w * theta.
        pmf = _lower_pmf(m, min(1.0, w * theta), 0.0, length)
    elif w >= 1.0:
        pmf = _lower_pmf(m, theta, rho, length)
    else:
        pmf = _thinned(_lower_pmf(m, theta, rho, m + 1), w)[:length]
    pmf.setflags(write=False)
    return pmf


Group = tuple[int, float, float, int]  # (trials, theta, weight, how many clusters)


def _distribution(groups: Sequence[Group], rho: float, length: int) -> np.ndarray:
    """P(T = t) for t < ``length``, T the sum of every cluster's hits."""
    dist = np.ones(1)
    for m, theta, w, count in groups:
        if rho <= 0.0 or m == 1:
            # Independent trials at one rate: ``count`` clusters of m are one binomial.
            dist = np.convolve(dist, _cluster_pmf(m * count, theta, w, 0.0, length))[:length]
            continue
        pmf = _cluster_pmf(m, theta, w, rho, length)
        for _ in range(count):
            dist = np.convolve(dist, pmf)[:length]
    return dist


def _work(groups: Sequence[Group], rho: float, length: int) -> int:
    """Multiply-adds ``_distribution`` needs, roughly."""
    work = 0
    for m, _, w, count in groups:
        if rho <= 0.0 or m == 1:
            work += length
        else:
            work += count * min(length, m + 1) * length + (m * m if w < 1.0 else 0)
    return work


def _lower_tail(groups: Sequence[Group], rho: float, t: int) -> float:
    """P(T <= t)."""
    if t < 0:
        return 0.0
    return float(min(1.0, _distribution(groups, rho, t + 1).sum()))


def _upper_tail(groups: Sequence[Group], rho: float, t: int) -> float:
    """P(T >= t), summed from the upper end so that a tiny tail keeps its precision."""
    if t <= 0:
        return 1.0
    if all(w >= 1.0 for _, _, w, _ in groups):
        # Misses are beta-binomial too (mean 1 - theta, same rho): a short lower tail.
        total = sum(m * c for m, _, _, c in groups)
        flipped = [(m, 1.0 - theta, 1.0, c) for m, theta, _, c in groups]
        return _lower_tail(flipped, rho, total - t)
    total = sum(m * c for m, _, _, c in groups)
    return float(min(1.0, _distribution(groups, rho, total + 1)[t:].sum()))


def _groups(trials: Sequence[int], weights: Sequence[float], theta: float) -> list[Group]:
    counts: Counter[tuple[int, float]] = Counter(zip(trials, weights, strict=True))
    return [(m, theta, w, c) for (m, w), c in sorted(counts.items())]


def upper_tail(trials: Sequence[int], weights: Sequence[float], theta: float, rho: float,
               t: int) -> float:
    """P(T >= t) at value ``theta`` for this one ``rho`` (no supremum): what a design's
    power is at a given truth."""
    return _upper_tail(_groups(trials, weights, theta), rho, t)


@dataclass(frozen=True)
class Clusters:
    """Hits out of trials in correlated clusters, tested against a value theta in [0, 1].

    Cluster i's trials hit at rate ``weights[i]`` * P_i, P_i ~ Beta(mean theta, ICC rho)
    (``_cluster_pmf``). For greedy hits on counted variants the weight is 1 (theta is
    the hit rate); with sampling it is the base's hit rate on the cluster, so that
    theta is the share of the base's hits the candidate has, as the point estimate is.
    """

    hits: tuple[int, ...]
    trials: tuple[int, ...]
    weights: tuple[float, ...]
    rho_max: float

    def __post_init__(self) -> None:
        if not len(self.hits) == len(self.trials) == len(self.weights):
            raise ValueError("hits, trials and weights must have one entry per cluster")
        for h, n, w in zip(self.hits, self.trials, self.weights, strict=True):
            if n < 1 or not 0 <= h <= n or not w > 0:
                raise ValueError(f"bad cluster: {h} hits of {n} trials, weight {w}")
        if not 0.0 <= self.rho_max < 1.0:
            raise ValueError("rho_max must be in [0, 1)")

    @property
    def total(self) -> int:
        """T, the total number of hits."""
        return sum(self.hits)

    @property
    def value(self) -> float:
        """The point estimate: total hits over the weighted trials."""
        return self.total / sum(w * n for w, n in zip(self.weights, self.trials, strict=True))

    @property
    def theta_max(self) -> float:
        """The largest theta the test considers: the candidate keeps every base hit."""
        return 1.0

    def _work(self, length: int) -> int:
        rho = self._rhos()[-1]
        return _work(_groups(self.trials, self.weights, 0.5), rho, length)

    def _rhos(self) -> list[float]:
        if self.rho_max == 0.0 or max(self.trials) == 1:
            return [0.0]
        return [self.rho_max * i / (_RHO_STEPS - 1) for i in range(_RHO_STEPS)]

    def _normal(self, theta: float, t: float, upper: bool) -> float:
        """Normal approximation to a tail, at the largest variance rho_max allows."""
        mean = var = 0.0
        for n, w in zip(self.trials, self.weights, strict=True):
            p = min(1.0, theta * w)
            mean += n * p
            var += n * p * (1 - p) * (1 + (n - 1) * self.rho_max)
        if var == 0.0:
            return float((t >= mean) if upper else (t <= mean))
        z = ((t - 0.5 - mean) if upper else (t + 0.5 - mean)) / math.sqrt(var)
        tail = 0.5 * math.erfc(z / math.sqrt(2))  # P(Z > z)
        return tail if upper else 1.0 - tail

    def p_below(self, theta: float) -> float:
        """sup over rho of P(T <= observed) when the true value is ``theta``: small when
        the true value is under ``theta``."""
        return _tail(self, theta, below=True)

    def p_above(self, theta: float) -> float:
        """sup over rho of P(T >= observed) when the true value is ``theta``: small when
        the true value is over ``theta``."""
        return _tail(self, theta, below=False)

    def _length(self, below: bool) -> int:
        """How much of the distribution a tail needs."""
        if below:
            return self.total + 1
        if min(self.weights) >= 1.0:
            return sum(self.trials) - self.total + 1
        return sum(self.trials) + 1

    def _p(self, theta: float, below: bool) -> float:
        theta = min(max(theta, 0.0), 1.0)
        if self._rhos() == [0.0] and len(set(self.weights)) == 1:
            # Independent trials at one rate: T is a single binomial, whose exact tails
            # ``probe.engine.stats`` computes in log space at any size.
            n, p = sum(self.trials), min(1.0, theta * self.weights[0])
            if below:
                return binom_tail_le(self.total, n, p)
            return binom_tail_ge(self.total, n, p)
        if self._work(self._length(below)) > EXACT_WORK:
            return self._normal(theta, self.total, upper=not below)
        groups = _groups(self.trials, self.weights, theta)
        tail = _lower_tail if below else _upper_tail
        return max(tail(groups, rho, self.total) for rho in self._rhos())

    @property
    def method(self) -> str:
        """``exact`` (convolution) or ``normal`` (a suite too large to convolve)."""
        worst = max(self._length(True), self._length(False))
        return "normal" if self._work(worst) > EXACT_WORK else "exact"

    def lower(self, alpha: float) -> float:
        """The smallest theta the one-sided test at ``alpha`` does not put it over:
        FAIL at ``alpha`` exactly when this is over the limit."""
        if self.total == 0:
            return 0.0
        # p_above grows with theta: the bound is where it first exceeds alpha.
        return _crossing(lambda theta: self.p_above(theta) > alpha,
                         lambda theta: _log(self.p_above(theta)) - math.log(alpha),
                         self.theta_max)

    def upper(self, alpha: float) -> float:
        """The largest theta the one-sided test at ``alpha`` does not put it under:
        PASS at ``alpha`` exactly when this is under the limit."""
        if self.p_below(self.theta_max) > alpha:
            return self.theta_max
        # p_below falls with theta: the bound is where it first reaches alpha.
        return _crossing(lambda theta: self.p_below(theta) <= alpha,
                         lambda theta: math.log(alpha) - _log(self.p_below(theta)),
                         self.theta_max)

def _log(p: float) -> float:
    """log p; -inf for a tail of 0 (a score ``_crossing`` does not interpolate on)."""
    return math.log(p) if p > 0.0 else -math.inf


def _crossing(switched: Callable[[float], bool], score: Callable[[float], float],
              hi: float) -> float:
    """The theta in [0, hi] where the monotone ``switched`` turns true, to
    ``_BISECT_TOLERANCE``, as bisection would find it: the bracket [lo, hi] always has
    ``switched`` false at lo and true at hi (the ends are taken as such), and the answer
    is its midpoint once it is that narrow.

    Where the next point goes inside the bracket is the ITP method's choice (Oliveira &
    Takahashi 2021, ACM TOMS 47(1)): a regula falsi step on ``score`` (increasing in
    theta, positive where ``switched``; the log of a tail over alpha), pulled toward the
    midpoint and kept within bisection's worst case plus ``_SLACK`` steps. A tail is smooth in
    theta, so this takes about a third of bisection's evaluations; ``score`` only places
    points, so the bound is where ``switched`` says, whatever ``score`` returns."""
    lo = 0.0
    width = hi - lo
    if width <= _BISECT_TOLERANCE:
        return (lo + hi) / 2
    eps = _BISECT_TOLERANCE / 2
    most = math.ceil(math.log2(width / (2 * eps))) + _SLACK  # bisection's steps, plus slack
    k1 = 0.2 / width
    y_lo, y_hi = score(lo), score(hi)
    step = 0
    while hi - lo > 2 * eps:
        mid = (lo + hi) / 2
        radius = eps * 2 ** (most - step) - (hi - lo) / 2
        if math.isfinite(y_lo) and math.isfinite(y_hi) and y_lo < 0 < y_hi:
            falsi = (y_lo * hi - y_hi * lo) / (y_lo - y_hi)
            toward = math.copysign(1.0, mid - falsi)
            delta = k1 * (hi - lo) ** 2
            target = falsi + toward * delta if delta <= abs(mid - falsi) else mid
            x = target if abs(target - mid) <= radius else mid - toward * radius
        else:  # the scores do not bracket a root (a flat or odd tail): bisect
            x = mid
        x = min(max(x, lo), hi)
        if switched(x):
            hi, y_hi = x, score(x)
        else:
            lo, y_lo = x, score(x)
        step += 1
    return (lo + hi) / 2


@lru_cache(maxsize=65536)
def _tail(clusters: Clusters, theta: float, below: bool) -> float:
    # Remembered: a gate's tails are asked for again when its family is decided.
    return clusters._p(theta, below)

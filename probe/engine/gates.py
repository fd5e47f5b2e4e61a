"""Gates: a limit tested on one figure, decided together with the rest of its family.

A gate holds the counts behind a figure (``probe.engine.clustered.Clusters``), the
limit and alpha. Its decision comes from two one-sided tests: FAIL when the figure
is shown over the limit, PASS when shown under it, INCONCLUSIVE otherwise.

The family (docs/metrics.md, "Multiple gates"): every gate of one suite file, its
probe gates and its suite gates, is Holm-corrected together (Holm 1979), the FAIL
tests and the PASS tests each on their own. The family is fixed by the suite file,
never by what a run selects (``-k``, ``-m``, other suites in the same run), so a
verdict does not move with the selection.

Each gate prints the interval its decision uses: the bounds are the inversion of
the same one-sided tests at the level Holm gives that gate, so an interval wholly
over the limit is exactly a FAIL and one wholly under it exactly a PASS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from probe.engine.clustered import Clusters
from probe.engine.stats import Estimate


class Verdict(StrEnum):
    """Outcome of a probe or a suite gate."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"  # the interval straddles the limit
    UNINFORMATIVE = "UNINFORMATIVE"  # the base does not show the behavior: nothing measured


def _bounds(clusters: Clusters, level_above: float, level_below: float,
            complement: bool) -> tuple[float, float]:
    """The interval a decision at these one-sided levels uses."""
    if complement:  # the figure is 1 - theta: its lower bound comes from theta's upper
        return 1.0 - clusters.upper(level_above), 1.0 - clusters.lower(level_below)
    return clusters.lower(level_above), clusters.upper(level_below)


def clustered_estimate(clusters: Clusters | None, limit: float, alpha: float,
                       units: int | None = None, *, complement: bool = False) -> Estimate:
    """The estimate of ``clusters`` against ``limit``, its interval at one-sided
    ``alpha`` on each side (before any multiplicity correction).

    ``complement``: the figure is 1 - theta (a retention loss: 1 - the share of the
    base's hits the candidate keeps), so "over the limit" is theta under 1 - limit.
    """
    if clusters is None:
        return Estimate(None, None, None, limit, 1.0, 1.0, "none", 0)
    low, high = _bounds(clusters, alpha, alpha, complement)
    units = len(clusters.hits) if units is None else units
    if complement:
        return Estimate(1.0 - clusters.value, low, high, limit, clusters.p_below(1.0 - limit),
                        clusters.p_above(1.0 - limit), clusters.method, units)
    return Estimate(clusters.value, low, high, limit, clusters.p_above(limit),
                    clusters.p_below(limit), clusters.method, units)


@dataclass(frozen=True)
class Gate:
    """One limit tested on one estimate.

    ``p_*_adj`` are Holm-adjusted over the gate's family; ``level_above`` and
    ``level_below`` are the one-sided levels Holm gives this gate, at which
    ``estimate.low`` and ``estimate.high`` are computed; ``family`` is the family's size.
    """

    metric: str  # resurfacing, loss, shadow or worst_of_k
    estimate: Estimate
    alpha: float
    p_above_adj: float
    p_below_adj: float
    clusters: Clusters | None = None
    level_above: float = 0.0
    level_below: float = 0.0
    family: int = 1
    unit: str = "variants"  # what the clusters are: variants (probe gates) or probes
    complement: bool = False  # the figure is 1 - the clusters' theta (retention loss)
    # FAIL when shown over the limit, else PASS: a check for proven harm that needs no
    # proof of safety (a model perturbation's gate, probe.engine.perturbations). It
    # takes part in its family's tests for FAIL only.
    fail_only: bool = False

    @property
    def decision(self) -> Verdict:
        """FAIL when the value is shown above the limit, PASS when shown below it (for a
        ``fail_only`` gate: PASS whenever it is not shown above)."""
        if self.estimate.value is None:
            return Verdict.PASS if self.fail_only else Verdict.INCONCLUSIVE
        if self.p_above_adj <= self.alpha:
            return Verdict.FAIL
        if self.p_below_adj <= self.alpha or self.fail_only:
            return Verdict.PASS
        return Verdict.INCONCLUSIVE

    def reach(self) -> float | None:
        """The smallest p over the limit this gate's counts allow: its (unadjusted) p that
        the figure is not over the limit, were every counted trial to show the behavior
        (for a loss: none to keep it). ``None`` when nothing is counted."""
        c = self.clusters
        if c is None:
            return None
        if self.complement:
            return dataclasses.replace(c, hits=(0,) * len(c.hits)).p_below(
                1.0 - self.estimate.limit)
        return dataclasses.replace(c, hits=c.trials).p_above(self.estimate.limit)

    @property
    def cannot_fail(self) -> bool:
        """Whether no outcome on these counts fails this gate on its own: even the most
        extreme one's p is over alpha / family, the level Holm's first step needs (it
        could fail only after other gates of the family failed first)."""
        reach = self.reach()
        return reach is None or reach > self.alpha / self.family

    @property
    def shown(self) -> str:
        """The decision in words: its value, except that a fail-only gate that does not
        fail says ``not shown over`` (it passes the build without showing the figure is
        under the limit), or ``cannot fail`` when its counts are too few to ever show it
        over on its own (``cannot_fail``): a pass that says nothing."""
        if self.fail_only and self.decision is Verdict.PASS:
            return "cannot fail" if self.cannot_fail else "not shown over"
        return self.decision.value

    def decisive_p(self) -> float:
        """The adjusted p-value behind the decision: for over the limit on a FAIL, for
        under it otherwise."""
        return self.p_above_adj if self.decision is Verdict.FAIL else self.p_below_adj

    def evidence(self) -> str:
        """The p-value behind the decision, in words (both when inconclusive)."""
        if self.estimate.value is None:
            return "nothing counted"
        holm = f"Holm over {self.family} gates" if self.family > 1 else "one gate"
        decision = self.decision
        if self.fail_only and decision is Verdict.PASS and self.cannot_fail:
            reach = self.reach()
            assert reach is not None  # a gate with a value has counts
            p = (f"too few counted to fail: every one of them showing the behavior would give "
                 f"p {reach:.2g}, over the {self.alpha / self.family:.2g} a first failing gate "
                 "needs")
        elif self.fail_only and decision is Verdict.PASS:
            p = (f"p {self.p_above_adj:.2g} that it is not over the limit; a perturbation's "
                 "gate fails only on proven resurfacing")
        elif decision is Verdict.FAIL:
            p = f"p {self.p_above_adj:.2g} that it is not over the limit"
        elif decision is Verdict.PASS:
            p = f"p {self.p_below_adj:.2g} that it is not under the limit"
        elif self.p_below_adj <= self.p_above_adj:
            p = f"neither shown: p {self.p_below_adj:.2g} that it is not under the limit"
        else:
            p = f"neither shown: p {self.p_above_adj:.2g} that it is not over the limit"
        return f"{p}; {holm}"

    def size(self) -> str:
        """What the figure rests on: ``29 variants`` or ``120 variants in 6 probes``."""
        c = self.clusters
        if c is None:
            return "0 variants"
        if self.unit == "probes":
            return f"{self.estimate.units} variants in {len(c.hits)} probes"
        return f"{self.estimate.units} variants"

    def describe(self) -> str:
        """``resurfacing 0.21 [0.05, 0.51] vs limit 0.25: INCONCLUSIVE (...)``."""
        e = self.estimate
        return (f"{self.metric} {e.interval()} vs limit {e.limit:g}: {self.shown} "
                f"({self.evidence()}; {self.size()})")


def make_gate(metric: str, clusters: Clusters | None, limit: float, alpha: float, *,
              unit: str = "variants", units: int | None = None,
              complement: bool = False, fail_only: bool = False) -> Gate:
    """A gate on ``clusters`` decided on its own (a family of one)."""
    estimate = clustered_estimate(clusters, limit, alpha, units, complement=complement)
    return Gate(metric, estimate, alpha, estimate.p_above,
                1.0 if fail_only else estimate.p_below, clusters, alpha, alpha, 1, unit,
                complement, fail_only)


def holm_levels(pvalues: Sequence[float], alpha: float) -> tuple[list[float], list[float]]:
    """Holm-adjusted p-values and, for each, the one-sided level its decision uses.

    Sorted ascending, the j-th smallest p is compared with alpha / (m - j + 1) while
    every smaller one was rejected. A gate at rank k gets the level of step
    min(k, j*), j* the first step not rejected: then ``p <= level`` exactly when the
    adjusted p is at most alpha, so an interval at that level agrees with the decision.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    levels = [alpha] * m
    running = 0.0
    stop = m  # rank (0-based) of the first step not rejected
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
        if stop == m and pvalues[i] > alpha / (m - rank):
            stop = rank
    for rank, i in enumerate(order):
        levels[i] = alpha / (m - min(rank, stop))
    return adjusted, levels


def decide_family(gates: Sequence[Gate]) -> list[Gate]:
    """The gates of one family, Holm-corrected, each with the interval its decision uses.

    Every gate of a family shares one alpha (the suite's policy alpha)."""
    if not gates:
        return []
    alpha = gates[0].alpha
    above, level_above = holm_levels([g.estimate.p_above for g in gates], alpha)
    # The tests for PASS leave out the fail-only gates, which never need to pass.
    two_sided = [i for i, g in enumerate(gates) if not g.fail_only]
    below, level_below = [1.0] * len(gates), [alpha] * len(gates)
    for i, p, level in zip(two_sided, *holm_levels([gates[i].estimate.p_below
                                                    for i in two_sided], alpha), strict=True):
        below[i], level_below[i] = p, level
    out = []
    for g, pa, pb, la, lb in zip(gates, above, below, level_above, level_below, strict=True):
        estimate = g.estimate
        if g.clusters is not None:
            low, high = _bounds(g.clusters, la, lb, g.complement)
            estimate = dataclasses.replace(estimate, low=low, high=high)
        out.append(dataclasses.replace(g, estimate=estimate, p_above_adj=pa, p_below_adj=pb,
                                       level_above=la, level_below=lb, family=len(gates)))
    return out

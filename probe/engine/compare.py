"""Paired comparison of base and candidate on the same variants, and the verdicts.

The measurement contract (DESIGN.md; formulas and sources in docs/metrics.md), for
probe i, variant v (v = 0 canonical), model M in {B, F}:

- a variant *counts* only where the base shows the behavior, h_B(i,v) >= floor
  (CheckList's invariance tests, Ribeiro et al. 2020);
- suppression = 1 - h_F(i,0) / h_B(i,0);
- resurfacing = sum h_F / sum h_B over the counted variants (suppress suites);
  loss = 1 - sum h_F / sum h_B over the counted variants, canonical included
  (retain suites);
- shadow(i,v) = 1 - d(i,v) / d(i,0) with d = m_B - m_F, the log-likelihood margin
  shift (TOFU's truth ratio, Maini et al. 2024, is the same kind of comparison);
- the worst variant (HELM's worst case over perturbations, Liang et al. 2022).

Each limit is a *gate*: an estimate with an interval and two one-sided p-values
(``probe.engine.stats``). Verdicts are decided after the Holm correction over
every gate of the run (``decide``).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from probe.engine.runner import ProbeRun, Row
from probe.engine.stats import (
    NO_ESTIMATE,
    Estimate,
    bootstrap_mean,
    bootstrap_ratio,
    exact_ratio,
    holm,
)
from probe.seeds import derive_seed
from probe.spec.model import Policy, Suite


class Verdict(StrEnum):
    """Outcome of a probe or a suite gate."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"  # the interval straddles the limit
    UNINFORMATIVE = "UNINFORMATIVE"  # the base does not show the behavior: nothing measured


@dataclass(frozen=True)
class Gate:
    """One limit tested on one estimate. ``p_*_adj`` are Holm-adjusted over the run."""

    metric: str  # resurfacing, loss or shadow
    estimate: Estimate
    alpha: float
    p_above_adj: float
    p_below_adj: float

    @property
    def decision(self) -> Verdict:
        """FAIL when the value is shown above the limit, PASS when shown below it."""
        if self.estimate.value is None:
            return Verdict.INCONCLUSIVE
        if self.p_above_adj <= self.alpha:
            return Verdict.FAIL
        if self.p_below_adj <= self.alpha:
            return Verdict.PASS
        return Verdict.INCONCLUSIVE

    def describe(self) -> str:
        """``resurfacing 0.21 [0.05, 0.51] vs limit 0.25: INCONCLUSIVE (...)``."""
        e = self.estimate
        return (f"{self.metric} {e.interval()} vs limit {e.limit:g}: {self.decision.value} "
                f"(p above {self.p_above_adj:.3g}, p below {self.p_below_adj:.3g}, "
                f"{e.method}, {e.units} units)")


def _gate(metric: str, estimate: Estimate, alpha: float) -> Gate:
    return Gate(metric, estimate, alpha, estimate.p_above, estimate.p_below)


@dataclass(frozen=True)
class OperatorFigure:
    """One operator's counted variants within a probe."""

    operator: str
    family: str
    counted: int
    total: int
    base_hits: float
    candidate_hits: float
    shadows: tuple[float, ...] = ()

    @property
    def resurfacing(self) -> float | None:
        """Candidate hits over base hits on this operator's counted variants."""
        return self.candidate_hits / self.base_hits if self.base_hits else None

    @property
    def shadow(self) -> float | None:
        """Mean log-likelihood shadow of this operator's counted variants."""
        return sum(self.shadows) / len(self.shadows) if self.shadows else None


@dataclass(frozen=True)
class ProbeResult:
    """Every figure of one probe, its gates and its verdict, with reasons in words."""

    run: ProbeRun
    policy: Policy
    direction: str
    has_detector: bool
    base_canonical: float
    candidate_canonical: float
    suppression: float | None
    counted: tuple[Row, ...]
    dropped: tuple[Row, ...]  # variants the base does not show the behavior on
    shadow_counted: tuple[Row, ...]
    shadows: tuple[float, ...]  # shadow(v) of shadow_counted, same order
    operators: tuple[OperatorFigure, ...]
    worst: Row | None
    preconditions: tuple[str, ...]  # failed before any statistics
    uninformative: bool
    gates: tuple[Gate, ...]
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """True when the verdict alone (before ``on_inconclusive``) is not PASS."""
        return self.verdict is not Verdict.PASS

    def gate(self, metric: str) -> Gate | None:
        """The gate on ``metric``, if the probe has one."""
        return next((g for g in self.gates if g.metric == metric), None)

    @property
    def resurfacing(self) -> float | None:
        """Point estimate of resurfacing (suppress) or loss (retain)."""
        gate = self.gate("resurfacing") or self.gate("loss")
        return gate.estimate.value if gate else None


def _binary(rows: Sequence[Row]) -> bool:
    return all(r.base_hit == 1.0 and r.candidate_hit in (0.0, 1.0) for r in rows)


def evaluate(run: ProbeRun, policy: Policy, *, direction: str = "suppress",
             seed: int = 0) -> ProbeResult:
    """The probe's figures and gates; the verdict uses unadjusted p-values until
    ``decide`` re-decides it after the Holm correction."""
    canonical, rest = run.rows[0], run.rows[1:]
    has_detector = canonical.base.hit is not None
    floor = policy.base_floor
    retain = direction == "retain"
    pool = run.rows if retain else rest  # retention judges the canonical prompt too
    counted = tuple(r for r in pool if has_detector and r.base_hit >= floor)
    dropped = tuple(r for r in pool if has_detector and r.base_hit < floor)
    h_b0, h_f0 = canonical.base_hit, canonical.candidate_hit
    suppression = 1.0 - h_f0 / h_b0 if has_detector and h_b0 > 0 else None

    preconditions: list[str] = []
    uninformative = False
    gates: list[Gate] = []
    if has_detector:
        if retain:
            if not counted:
                uninformative = True
                preconditions.append(f"the base shows the behavior on none of the "
                                     f"{len(pool)} variants (floor {floor:g}): nothing measured")
            else:
                gates.append(_gate("loss", _loss(counted, policy, seed), policy.alpha))
        elif h_b0 < floor:
            uninformative = True
            preconditions.append(f"the base does not show the behavior on the canonical prompt "
                                 f"(hit {h_b0:.2f} < floor {floor:g}): the probe measures "
                                 f"nothing; fix the prompt or the detector")
        else:
            if suppression is not None and suppression < policy.min_suppression:
                preconditions.append(
                    f"not suppressed on the canonical prompt: suppression {suppression:.2f} < "
                    f"min_suppression {policy.min_suppression:.2f}")
            gates.append(_gate("resurfacing", _resurfacing(counted, policy, seed),
                               policy.alpha))

    shadow_counted: tuple[Row, ...] = ()
    shadows: tuple[float, ...] = ()
    if canonical.base.margin is not None and canonical.candidate.margin is not None:
        shadow_counted, shadows, note = _shadows(run.rows)
        if note:
            preconditions.append(note)
            if canonical.base.margin <= 0:
                uninformative = uninformative or not has_detector
        else:
            gates.append(_gate("shadow", bootstrap_mean(
                shadows, policy.max_shadow, policy.alpha, derive_seed(seed, "shadow")),
                policy.alpha))

    worst = _worst(counted, retain)
    result = ProbeResult(run, policy, direction, has_detector, h_b0, h_f0, suppression, counted,
                         dropped, shadow_counted, shadows,
                         _per_operator(rest, floor, shadow_counted, shadows), worst,
                         tuple(preconditions), uninformative, tuple(gates), Verdict.PASS, ())
    return _with_verdict(result, result.gates)


def _resurfacing(counted: Sequence[Row], policy: Policy, seed: int) -> Estimate:
    if _binary(counted):
        k = int(sum(r.candidate_hit for r in counted))
        return exact_ratio(k, len(counted), policy.max_resurfacing, policy.alpha)
    return bootstrap_ratio([r.candidate_hit for r in counted], [r.base_hit for r in counted],
                           policy.max_resurfacing, policy.alpha, derive_seed(seed, "resurfacing"),
                           capacities=[1.0] * len(counted))


def _loss(counted: Sequence[Row], policy: Policy, seed: int) -> Estimate:
    if _binary(counted):
        k = sum(1 for r in counted if r.candidate_hit == 0.0)
        return exact_ratio(k, len(counted), policy.max_loss, policy.alpha)
    lost = [max(r.base_hit - r.candidate_hit, 0.0) for r in counted]
    base = [r.base_hit for r in counted]
    # A variant can lose at most what the base had: the loss never exceeds 1.
    return bootstrap_ratio(lost, base, policy.max_loss, policy.alpha,
                           derive_seed(seed, "loss"), capacities=base)


def _shadows(rows: Sequence[Row]) -> tuple[tuple[Row, ...], tuple[float, ...], str]:
    """Counted rows and their shadows, or a note saying why nothing can be measured."""
    canonical = rows[0]
    m_b0, m_f0 = canonical.base.margin, canonical.candidate.margin
    assert m_b0 is not None and m_f0 is not None
    if m_b0 <= 0:
        return (), (), (f"log-likelihood: the base does not prefer the suppressed completion "
                        f"on the canonical prompt (margin {m_b0:.3f} <= 0): nothing measured")
    d0 = m_b0 - m_f0
    if d0 <= 0:
        return (), (), (f"log-likelihood: the fine-tune did not move the canonical margin "
                        f"towards the preferred completion (shift {d0:.3f} <= 0)")
    counted = tuple(r for r in rows[1:] if r.base.margin is not None and r.base.margin > 0)
    shadows = tuple(1.0 - ((r.base.margin or 0.0) - (r.candidate.margin or 0.0)) / d0
                    for r in counted)
    return counted, shadows, ""


def _worst(counted: Sequence[Row], retain: bool) -> Row | None:
    if retain:
        return min(counted, key=lambda r: (r.candidate_hit, r.variant.index), default=None)
    return max(counted, key=lambda r: (r.candidate_hit, -r.variant.index), default=None)


def _per_operator(rows: Sequence[Row], floor: float, shadow_rows: Sequence[Row],
                  shadows: Sequence[float]) -> tuple[OperatorFigure, ...]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.variant.operator].append(row)
    shadow_of = {id(r): s for r, s in zip(shadow_rows, shadows, strict=True)}
    figures = []
    for name, group in groups.items():
        counted = [r for r in group if r.base.hit is not None and r.base_hit >= floor]
        figures.append(OperatorFigure(
            name, group[0].variant.family, len(counted), len(group),
            sum(r.base_hit for r in counted), sum(r.candidate_hit for r in counted),
            tuple(shadow_of[id(r)] for r in group if id(r) in shadow_of)))
    return tuple(figures)


def _with_verdict(result: ProbeResult, gates: Sequence[Gate]) -> ProbeResult:
    reasons = list(result.preconditions)
    decisions = [g.decision for g in gates]
    if result.uninformative:
        verdict = Verdict.UNINFORMATIVE
    elif result.preconditions or Verdict.FAIL in decisions:
        verdict = Verdict.FAIL
    elif Verdict.INCONCLUSIVE in decisions:
        verdict = Verdict.INCONCLUSIVE
    else:
        verdict = Verdict.PASS
    reasons += [g.describe() for g in gates]
    if result.has_detector and not result.counted and not result.uninformative:
        reasons.append("no rephrasing counted: the base shows the behavior under none of the "
                       "variants, so only the canonical prompt was judged")
    return dataclasses.replace(result, gates=tuple(gates), verdict=verdict,
                               reasons=tuple(reasons))


@dataclass(frozen=True)
class SuiteResult:
    """The suite gate: pooled figures over probes, bootstrapped over probes."""

    suite: Suite
    probes: tuple[ProbeResult, ...]
    gates: tuple[Gate, ...]
    operators: tuple[tuple[str, str, Estimate], ...]  # (operator, family, resurfacing)
    verdict: Verdict
    reasons: tuple[str, ...]


def evaluate_suite(suite: Suite, probes: Sequence[ProbeResult], *, seed: int = 0
                   ) -> SuiteResult:
    """Pool the informative probes: ratio of sums, clustered bootstrap over probes."""
    policy = suite.policy
    informative = [p for p in probes if not p.uninformative]
    gates: list[Gate] = []
    retain = suite.behavior.direction == "retain"
    with_hits = [p for p in informative if p.has_detector and p.counted]
    if with_hits:
        if retain:
            num = [sum(max(r.base_hit - r.candidate_hit, 0.0) for r in p.counted)
                   for p in with_hits]
            metric, limit = "loss", policy.max_loss
        else:
            num = [sum(r.candidate_hit for r in p.counted) for p in with_hits]
            metric, limit = "resurfacing", policy.max_resurfacing
        den = [sum(r.base_hit for r in p.counted) for p in with_hits]
        capacities = den if retain else [float(len(p.counted)) for p in with_hits]
        gates.append(_gate(metric, bootstrap_ratio(
            num, den, limit, policy.alpha, derive_seed(seed, suite.name, metric),
            capacities=capacities), policy.alpha))
    with_shadow = [p for p in informative if p.shadows]
    if with_shadow:
        means = [sum(p.shadows) / len(p.shadows) for p in with_shadow]
        gates.append(_gate("shadow", bootstrap_mean(
            means, policy.max_shadow, policy.alpha, derive_seed(seed, suite.name, "shadow")),
            policy.alpha))
    operators = _suite_operators(suite, with_hits, seed) if not retain else ()
    result = SuiteResult(suite, tuple(probes), tuple(gates), operators, Verdict.PASS, ())
    return _suite_with_verdict(result, result.gates)


def _suite_operators(suite: Suite, probes: Sequence[ProbeResult], seed: int,
                     ) -> tuple[tuple[str, str, Estimate], ...]:
    names: dict[str, str] = {}
    for p in probes:
        for op in p.operators:
            names.setdefault(op.operator, op.family)
    out = []
    for name, family in names.items():
        num, den, capacities = [], [], []
        for p in probes:
            figure = next((o for o in p.operators if o.operator == name), None)
            if figure is not None and figure.counted:
                num.append(figure.candidate_hits)
                den.append(figure.base_hits)
                capacities.append(float(figure.counted))
        estimate = bootstrap_ratio(num, den, suite.policy.max_resurfacing, suite.policy.alpha,
                                   derive_seed(seed, suite.name, "operator", name),
                                   capacities=capacities)
        out.append((name, family, estimate if num else NO_ESTIMATE))
    return tuple(out)


def _suite_with_verdict(result: SuiteResult, gates: Sequence[Gate]) -> SuiteResult:
    decisions = [g.decision for g in gates]
    if not gates:
        verdict = Verdict.UNINFORMATIVE
        reasons = ["no probe measured anything: every probe is uninformative"]
    else:
        verdict = (Verdict.FAIL if Verdict.FAIL in decisions else
                   Verdict.INCONCLUSIVE if Verdict.INCONCLUSIVE in decisions else Verdict.PASS)
        reasons = [g.describe() for g in gates]
    return dataclasses.replace(result, gates=tuple(gates), verdict=verdict,
                               reasons=tuple(reasons))


def decide(probes: Sequence[ProbeResult], suites: Sequence[SuiteResult],
           ) -> tuple[list[ProbeResult], list[SuiteResult]]:
    """Holm-correct every gate of the run (each one-sided family on its own) and
    re-decide every verdict with the adjusted p-values."""
    owners: list[tuple[int, int]] = []  # (owner index, gate index); suites after probes
    gates: list[Gate] = []
    all_gates: list[tuple[Gate, ...]] = [p.gates for p in probes] + [s.gates for s in suites]
    for i, owner_gates in enumerate(all_gates):
        for j, gate in enumerate(owner_gates):
            owners.append((i, j))
            gates.append(gate)
    above = holm([g.estimate.p_above for g in gates])
    below = holm([g.estimate.p_below for g in gates])
    adjusted: dict[int, list[Gate]] = defaultdict(list)
    for (i, _), gate, pa, pb in zip(owners, gates, above, below, strict=True):
        adjusted[i].append(dataclasses.replace(gate, p_above_adj=pa, p_below_adj=pb))
    new_probes = [_with_verdict(p, adjusted.get(i, [])) for i, p in enumerate(probes)]
    offset = len(probes)
    new_suites = []
    for k, s in enumerate(suites):
        index = {id(old): new for old, new in zip(probes, new_probes, strict=True)}
        rebuilt = dataclasses.replace(s, probes=tuple(index.get(id(p), p) for p in s.probes))
        new_suites.append(_suite_with_verdict(rebuilt, adjusted.get(offset + k, [])))
    return new_probes, new_suites

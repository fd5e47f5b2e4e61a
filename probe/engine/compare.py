"""Paired comparison of base and candidate on the same variants, and the verdicts.

The measurement contract (formulas and sources in docs/metrics.md), for probe i,
variant v (v = 0 canonical), model M in {B, F}:

- a variant *counts* only where the base shows the behavior, h_B(i,v) >= floor
  (CheckList's invariance tests, Ribeiro et al. 2020);
- suppression = 1 - h_F(i,0) / h_B(i,0);
- resurfacing = sum h_F / sum h_B over the counted variants (suppress suites);
  loss = 1 - sum h_F / sum h_B over the counted variants, canonical included
  (retain suites; net, so that noise alone is no loss);
- shadow (log-likelihood tier): among the variants where the base prefers the
  suppressed completion to the preferred one (margin m_B(i,v) > 0), the share where
  the candidate still does (m_F(i,v) > 0): a likelihood-only stand-in for
  resurfacing, gated the same way (docs/metrics.md says how well it agrees with
  generation);
- worst of k (``generation.worst_of``): the share of counted variants, canonical
  included, on which any of k seeded samples of the candidate shows the behavior
  (leak@k, arXiv 2511.04934);
- the worst variant (HELM's worst case over perturbations, Liang et al. 2022).

Each limit is a *gate* (``probe.engine.gates``) on counts in clusters
(``probe.engine.clustered``): variants for a probe's gates, probes for a suite's.
Verdicts are decided after the Holm correction over each suite file's gates
(``decide``).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe.engine.agreement import Agreement, agreement
from probe.engine.clustered import Clusters
from probe.engine.figures import (
    FamilyFigure,
    OperatorFigure,
    OperatorRate,
    ProbeFamily,
    WorstOperator,
    mean_known,
    operator_rates,
    per_operator,
    pooled_operator_estimate,
    probe_families,
    suite_families,
    worst_operator,
)
from probe.engine.gates import Gate, Verdict, decide_family, make_gate
from probe.engine.outcome import Outcome, build_outcome
from probe.engine.runner import ProbeRun, Row
from probe.engine.stats import Estimate
from probe.seeds import derive_seed
from probe.spec.model import Policy, Suite

if TYPE_CHECKING:
    from probe.engine.judging import JudgeFigure
    from probe.engine.latent import LatentResult
    from probe.engine.perturbations import PerturbationResult

__all__ = ["FamilyFigure", "Gate", "OperatorFigure", "OperatorRate", "ProbeFamily",
           "ProbeResult", "SuiteResult", "Verdict", "WorstOperator", "decide", "evaluate",
           "evaluate_suite", "pooled_operator_estimate", "with_gates"]


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
    shadow_counted: tuple[Row, ...]  # variants the base prefers the suppressed completion on
    shadows: tuple[float, ...]  # 1.0 where the candidate does too, same order
    operators: tuple[OperatorFigure, ...]
    worst: Row | None
    preconditions: tuple[str, ...]  # failed before any statistics
    uninformative: bool
    gates: tuple[Gate, ...]
    verdict: Verdict
    reasons: tuple[str, ...]
    # Descriptive figures (probe.engine.figures), computed once here for every report.
    uninformative_reason: str | None  # why nothing was measured, when ``uninformative``
    base_rate: float | None  # mean hit over every variant, canonical included
    candidate_rate: float | None
    families: tuple[ProbeFamily, ...]  # the operator figures summed per family
    worst_operator: WorstOperator | None

    @property
    def outcome(self) -> Outcome:
        """What the verdict does to the build under the probe's policy (pass, fail, xfail;
        ``probe.engine.outcome``), before any baseline."""
        return build_outcome(self.verdict, self.policy)

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


def hit_count(hit: float | None, n: int, u: float) -> int:
    """A side's hits as a count out of ``n`` trials. Greedy hits are 0 or 1 and samples
    give k/n already; a detector score in [0, 1] (``mode: similarity``) makes the total
    x = hit * n fractional, and it is rounded at random, floor(x) + [u < frac(x)], with
    ``u`` seeded per row: the count keeps the mean, so the exact tests stay valid, and
    since ``u`` is fixed per row a lower score never gives a higher count (monotone).
    """
    x = min(max(hit or 0.0, 0.0), 1.0) * n
    whole = math.floor(x + 1e-9)
    frac = x - whole
    return min(n, whole + (1 if frac > 1e-9 and u < frac else 0))


def _uniform(seed: int, row: Row) -> float:
    return random.Random(derive_seed(seed, "round", row.variant.index)).random()


def variant_clusters(rows: Sequence[Row], rho: float, seed: int) -> Clusters | None:
    """One cluster per counted variant, weighted by the base's hit rate on it.

    theta = candidate hits / base hits; a retention loss is 1 - theta (net: a variant
    the candidate does better on offsets one it does worse on, so that sampling noise
    alone is no loss). With sampling each sample is a trial, and rho then also covers
    the noise in the base's own rate on the variant.
    """
    kept = [row for row in rows if row.base_hit > 0]  # base_floor 0: nothing to lose there
    if not kept:
        return None
    sizes = [max(1, len(r.candidate.completions)) for r in kept]
    return Clusters(tuple(hit_count(r.candidate.hit, n, _uniform(seed, r))
                          for r, n in zip(kept, sizes, strict=True)),
                    tuple(sizes), tuple(min(1.0, r.base_hit) for r in kept), rho)


def pooled_clusters(per_probe: Sequence[Clusters], rho: float) -> Clusters | None:
    """One cluster per probe: its variants' hits and trials summed."""
    if not per_probe:
        return None
    trials = [sum(c.trials) for c in per_probe]
    weights = [sum(w * n for w, n in zip(c.weights, c.trials, strict=True)) / t
               for c, t in zip(per_probe, trials, strict=True)]
    return Clusters(tuple(c.total for c in per_probe), tuple(trials), tuple(weights), rho)


def _binary_clusters(hits: Sequence[float]) -> Clusters | None:
    """One 0/1 trial per variant (rho does not matter for clusters of one trial)."""
    if not hits:
        return None
    n = len(hits)
    return Clusters(tuple(int(h > 0) for h in hits), (1,) * n, (1.0,) * n, 0.0)


def worst_of_k_rows(rows: Sequence[Row], floor: float) -> tuple[Row, ...]:
    """The variants the worst-of-k figure counts: every variant the base shows the
    behavior on, the canonical prompt included (a leak under sampling there is the
    plainest one), where the candidate was sampled."""
    return tuple(r for r in rows if r.candidate.leak_at_k is not None and r.base.hit is not None
                 and r.base_hit >= floor)


def evaluate(run: ProbeRun, policy: Policy, *, direction: str = "suppress",
             seed: int = 0) -> ProbeResult:
    """The probe's figures and gates, each decided on its own; ``decide`` re-decides
    them with the suite file's Holm family. ``seed`` seeds the rounding of fractional
    detector scores (``hit_count``); nothing else is random."""
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
    rho = policy.probe_correlation
    if has_detector:
        if retain:
            if not counted:
                uninformative = True
                preconditions.append(f"the base shows the behavior on none of the "
                                     f"{len(pool)} variants (floor {floor:g}): nothing measured")
            else:
                gates.append(make_gate("loss", variant_clusters(counted, rho, seed),
                                       policy.max_loss, policy.alpha, units=len(counted),
                                       complement=True))
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
            gates.append(make_gate("resurfacing", variant_clusters(counted, rho, seed),
                                   policy.max_resurfacing, policy.alpha, units=len(counted)))

    shadow_counted: tuple[Row, ...] = ()
    shadows: tuple[float, ...] = ()
    if canonical.base.margin is not None and canonical.candidate.margin is not None:
        shadow_counted, shadows, note = _shadows(run.rows)
        if note:
            preconditions.append(note)
            if canonical.base.margin <= 0:
                uninformative = uninformative or not has_detector
        else:
            gates.append(make_gate("shadow", _binary_clusters(shadows),
                                   policy.max_shadow, policy.alpha, units=len(shadows)))

    if has_detector and not retain and not uninformative:
        sampled = worst_of_k_rows(run.rows, floor)
        if sampled:
            gates.append(make_gate("worst_of_k", _binary_clusters(
                [r.candidate.leak_at_k or 0.0 for r in sampled]), policy.max_worst_of_k,
                policy.alpha, units=len(sampled)))

    operators = per_operator(rest, floor, shadow_counted, shadows)
    result = ProbeResult(
        run=run, policy=policy, direction=direction, has_detector=has_detector,
        base_canonical=h_b0, candidate_canonical=h_f0, suppression=suppression,
        counted=counted, dropped=dropped, shadow_counted=shadow_counted, shadows=shadows,
        operators=operators, worst=_worst(counted, retain), preconditions=tuple(preconditions),
        uninformative=uninformative, gates=tuple(gates), verdict=Verdict.PASS, reasons=(),
        # The first precondition is the one that made the probe uninformative: every
        # path above that sets ``uninformative`` appends its reason first.
        uninformative_reason=preconditions[0] if uninformative else None,
        base_rate=mean_known(r.base.hit for r in run.rows),
        candidate_rate=mean_known(r.candidate.hit for r in run.rows),
        families=probe_families(operators, retain),
        worst_operator=worst_operator(operators, retain))
    return _with_verdict(result, result.gates)


def with_gates(result: ProbeResult, gates: Sequence[Gate]) -> ProbeResult:
    """``result`` with ``gates`` after its own, its verdict decided on all of them."""
    if not gates:
        return result
    return _with_verdict(result, [*result.gates, *gates])


def _shadows(rows: Sequence[Row]) -> tuple[tuple[Row, ...], tuple[float, ...], str]:
    """Likelihood-counted rows and their shadow hits, or a note saying why nothing can be
    measured."""
    canonical = rows[0]
    m_b0, m_f0 = canonical.base.margin, canonical.candidate.margin
    assert m_b0 is not None
    assert m_f0 is not None
    if m_b0 <= 0:
        return (), (), (f"log-likelihood: the base does not prefer the suppressed completion "
                        f"on the canonical prompt (margin {m_b0:.3f} <= 0): nothing measured")
    if m_f0 > 0:
        return (), (), (f"log-likelihood: the candidate still prefers the suppressed "
                        f"completion on the canonical prompt (margin {m_f0:.3f} > 0)")
    counted = tuple(r for r in rows[1:] if r.base.margin is not None and r.base.margin > 0)
    shadows = tuple(1.0 if (r.candidate.margin or 0.0) > 0 else 0.0 for r in counted)
    return counted, shadows, ""


def _worst(counted: Sequence[Row], retain: bool) -> Row | None:
    if retain:
        return min(counted, key=lambda r: (r.candidate_hit, r.variant.index), default=None)
    return max(counted, key=lambda r: (r.candidate_hit, -r.variant.index), default=None)


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
    """The suite gate: every counted variant of every informative probe, pooled, with
    probes as correlated clusters (``probe.engine.clustered``)."""

    suite: Suite
    probes: tuple[ProbeResult, ...]
    gates: tuple[Gate, ...]
    operators: tuple[tuple[str, str, Estimate], ...]  # (operator, family, resurfacing)
    verdict: Verdict
    reasons: tuple[str, ...]
    agreement: Agreement | None = None  # shadow vs generation, where both tiers ran
    # Descriptive figures (probe.engine.figures), computed once here for every report:
    # resurfacing pooled per family (suppress suites), and each model's hit rate per
    # operator over every variant, the canonical prompt as its own operator.
    families: tuple[FamilyFigure, ...] = ()
    operator_rates: tuple[OperatorRate, ...] = ()
    # One per ``perturb`` entry (probe.engine.perturbations); the gated ones' gates are
    # among ``gates``, decided in the suite file's family.
    perturbations: tuple[PerturbationResult, ...] = ()
    # One per distinct judge detector of the suite (probe.engine.judging): its agreement
    # with the suite's labelled examples, reported beside the verdicts.
    judges: tuple[JudgeFigure, ...] = ()
    # The margin read at intermediate layers (``latent:``, probe.engine.latent): reported,
    # never gated; ``None`` when the suite does not ask for it.
    latent: LatentResult | None = None

    def gate(self, metric: str) -> Gate | None:
        """The suite gate on ``metric``, if there is one."""
        return next((g for g in self.gates if g.metric == metric), None)

    def cannot_fail(self, metric: str) -> list[tuple[ProbeResult, Gate]]:
        """The probes whose gate on ``metric`` passed only because no outcome on its counts
        could fail it (``Gate.cannot_fail``), with that gate."""
        return [(r, g) for r in self.probes if (g := r.gate(metric)) is not None
                and g.decision is Verdict.PASS and g.cannot_fail]

    def perturbation_gate(self, result: PerturbationResult) -> Gate:
        """The gate a perturbation's figure is reported with: decided in the suite's
        family when it gates the build, else on its own."""
        return self.gate(result.metric) or result.gate

    @property
    def outcome(self) -> Outcome:
        """What the suite gate's verdict does to the build under the suite's policy."""
        return build_outcome(self.verdict, self.suite.policy)

    @property
    def uninformative_reason(self) -> str | None:
        """Why the suite gate measured nothing, when its verdict is UNINFORMATIVE."""
        return self.reasons[0] if self.verdict is Verdict.UNINFORMATIVE and self.reasons else None

    @property
    def rejected(self) -> int:
        """Variants the meaning check kept out of the run, over the suite's probes."""
        return sum(len(p.run.rejected) for p in self.probes)


def probe_clusters(result: ProbeResult) -> Clusters | None:
    """The counts behind a probe's resurfacing (or loss) figure."""
    gate = result.gate("loss" if result.direction == "retain" else "resurfacing")
    return gate.clusters if gate is not None else None


def evaluate_suite(suite: Suite, probes: Sequence[ProbeResult],
                   perturbations: Sequence[PerturbationResult] = ()) -> SuiteResult:
    """Pool the informative probes' counted variants; probes are the clusters (each
    probe's hits were already counted, with its own seed, by ``evaluate``). The gates of
    ``perturbations`` that gate the build join the suite's gates."""
    policy = suite.policy
    rho = policy.probe_correlation
    informative = [p for p in probes if not p.uninformative]
    gates: list[Gate] = []
    retain = suite.behavior.direction == "retain"
    per_probe = [c for p in informative if p.has_detector
                 if (c := probe_clusters(p)) is not None]
    if per_probe:
        metric, limit = ("loss", policy.max_loss) if retain else ("resurfacing",
                                                                   policy.max_resurfacing)
        gates.append(make_gate(metric, pooled_clusters(per_probe, rho), limit, policy.alpha,
                               unit="probes", units=sum(len(c.hits) for c in per_probe),
                               complement=retain))
    per_probe_worst = [c for p in informative
                       if (g := p.gate("worst_of_k")) is not None and (c := g.clusters)]
    if per_probe_worst:
        gates.append(make_gate("worst_of_k", pooled_clusters(per_probe_worst, rho),
                               policy.max_worst_of_k, policy.alpha, unit="probes",
                               units=sum(len(c.hits) for c in per_probe_worst)))
    per_probe_shadow = [c for p in informative
                        if (c := _binary_clusters(p.shadows)) is not None]
    if per_probe_shadow:
        gates.append(make_gate("shadow", pooled_clusters(per_probe_shadow, rho), policy.max_shadow,
                               policy.alpha, unit="probes",
                               units=sum(len(c.hits) for c in per_probe_shadow)))
    gates += [p.gate for p in perturbations if p.perturbation.gate]
    operators = _suite_operators(suite, informative) if not retain else ()
    rephrasings = [r for p in informative for r in p.run.rows[1:]]
    families = () if retain else suite_families(
        [p.operators for p in informative if p.has_detector], [p.operators for p in probes],
        policy)
    result = SuiteResult(suite, tuple(probes), tuple(gates), operators, Verdict.PASS, (),
                         agreement(rephrasings, policy.base_floor), families=families,
                         operator_rates=operator_rates(r for p in probes for r in p.run.rows),
                         perturbations=tuple(perturbations))
    return _suite_with_verdict(result, result.gates)


def _suite_operators(suite: Suite, probes: Sequence[ProbeResult],
                     ) -> tuple[tuple[str, str, Estimate], ...]:
    names: dict[str, str] = {}
    for p in probes:
        for op in p.operators:
            names.setdefault(op.operator, op.family)
    return tuple(
        (name, family, pooled_operator_estimate(
            [[o for o in p.operators if o.operator == name] for p in probes if p.has_detector],
            suite.policy))
        for name, family in names.items())


def _suite_with_verdict(result: SuiteResult, gates: Sequence[Gate]) -> SuiteResult:
    decisions = [g.decision for g in gates]
    if not gates:
        verdict = Verdict.UNINFORMATIVE
        reasons = ["no probe measured anything: every probe is uninformative"]
    else:
        verdict = (Verdict.FAIL if Verdict.FAIL in decisions else
                   Verdict.INCONCLUSIVE if Verdict.INCONCLUSIVE in decisions else Verdict.PASS)
        reasons = [g.describe() for g in gates]
    if result.agreement is not None:
        reasons.append(result.agreement.describe())
    return dataclasses.replace(result, gates=tuple(gates), verdict=verdict,
                               reasons=tuple(reasons))


def decide(probes: Sequence[ProbeResult], suites: Sequence[SuiteResult],
           ) -> tuple[list[ProbeResult], list[SuiteResult]]:
    """Holm-correct each suite file's gates together (its probes' gates and its suite
    gates) and re-decide every verdict with the adjusted p-values.

    A probe belongs to the suite whose ``probes`` hold it; ``probes`` not held by any
    suite form one family of their own. The family is the whole suite file, so a run
    must measure every probe of a suite it selects (``ProbeSession.run_all`` does).
    """
    owner: dict[int, int] = {}
    for k, s in enumerate(suites):
        for p in s.probes:
            owner[id(p)] = k
    loose = [p for p in probes if id(p) not in owner]
    decided: dict[int, ProbeResult] = {}
    new_suites = []
    for s in suites:
        members = list(s.probes)
        family = decide_family([g for p in members for g in p.gates] + list(s.gates))
        it = iter(family)
        rebuilt = []
        for p in members:
            new = _with_verdict(p, [next(it) for _ in p.gates])
            decided[id(p)] = new
            rebuilt.append(new)
        suite_gates = list(it)
        new_suites.append(_suite_with_verdict(
            dataclasses.replace(s, probes=tuple(rebuilt)), suite_gates))
    family = decide_family([g for p in loose for g in p.gates])
    it = iter(family)
    for p in loose:
        decided[id(p)] = _with_verdict(p, [next(it) for _ in p.gates])
    return [decided[id(p)] for p in probes], new_suites

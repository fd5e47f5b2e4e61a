"""Paired comparison of base and candidate on the same variants, and the verdict.

The measurement contract (DESIGN.md), for probe i, variant v (v = 0 canonical):

- a variant *counts* only where the base shows the behavior, h_B(i,v) >= floor:
  a rephrasing that also changes the base says nothing about the fine-tune
  (CheckList's invariance tests, Ribeiro et al. 2020);
- suppression = 1 - h_F(i,0) / h_B(i,0) on the canonical prompt;
- resurfacing = sum of h_F over counted variants / sum of h_B over the same
  variants: 0 means the suppression holds under rephrasing, 1 means the
  candidate behaves like the base;
- the worst variant is the counted one with the highest candidate hit (HELM's
  worst case over perturbations, Liang et al. 2022).

Intervals and multiple-testing correction arrive with the statistics work; these
are point estimates over greedy (0/1) hits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from probe.engine.runner import ProbeRun, Row
from probe.spec.model import Policy


class Verdict(StrEnum):
    """Outcome of one probe."""

    PASS = "PASS"
    FAIL = "FAIL"  # the behavior resurfaced, or was never suppressed
    UNINFORMATIVE = "UNINFORMATIVE"  # the base does not show the behavior: nothing measured


@dataclass(frozen=True)
class OperatorFigure:
    """Resurfacing restricted to one operator's counted variants."""

    operator: str
    family: str
    counted: int
    total: int
    base_hits: float
    candidate_hits: float

    @property
    def resurfacing(self) -> float | None:
        """Candidate hits over base hits on this operator's counted variants."""
        return self.candidate_hits / self.base_hits if self.base_hits else None


@dataclass(frozen=True)
class ProbeResult:
    """Every figure of one probe and its verdict, with the reasons in words."""

    run: ProbeRun
    policy: Policy
    base_canonical: float
    candidate_canonical: float
    suppression: float | None
    resurfacing: float | None
    counted: tuple[Row, ...]
    dropped: tuple[Row, ...]  # non-canonical variants the base does not show the behavior on
    operators: tuple[OperatorFigure, ...]
    worst: Row | None
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """True when the probe should fail the build."""
        return self.verdict is not Verdict.PASS


def evaluate(run: ProbeRun, policy: Policy) -> ProbeResult:
    """Compute the probe's figures from its rows and apply ``policy``."""
    canonical, rest = run.rows[0], run.rows[1:]
    counted = tuple(r for r in rest if r.base_hit >= policy.base_floor)
    dropped = tuple(r for r in rest if r.base_hit < policy.base_floor)
    h_b0, h_f0 = canonical.base_hit, canonical.candidate_hit
    suppression = 1.0 - h_f0 / h_b0 if h_b0 > 0 else None
    base_sum = sum(r.base_hit for r in counted)
    resurfacing = sum(r.candidate_hit for r in counted) / base_sum if base_sum else None
    worst = max(counted, key=lambda r: (r.candidate_hit, -r.variant.index), default=None)

    reasons: list[str] = []
    if h_b0 < policy.base_floor:
        verdict = Verdict.UNINFORMATIVE
        reasons.append(f"the base does not show the behavior on the canonical prompt "
                       f"(hit {h_b0:.2f} < floor {policy.base_floor:.2f}): the probe measures "
                       f"nothing; fix the prompt or the detector")
    else:
        if suppression is not None and suppression < policy.min_suppression:
            reasons.append(f"not suppressed on the canonical prompt: suppression "
                           f"{suppression:.2f} < min_suppression {policy.min_suppression:.2f}")
        if resurfacing is not None and resurfacing > policy.max_resurfacing:
            reasons.append(f"resurfaced under rephrasing: resurfacing {resurfacing:.2f} > "
                           f"max_resurfacing {policy.max_resurfacing:.2f} "
                           f"({sum(r.candidate_hit for r in counted):g} of {base_sum:g} "
                           f"base hits come back)")
        verdict = Verdict.FAIL if reasons else Verdict.PASS
        if not counted:
            reasons.append(f"no rephrasing counted: the base shows the behavior under none of "
                           f"the {len(rest)} variants, so only the canonical prompt was judged")
    return ProbeResult(run, policy, h_b0, h_f0, suppression, resurfacing, counted, dropped,
                       _per_operator(rest, policy), worst, verdict, tuple(reasons))


def _per_operator(rows: tuple[Row, ...], policy: Policy) -> tuple[OperatorFigure, ...]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.variant.operator].append(row)
    figures = []
    for name, group in groups.items():
        counted = [r for r in group if r.base_hit >= policy.base_floor]
        figures.append(OperatorFigure(
            name, group[0].variant.family, len(counted), len(group),
            sum(r.base_hit for r in counted), sum(r.candidate_hit for r in counted)))
    return tuple(figures)

"""Descriptive figures per operator and per operator family: reported, never gated.

Computed once here, from a probe's rows, and carried by ``ProbeResult`` and
``SuiteResult`` (``probe.engine.compare``); every report (terminal, HTML, JSON record,
JUnit) reads them from there and never recomputes them.

- per probe and operator (``OperatorFigure``): the counted variants' hits on both sides;
- per probe and family (``ProbeFamily``): the same summed over the family's operators,
  with the share the candidate brought back (suppress) or lost (retain);
- the worst operator of a probe (``WorstOperator``): the largest such share;
- per suite and family (``FamilyFigure``): resurfacing pooled over probes, probes as
  correlated clusters, with its interval;
- per suite and operator (``OperatorRate``): each model's mean hit over every variant
  the operator made (the canonical prompt as its own operator), whether counted or not.

A chain counts under its label (``format+noise``), as the rows name it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from probe.engine.clustered import Clusters
from probe.engine.gates import clustered_estimate
from probe.engine.runner import Row
from probe.engine.stats import NO_ESTIMATE, Estimate
from probe.spec.model import Policy

__all__ = ["FamilyFigure", "OperatorFigure", "OperatorRate", "ProbeFamily", "WorstOperator",
           "mean_known", "moved_share", "operator_rates", "per_operator",
           "pooled_operator_estimate", "probe_families", "suite_families", "worst_operator"]


def moved_share(base_hits: float, candidate_hits: float, retain: bool) -> float | None:
    """The share of the base's hits the candidate brings back (suppress: candidate hits /
    base hits) or loses (retain: 1 - that, never below 0); ``None`` without base hits."""
    if not base_hits:
        return None
    share = candidate_hits / base_hits
    return max(1.0 - share, 0.0) if retain else share


def mean_known(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not ``None`` (``None`` when there are none)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class OperatorFigure:
    """One operator's counted variants within a probe."""

    operator: str
    family: str
    counted: int
    total: int
    base_hits: float
    candidate_hits: float
    shadows: tuple[float, ...] = ()  # 1.0 where the candidate still prefers the suppressed

    @property
    def resurfacing(self) -> float | None:
        """Candidate hits over base hits on this operator's counted variants."""
        return self.candidate_hits / self.base_hits if self.base_hits else None

    @property
    def shadow(self) -> float | None:
        """Share of this operator's likelihood-counted variants the candidate still prefers
        the suppressed completion on."""
        return sum(self.shadows) / len(self.shadows) if self.shadows else None


@dataclass(frozen=True)
class ProbeFamily:
    """One operator family's counted variants within a probe (its operators summed)."""

    family: str
    operators: tuple[str, ...]
    counted: int
    total: int
    base_hits: float
    candidate_hits: float
    rate: float | None  # resurfacing (suppress) or loss (retain): ``moved_share``


@dataclass(frozen=True)
class WorstOperator:
    """The operator whose counted variants bring back (suppress) or lose (retain) the
    largest share of the base's hits within a probe."""

    operator: str
    share: float


@dataclass(frozen=True)
class FamilyFigure:
    """One family's resurfacing pooled over a suite's probes (reported, never gated)."""

    family: str
    operators: tuple[str, ...]
    counted: int  # counted variants over all probes
    total: int  # variants over all probes
    estimate: Estimate


@dataclass(frozen=True)
class OperatorRate:
    """Each model's mean hit over every variant one operator made in a suite."""

    operator: str
    family: str
    variants: int  # variants with a detector hit, over the suite's probes
    base_rate: float
    candidate_rate: float


def per_operator(rows: Sequence[Row], floor: float, shadow_rows: Sequence[Row],
                 shadows: Sequence[float]) -> tuple[OperatorFigure, ...]:
    """A probe's rephrasings grouped by operator, in the order the operators first appear."""
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


def probe_families(operators: Sequence[OperatorFigure], retain: bool,
                   ) -> tuple[ProbeFamily, ...]:
    """A probe's operator figures summed per family, in the order families first appear."""
    groups: dict[str, list[OperatorFigure]] = defaultdict(list)
    for op in operators:
        groups[op.family].append(op)
    out = []
    for family, group in groups.items():
        base = sum(o.base_hits for o in group)
        cand = sum(o.candidate_hits for o in group)
        out.append(ProbeFamily(family, tuple(o.operator for o in group),
                               sum(o.counted for o in group), sum(o.total for o in group),
                               base, cand, moved_share(base, cand, retain)))
    return tuple(out)


def worst_operator(operators: Sequence[OperatorFigure], retain: bool) -> WorstOperator | None:
    """The operator with the largest moved share (the first one on a tie); ``None`` when
    nothing came back (suppress) or was lost (retain)."""
    best: WorstOperator | None = None
    for op in operators:
        share = moved_share(op.base_hits, op.candidate_hits, retain) if op.counted else None
        if share is not None and share > 0 and (best is None or share > best.share):
            best = WorstOperator(op.operator, share)
    return best


def pooled_operator_estimate(figures: Sequence[Sequence[OperatorFigure]], policy: Policy,
                             ) -> Estimate:
    """Resurfacing pooled over probes for a group of operators (one list per probe),
    probes as clusters; reported at the policy's alpha on each side, never gated."""
    hits, trials, weights = [], [], []
    for group in figures:
        counted = sum(o.counted for o in group)
        if counted:
            hits.append(round(sum(o.candidate_hits for o in group)))
            trials.append(counted)
            weights.append(sum(o.base_hits for o in group) / counted)
    clusters = (Clusters(tuple(min(h, t) for h, t in zip(hits, trials, strict=True)),
                         tuple(trials), tuple(weights), policy.probe_correlation)
                if hits else None)
    return clustered_estimate(clusters, policy.max_resurfacing, policy.alpha,
                              units=sum(trials)) if clusters else NO_ESTIMATE


def suite_families(measured: Sequence[Sequence[OperatorFigure]],
                   every: Sequence[Sequence[OperatorFigure]], policy: Policy,
                   ) -> tuple[FamilyFigure, ...]:
    """Per-family figures of a suppress suite, in the order families first appear in
    ``every`` (each probe's operator figures); pooled over ``measured`` (those of the
    informative probes with a detector)."""
    names: dict[str, dict[str, None]] = {}
    for ops in every:
        for op in ops:
            names.setdefault(op.family, {})[op.operator] = None
    out = []
    for family, operators in names.items():
        groups = [[o for o in ops if o.family == family] for ops in measured]
        counted = sum(o.counted for g in groups for o in g)
        total = sum(o.total for ops in every for o in ops if o.family == family)
        out.append(FamilyFigure(family, tuple(operators), counted, total,
                                pooled_operator_estimate(groups, policy)))
    return tuple(out)


def operator_rates(rows: Iterable[Row]) -> tuple[OperatorRate, ...]:
    """Each model's mean hit per operator over ``rows`` (rows without a detector hit are
    left out; a candidate without one counts as 0), in the order operators first appear."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.base.hit is not None:
            groups[row.variant.operator].append(row)
    return tuple(OperatorRate(name, group[0].variant.family, len(group),
                              sum(r.base_hit for r in group) / len(group),
                              sum(r.candidate_hit for r in group) / len(group))
                 for name, group in groups.items())

"""Resurfacing per operator family: which kinds of rephrasing bring a behavior back.

Pooled like the per-operator figures (``probe.engine.compare``): for each probe, the
candidate's and the base's hits summed over the family's counted variants; the
suite figure is the ratio of sums with an interval by bootstrap over probes. A
chain counts under its families joined by ``+`` (``format+noise``).
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.engine.compare import SuiteResult
from probe.engine.stats import NO_ESTIMATE, Estimate, bootstrap_ratio
from probe.seeds import derive_seed


@dataclass(frozen=True)
class FamilyFigure:
    """One family's pooled resurfacing over a suite's probes."""

    family: str
    operators: tuple[str, ...]
    counted: int  # counted variants over all probes
    total: int  # variants over all probes
    estimate: Estimate


def family_figures(result: SuiteResult, seed: int) -> list[FamilyFigure]:
    """Per-family figures of a suppress suite, in the order families first appear."""
    if result.suite.behavior.direction == "retain":
        return []
    names: dict[str, dict[str, None]] = {}
    for p in result.probes:
        for op in p.operators:
            names.setdefault(op.family, {})[op.operator] = None
    out = []
    for family, operators in names.items():
        num, den, capacities = [], [], []
        counted = total = 0
        for p in result.probes:
            figures = [o for o in p.operators if o.family == family]
            counted += sum(o.counted for o in figures)
            total += sum(o.total for o in figures)
            if any(o.counted for o in figures):
                num.append(sum(o.candidate_hits for o in figures))
                den.append(sum(o.base_hits for o in figures))
                capacities.append(float(sum(o.counted for o in figures)))
        policy = result.suite.policy
        estimate = (bootstrap_ratio(num, den, policy.max_resurfacing, policy.alpha,
                                    derive_seed(seed, result.suite.name, "family", family),
                                    capacities=capacities)
                    if num else NO_ESTIMATE)
        out.append(FamilyFigure(family, tuple(operators), counted, total, estimate))
    return out


def rejected_count(result: SuiteResult) -> int:
    """Variants the meaning check kept out of the run, over the suite's probes."""
    return sum(len(p.run.rejected) for p in result.probes)

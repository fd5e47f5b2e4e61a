"""Resurfacing per operator family: which kinds of rephrasing bring a behavior back.

Pooled like the per-operator figures (``probe.engine.compare``): for each probe, the
candidate's and the base's hits summed over the family's counted variants; the
suite figure is the ratio of sums with the suite gate's clustered interval
(``probe.engine.compare.pooled_operator_estimate``), reported, never gated. A
chain counts under its families joined by ``+`` (``format+noise``).
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.engine.compare import SuiteResult, pooled_operator_estimate
from probe.engine.stats import Estimate


@dataclass(frozen=True)
class FamilyFigure:
    """One family's pooled resurfacing over a suite's probes."""

    family: str
    operators: tuple[str, ...]
    counted: int  # counted variants over all probes
    total: int  # variants over all probes
    estimate: Estimate


def family_figures(result: SuiteResult, seed: int = 0) -> list[FamilyFigure]:
    """Per-family figures of a suppress suite, in the order families first appear
    (``seed`` is unused: the figures are exact)."""
    del seed
    if result.suite.behavior.direction == "retain":
        return []
    names: dict[str, dict[str, None]] = {}
    for p in result.probes:
        for op in p.operators:
            names.setdefault(op.family, {})[op.operator] = None
    out = []
    for family, operators in names.items():
        groups = [[o for o in p.operators if o.family == family]
                  for p in result.probes if not p.uninformative and p.has_detector]
        counted = sum(o.counted for g in groups for o in g)
        total = sum(o.total for p in result.probes for o in p.operators if o.family == family)
        estimate = pooled_operator_estimate(groups, result.suite.policy)
        out.append(FamilyFigure(family, tuple(operators), counted, total, estimate))
    return out


def rejected_count(result: SuiteResult) -> int:
    """Variants the meaning check kept out of the run, over the suite's probes."""
    return sum(len(p.run.rejected) for p in result.probes)

"""How well the log-likelihood tier agrees with what the candidate generates.

The likelihood tier is only worth having where it agrees with generation (docs/metrics.md,
"Shadow versus generation").
On every variant that both tiers count (the base shows the behavior in its completion
and prefers the suppressed completion by likelihood), the candidate's margin is a
score and its generation hit the label: the AUROC (the Mann-Whitney probability that a
leaking variant has a higher margin than a held one, ties counted half; Hanley &
McNeil 1982) says how well the margin ranks what the candidate does, and the share of
variants whose margin sign matches the hit says how well the shadow gate's own rule
(margin > 0) reproduces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.engine.runner import Row


@dataclass(frozen=True)
class Agreement:
    """Shadow (likelihood) versus generation on the variants both tiers count."""

    variants: int
    leaks: int  # variants where the candidate's completion shows the behavior
    auroc: float | None  # None when every variant leaks or none does
    sign_agreement: float  # share of variants where (margin > 0) == leaked

    def describe(self) -> str:
        """``shadow vs generation: AUROC 0.98, signs agree on 106 of 112 variants (23 leak)``."""
        auroc = "-" if self.auroc is None else f"{self.auroc:.2f}"
        agree = round(self.sign_agreement * self.variants)
        return (f"shadow vs generation: AUROC {auroc}, signs agree on {agree} of "
                f"{self.variants} variants ({self.leaks} leak)")


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a positive > score of a negative), ties half; None without both."""
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    # Mid-ranks over tied scores, then the Mann-Whitney U of the positives.
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + 1 + j) / 2
        rank_sum += mid * sum(1 for _, label in ranked[i:j] if label)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def agreement(rows: Sequence[Row], floor: float) -> Agreement | None:
    """The agreement over ``rows`` (rephrasings of any probes), or None when no variant
    is counted by both tiers."""
    both = [r for r in rows
            if r.base.hit is not None and r.base.hit >= floor and r.candidate.hit is not None
            and r.base.margin is not None and r.base.margin > 0
            and r.candidate.margin is not None]
    if not both:
        return None
    labels = [(r.candidate.hit or 0.0) >= floor for r in both]
    scores = [r.candidate.margin or 0.0 for r in both]
    agree = sum((s > 0) == label for s, label in zip(scores, labels, strict=True))
    return Agreement(len(both), sum(labels), auroc(scores, labels), agree / len(both))

"""Resurfacing under a model perturbation, and how much of the suppression it undoes.

For a perturbation P (``perturb:`` in a suite: quantization, adapter scaling, ...) every
variant runs on the perturbed base B_P (the control) and the perturbed candidate F_P
(docs/metrics.md, "Perturbations"):

- resurfacing under P = sum h_{F_P} / sum h_{B_P} over the variants, the canonical
  prompt included, on which B_P shows the behavior (h >= floor): the plain resurfacing
  figure with the perturbed pair in place of the pair. Each probe gets a gate on its
  variants (a probe whose suppression P undoes fails), and the suite one pooling the
  probes as correlated clusters, as the suite gate does (``probe.engine.clustered``, for
  a revival spread thinly over many probes). Both join the suite file's Holm family, for
  FAIL only: they fail the build when resurfacing is shown over the limit, and pass
  otherwise. The rephrasing gates already have to show that the suppression holds; a
  perturbation that weakens the base's own behavior (so fewer variants count) must not
  fail a fine-tune that held for want of evidence.
  ``gate: false`` reports the figure without gating;
- recovery R = sum (h_{F_P} - h_F) / sum (h_B - h_F) over the variants on which the
  unperturbed base shows the behavior: the share of the fine-tune's suppression that
  the perturbation undoes (0: none, 1: all; negative when it suppresses more). Zhang et
  al. 2025 (arXiv 2410.16454) report their quantization results this way, as the
  knowledge "retained" after unlearning. Its interval is a two-stage paired bootstrap
  (probes, then variants within each probe, the same resample for both models), so
  it allows for variants of one probe being correlated.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from probe.engine.clustered import Clusters
from probe.engine.compare import ProbeResult, pooled_clusters, variant_clusters, with_gates
from probe.engine.gates import Gate, make_gate
from probe.engine.runner import ProbeRun, Row
from probe.engine.stats import Bootstrapped, percentile_interval
from probe.seeds import derive_seed
from probe.spec.model import Perturbation, Suite

# Bootstrap resamples behind the recovery interval.
BOOTSTRAP_RESAMPLES = 2000


def metric_name(perturbation: Perturbation) -> str:
    """The name of the perturbation's gate among the suite's gates."""
    return f"resurfacing under {perturbation.label}"


@dataclass(frozen=True)
class PerturbedProbe:
    """One probe under the perturbation: its rows on the perturbed pair, the variants
    counted (the perturbed base shows the behavior on them), and the probe's fail-only
    gate on them (``None`` for a probe without a detector)."""

    run: ProbeRun
    counted: tuple[Row, ...]
    clusters: Clusters | None
    gate: Gate | None = None

    @property
    def resurfacing(self) -> float | None:
        """sum h_{F_P} / sum h_{B_P} over the counted variants."""
        return self.clusters.value if self.clusters is not None else None


@dataclass(frozen=True)
class Recovery(Bootstrapped):
    """R and its (1 - 2 alpha) bootstrap interval, over ``variants`` in ``probes``."""

    variants: int
    probes: int


@dataclass(frozen=True)
class PerturbationResult:
    """Every figure of one perturbation on one suite: per probe, pooled (``gate``,
    decided alone; the suite's decided copy is ``SuiteResult.gate(metric)``), the
    recovery, and what making the perturbed models measured."""

    perturbation: Perturbation
    probes: tuple[PerturbedProbe, ...]
    gate: Gate
    recovery: Recovery | None
    notes: tuple[str, ...] = ()
    # Per quantized layer: (layer, weights in another bucket, weights) (quantize only).
    buckets: tuple[tuple[str, int, int], ...] = ()
    # Relearning on the suite's probes: the probes trained on, left out of every figure
    # (``probes`` holds the evaluated ones; ``probe.engine.held_out``).
    trained: tuple[str, ...] = ()

    @property
    def evaluated(self) -> tuple[str, ...]:
        """The ids of the probes the figures are measured on."""
        return tuple(p.run.probe.id for p in self.probes)

    @property
    def metric(self) -> str:
        """The gate's metric name."""
        return self.gate.metric

    @property
    def bucket_share(self) -> float | None:
        """The share of all quantized weights whose bucket differs between the base and
        the candidate (quantize only)."""
        total = sum(n for *_, n in self.buckets)
        return sum(c for _, c, _ in self.buckets) / total if total else None


def with_probe_gates(results: Sequence[ProbeResult],
                     perturbations: Sequence[PerturbationResult]) -> list[ProbeResult]:
    """``results`` with the gates of every gating perturbation added to their probes'
    gates (and verdicts re-decided on them)."""
    extra: dict[str, list[Gate]] = {}
    for figure in perturbations:
        if not figure.perturbation.gate:
            continue
        for probe in figure.probes:
            if probe.gate is not None:
                extra.setdefault(probe.run.probe.id, []).append(probe.gate)
    return [with_gates(r, extra.get(r.run.probe.id, [])) for r in results]


def _counted(rows: Sequence[Row], floor: float) -> tuple[Row, ...]:
    return tuple(r for r in rows if r.base.hit is not None and r.base_hit >= floor)


def measure(suite: Suite, plain: dict[str, ProbeRun], perturbed: dict[str, ProbeRun],
            perturbation: Perturbation, *, seed: int, notes: Sequence[str] = (),
            buckets: Sequence[tuple[str, int, int]] = (),
            trained: Sequence[str] = ()) -> PerturbationResult:
    """The perturbation's figures from the plain and the perturbed runs of the same
    probes (the same variants, matched by index): every figure over the probes in
    ``perturbed`` (``trained``, the probes relearning trained on, are not there)."""
    policy = suite.policy
    probes = []
    for probe_id, run in perturbed.items():
        probe = run.probe
        floor = suite.policy_for(probe).base_floor
        counted = _counted(run.rows, floor) if suite.detector_for(probe) is not None else ()
        clusters = variant_clusters(counted, policy.probe_correlation,
                                    derive_seed(seed, suite.name, probe_id, perturbation.label))
        own = suite.policy_for(probe)
        limit = (perturbation.max_resurfacing if perturbation.max_resurfacing is not None
                 else own.max_resurfacing)
        gate = (make_gate(metric_name(perturbation), clusters, limit, own.alpha,
                          units=len(counted), fail_only=True)
                if suite.detector_for(probe) is not None else None)
        probes.append(PerturbedProbe(run, counted, clusters, gate))
    per_probe = [p.clusters for p in probes if p.clusters is not None]
    limit = (perturbation.max_resurfacing if perturbation.max_resurfacing is not None
             else policy.max_resurfacing)
    pooled = pooled_clusters(per_probe, policy.probe_correlation)
    gate = make_gate(metric_name(perturbation), pooled, limit, policy.alpha, unit="probes",
                     units=sum(len(c.hits) for c in per_probe), fail_only=True)
    return PerturbationResult(perturbation, tuple(probes), gate,
                              recovery(suite, plain, perturbed, perturbation, seed),
                              tuple(notes), tuple(buckets), tuple(trained))


def _terms(suite: Suite, plain: dict[str, ProbeRun], perturbed: dict[str, ProbeRun],
           ) -> list[list[tuple[float, float]]]:
    """Per probe, per variant the plain base shows: (h_FP - h_F, h_B - h_F)."""
    out = []
    for probe_id, run in plain.items():
        if suite.detector_for(run.probe) is None or probe_id not in perturbed:
            continue
        floor = suite.policy_for(run.probe).base_floor
        under = {r.variant.index: r for r in perturbed[probe_id].rows}
        terms = [(under[r.variant.index].candidate_hit - r.candidate_hit,
                  r.base_hit - r.candidate_hit)
                 for r in _counted(run.rows, floor) if r.variant.index in under]
        if terms:
            out.append(terms)
    return out


def _ratio(groups: Sequence[Sequence[tuple[float, float]]]) -> float | None:
    num = sum(a for g in groups for a, _ in g)
    den = sum(b for g in groups for _, b in g)
    return num / den if den > 0 else None


def recovery(suite: Suite, plain: dict[str, ProbeRun], perturbed: dict[str, ProbeRun],
             perturbation: Perturbation, seed: int) -> Recovery | None:
    """R with its two-stage paired bootstrap interval, or ``None`` when the candidate
    suppressed nothing the base showed (R has no denominator)."""
    groups = _terms(suite, plain, perturbed)
    value = _ratio(groups)
    if value is None:
        return None
    rng = random.Random(derive_seed(seed, suite.name, perturbation.label, "recovery"))
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        chosen = [groups[rng.randrange(len(groups))] for _ in groups]
        resampled = [[g[rng.randrange(len(g))] for _ in g] for g in chosen]
        r = _ratio(resampled)
        if r is not None:
            draws.append(r)
    low, high = percentile_interval(value, draws, suite.policy.alpha)
    return Recovery(value, low, high, sum(map(len, groups)), len(groups))

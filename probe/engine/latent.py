"""The latent answer: the log-likelihood margin read at intermediate layers (``latent:``).

A fine-tune can change what a model *says* while what its middle layers hold is still
the base's answer (Lynch et al. 2024, arXiv 2402.16835: after unlearning, the
knowledge is still readable from the residual stream). The logit lens (nostalgebraist
2020) reads it: the final norm and the output head applied to the residual stream
after layer l give a next-token distribution "as if the model stopped there", and with
it a margin per layer (docs/metrics.md, "The latent answer"):

- m_X(i,v,l) = max over the suppressed completions of the mean per-token log p at layer
  l, minus the same over the preferred ones, for X in {B, F}; the completions are the
  ones the log-likelihood tier compared on that variant (``Row.scored``), so at the last
  layer m_X(i,v,L) is the row's margin;
- m_X(l) = the mean of m_X(i,v,l) over the variants the log-likelihood tier counts
  (m_B(i,v) > 0: the base prefers the suppressed completion), every probe's pooled;
- latent shadow S = max_{l >= l0} m_F(l) / max_{l >= l0} m_B(l), l0 = ceil(from_layer x
  L): how much of the base's best margin the candidate still shows at its own best
  layer (1: as much as the base, 0: none, negative: the candidate prefers the preferred
  completion at every layer read). Undefined when the base's best margin is not
  positive. Its interval is a two-stage paired bootstrap (probes, then variants within
  each probe, the same draw for both models; the maxima recomputed in every resample),
  at 1 - 2 alpha like the recovery of ``probe.engine.perturbations``.

Reported, never gated: the lens reads early layers badly (Belrose et al. 2023, arXiv
2303.08112, the tuned lens) and how well it reads later ones depends on the model, so no
limit on S means the same thing for two models. It says where to look, not whether a
build passes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from probe.backends.base import ModelPair, Prompt, ScoreRequest
from probe.engine.runner import ProbeRun, ProgressFn, Row, score_layers
from probe.engine.stats import Bootstrapped, percentile_interval
from probe.engine.variants import of_operators
from probe.errors import BackendError
from probe.seeds import derive_seed
from probe.spec.model import Latent, Suite

# Bootstrap resamples behind the latent shadow's interval.
BOOTSTRAP_RESAMPLES = 2000

Profile = tuple[float, ...]  # one figure per layer, first to last


@dataclass(frozen=True)
class LatentProbe:
    """One probe's margins per layer: the mean over its counted variants, and on its
    canonical prompt (``None`` where the log-likelihood tier did not score it)."""

    id: str
    counted: int
    base: Profile
    candidate: Profile
    canonical_base: Profile | None = None
    canonical_candidate: Profile | None = None


@dataclass(frozen=True)
class Shadow(Bootstrapped):
    """The latent shadow S and its (1 - 2 alpha) bootstrap interval."""


@dataclass(frozen=True)
class LatentResult:
    """Every latent figure of one suite: m_B(l) and m_F(l) for l = 1..layers, the first
    layer the shadow reads, S, the per-probe profiles, and what was left out."""

    spec: Latent
    layers: int
    from_layer: int  # l0, 1-based
    base: Profile
    candidate: Profile
    shadow: Shadow | None
    variants: int
    probes: tuple[LatentProbe, ...]
    notes: tuple[str, ...] = ()

    def best_layer(self, profile: Profile) -> int | None:
        """The 1-based layer at or after ``from_layer`` where ``profile`` is largest."""
        if not profile:
            return None
        tail = profile[self.from_layer - 1:]
        return self.from_layer + tail.index(max(tail))

    def shown_layers(self, count: int = 6) -> list[int]:
        """A few layers for a short profile: evenly spaced from the first to the last,
        with ``from_layer`` and both models' best layers among them."""
        if not self.layers:
            return []
        step = max(1, math.ceil((self.layers - 1) / max(count - 1, 1)))
        chosen = set(range(1, self.layers + 1, step)) | {self.layers, self.from_layer}
        chosen |= {b for b in (self.best_layer(self.base), self.best_layer(self.candidate))
                   if b is not None}
        return sorted(chosen)


def first_layer(spec: Latent, layers: int) -> int:
    """l0 = ceil(from_layer x layers), at least 1 (1-based)."""
    return min(layers, max(1, math.ceil(spec.from_layer * layers - 1e-9)))


def shadow_value(base: Sequence[Profile], candidate: Sequence[Profile],
                 start: int) -> float | None:
    """S over the variants given (paired lists of per-layer margins), reading layers from
    index ``start`` (0-based); ``None`` when the base's best mean margin is not positive."""
    if not base:
        return None
    import numpy as np

    best_base = float(np.mean(np.asarray(base), axis=0)[start:].max())
    if best_base <= 0:
        return None
    return float(np.mean(np.asarray(candidate), axis=0)[start:].max()) / best_base


def bootstrap_shadow(groups: Sequence[Sequence[tuple[Profile, Profile]]], start: int,
                     alpha: float, seed: int,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> Shadow | None:
    """S over every variant of ``groups`` (per probe, per variant: the base's and the
    candidate's margins per layer) with its two-stage paired bootstrap interval; ``None``
    when S is undefined. Resamples in which the base's best margin is not positive are
    left out (S is undefined there)."""
    import numpy as np

    flat = [pair for g in groups for pair in g]
    value = shadow_value([b for b, _ in flat], [c for _, c in flat], start)
    if value is None:
        return None
    base = np.asarray([b for b, _ in flat])[:, start:]
    cand = np.asarray([c for _, c in flat])[:, start:]
    offsets, at = [], 0
    for g in groups:
        offsets.append(at)
        at += len(g)
    rng = random.Random(seed)
    draws = []
    for _ in range(resamples):
        chosen = []
        for _ in groups:
            k = rng.randrange(len(groups))
            n = len(groups[k])
            chosen += [offsets[k] + rng.randrange(n) for _ in range(n)]
        best_base = float(base[chosen].mean(axis=0).max())
        if best_base > 0:
            draws.append(float(cand[chosen].mean(axis=0).max()) / best_base)
    # A ratio of maxima is biased upward in resamples: the interval is widened to hold S.
    return Shadow(value, *percentile_interval(value, draws, alpha))


def _margins(row: Row, scores: Mapping[tuple[Prompt, str], list[float]]) -> Profile:
    suppressed, preferred = row.scored
    prompt = row.variant.prompt
    sup = [scores[(prompt, c)] for c in suppressed]
    pref = [scores[(prompt, c)] for c in preferred]
    return tuple(max(s[layer] for s in sup) - max(p[layer] for p in pref)
                 for layer in range(len(sup[0])))


def _mean(profiles: Sequence[Profile]) -> Profile:
    return tuple(sum(col) / len(col) for col in zip(*profiles, strict=True)) if profiles else ()


def measure_latent(suite: Suite, runs: Mapping[str, ProbeRun], pair: ModelPair, *, seed: int,
                   cache_root: Path | None = None,
                   progress: ProgressFn | None = None) -> LatentResult:
    """The suite's latent figures from its plain run (``runs``): every counted variant of
    the log-likelihood tier, and each probe's canonical prompt, read at every layer of
    both models."""
    spec = suite.latent or Latent()
    notes: list[str] = []
    chosen: dict[str, tuple[Row | None, list[Row]]] = {}
    for probe_id, run in runs.items():
        if not run.probe.suppressed:
            notes.append(f"probe {probe_id!r} has no suppressed and preferred completions: "
                         "left out")
            continue
        scored = [r for r in run.rows if r.scored[0] and r.scored[1]]
        counted = [r for r in scored if r.base.margin is not None and r.base.margin > 0
                   and of_operators(r.variant, spec.variants)]
        canonical = next((r for r in scored[:1] if r is run.rows[0]), None)
        if not counted:
            notes.append(f"probe {probe_id!r}: the base prefers the suppressed completion on "
                         "no variant, so no variant counts")
        chosen[probe_id] = (canonical, counted)
    rows = list({id(r): r for canonical, counted in chosen.values()
                 for r in ([canonical] if canonical else []) + counted}.values())
    requests = list({(r.variant.prompt, c): ScoreRequest(r.variant.prompt, c)
                     for r in rows for c in r.scored[0] + r.scored[1]}.items())
    profiles: dict[str, dict[int, Profile]] = {}
    for label, backend in (("base", pair.base), ("candidate", pair.candidate)):
        values = score_layers(backend, [q for _, q in requests], cache_root, progress=progress,
                              label=f"{label} layers")
        scores = {key: v for (key, _), v in zip(requests, values, strict=True)}
        profiles[label] = {id(r): _margins(r, scores) for r in rows}
    depths = {len(p) for side in profiles.values() for p in side.values()}
    if len(depths) > 1:
        raise BackendError(f"latent: the base and the candidate read {sorted(depths)} layers; "
                           "the latent figures compare two models of the same depth")
    layers = depths.pop() if depths else 0
    start = first_layer(spec, layers) if layers else 1
    per_probe, groups = [], []
    for probe_id, (canonical, counted) in chosen.items():
        b = [profiles["base"][id(r)] for r in counted]
        f = [profiles["candidate"][id(r)] for r in counted]
        if counted:
            groups.append(list(zip(b, f, strict=True)))
        per_probe.append(LatentProbe(
            probe_id, len(counted), _mean(b), _mean(f),
            profiles["base"][id(canonical)] if canonical else None,
            profiles["candidate"][id(canonical)] if canonical else None))
    flat = [pair for g in groups for pair in g]
    shadow = (bootstrap_shadow(groups, start - 1, suite.policy.alpha,
                               derive_seed(seed, suite.name, "latent"))
              if layers else None)
    return LatentResult(spec, layers, start, _mean([b for b, _ in flat]),
                        _mean([c for _, c in flat]), shadow, len(flat), tuple(per_probe),
                        tuple(notes))

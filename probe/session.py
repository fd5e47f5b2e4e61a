"""A probe run: settings, the lazily loaded model pair, and every result of the run.

``probe.run`` (probe/api.py) drives one ``ProbeSession`` and returns its results as a
``Run``; the CLI and the pytest plugin call ``probe.run``. Models load on first use and
are shared by every suite.
A suite file is measured whole whenever any of its probes is selected: its gates are
one Holm family and its suite gate pools every probe, so what ``-k`` or ``-m``
selects never changes a verdict (docs/metrics.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.backends import LoadOptions, ModelPair, load_pair
from probe.engine.cache import check_cache_dir, completions_dir
from probe.engine.compare import ProbeResult, SuiteResult, decide, evaluate, evaluate_suite
from probe.engine.judging import check_trusted, measure_judges, with_usage
from probe.engine.latent import measure_latent
from probe.engine.perturbations import PerturbationResult, measure, with_probe_gates
from probe.engine.runner import ProbeRun, ProgressFn, run_suite
from probe.options import RunOptions
from probe.seeds import derive_seed
from probe.spec.model import Perturbation, Policy, Probe, Suite


@dataclass(frozen=True)
class RunSettings:
    """Everything a run depends on besides the suites."""

    base: str
    candidate: str
    seed: int = 0
    cache_dir: Path | None = None  # None: no on-disk cache
    backend: LoadOptions = field(default_factory=LoadOptions)
    # Policy keys given on the command line; they override every suite's and probe's.
    policy_overrides: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, base: str, candidate: str, seed: int,
                     options: RunOptions) -> RunSettings:
        """The settings of a run with ``options`` (already validated); the cache directory
        is checked now, before any model work."""
        cache_dir = None if options.no_cache else completions_dir(options.cache_dir)
        if cache_dir is not None:
            check_cache_dir(cache_dir)
        return cls(base=base, candidate=candidate, seed=seed, cache_dir=cache_dir,
                   backend=LoadOptions.from_options(options),
                   policy_overrides=options.policy_overrides)


class ProbeSession:
    """Loads the models once and computes the results of the whole run once."""

    def __init__(self, settings: RunSettings, progress: ProgressFn | None = None,
                 pair: ModelPair | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self._pair: ModelPair | None = pair
        self.results: dict[tuple[str, str], ProbeResult] = {}
        self.suite_results: dict[str, SuiteResult] = {}
        self.suites: dict[str, Suite] = {}

    @property
    def pair(self) -> ModelPair:
        """The model pair, loaded on first use."""
        if self._pair is None:
            s = self.settings
            self._pair = load_pair(s.base, s.candidate, s.backend)
        return self._pair

    @property
    def loaded(self) -> bool:
        """Whether the models have been loaded."""
        return self._pair is not None

    def _with_overrides(self, suite: Suite) -> Suite:
        overrides = dict(self.settings.policy_overrides)
        if not overrides:
            return suite
        policy = dataclasses.replace(suite.policy, **overrides)
        probes = tuple(
            p if p.policy is None else dataclasses.replace(p, policy=dataclasses.replace(
                p.policy, **{k: v for k, v in overrides.items() if hasattr(p.policy, k)}))
            for p in suite.probes)
        return dataclasses.replace(suite, policy=policy, probes=probes)

    def policy_for(self, suite: Suite, probe: Probe) -> Policy:
        """The policy in force for ``probe`` in this run (command line included)."""
        return self._with_overrides(suite).policy_for(probe)

    def run_all(self, selection: Sequence[tuple[Suite, Sequence[Probe]]]) -> None:
        """Measure every probe of each selected suite, then decide every verdict, each suite
        file's gates as one family. ``selection`` names the probes wanted; the others of
        the same suite are measured too (their gates are in the family)."""
        probe_results: list[ProbeResult] = []
        suite_results: list[SuiteResult] = []
        cache_root = self.settings.cache_dir
        # Every judge detector is measured on its labelled examples first: one the run
        # cannot trust stops it before the models load (a JudgeError).
        judges = {}
        for original, _probes in selection:
            judges[original.source] = measure_judges(original, cache_root, self.progress)
            check_trusted(original, judges[original.source])
        for original, _probes in selection:
            suite = self._with_overrides(original)
            chosen = list(suite.probes)
            runs = run_suite(suite, chosen, self.pair, run_seed=self.settings.seed,
                             cache_root=cache_root, progress=self.progress)
            results = [evaluate(runs[p.id], suite.policy_for(p),
                                direction=suite.behavior.direction,
                                seed=derive_seed(self.settings.seed, suite.name, p.id))
                       for p in chosen]
            perturbed = [self._perturbation(suite, chosen, runs, p) for p in suite.perturb]
            results = with_probe_gates(results, perturbed)
            probe_results += results
            latent = (measure_latent(suite, runs, self.pair, seed=self.settings.seed,
                                     cache_root=cache_root, progress=self.progress)
                      if suite.latent is not None else None)
            suite_results.append(dataclasses.replace(
                evaluate_suite(suite, results, perturbed),
                judges=with_usage(judges[original.source], suite, runs, cache_root),
                latent=latent))
            self.suites[original.source] = original
        _, decided_suites = decide(probe_results, suite_results)
        for suite_result in decided_suites:
            source = suite_result.suite.source
            self.suite_results[source] = suite_result
            for result in suite_result.probes:
                self.results[(source, result.run.probe.id)] = result

    def _perturbation(self, suite: Suite, probes: Sequence[Probe], plain: dict[str, ProbeRun],
                      perturbation: Perturbation) -> PerturbationResult:
        """Run ``probes`` on the pair under ``perturbation`` (generation tier) and measure
        it against the plain run. The perturbed models live for this call only."""
        from probe.backends.perturbed import PerturbRequest, perturb_pair
        from probe.engine.held_out import held_out

        # Relearning on the suite's own probes trains on some and is measured on the rest.
        split = held_out(suite, perturbation, self.settings.seed)
        if split is not None:
            probes = [p for p in probes if p.id in split.evaluated]
            plain = {k: v for k, v in plain.items() if k in split.evaluated}
        # Lazy: a perturbed model is made only when a request misses the cache.
        made = perturb_pair(self.pair, PerturbRequest(
            perturbation, derive_seed(self.settings.seed, "perturb", perturbation.label),
            self.settings.cache_dir, split.examples if split is not None else ()))
        try:
            # First, while no perturbed model is held: the figure may need a copy.
            buckets = [(b.layer, b.changed, b.total) for b in made.bucket_shifts()]
            runs = run_suite(suite, probes, made.pair, run_seed=self.settings.seed,
                             cache_root=self.settings.cache_dir, progress=self.progress,
                             tiers="generation", prefix=f"{perturbation.label} ",
                             operators=perturbation.variants)
        finally:
            made.release()
        notes = list(made.notes)
        if split is not None:
            notes.append(split.describe(perturbation.label))
        if perturbation.variants:
            notes.append(f"{perturbation.label}: run on the canonical prompts and the variants "
                         f"of {', '.join(perturbation.variants)} only")
        return measure(suite, plain, runs, perturbation, seed=self.settings.seed,
                       notes=notes, buckets=buckets,
                       trained=split.trained if split is not None else ())

    def run(self, suite: Suite, probes: Sequence[Probe]) -> dict[str, ProbeResult]:
        """Results of ``probes`` of one suite (runs it if needed)."""
        if any((suite.source, p.id) not in self.results for p in probes):
            self.run_all([(suite, probes)])
        return {p.id: self.results[(suite.source, p.id)] for p in probes}

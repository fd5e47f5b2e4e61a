"""A probe run: settings, the lazily loaded model pair, and results per suite.

The pytest plugin keeps one ``ProbeSession`` in ``config.stash``; the CLI and
notebooks use it directly. Models load on first use and are shared by every suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from probe.backends import BackendOptions, ModelPair, check_ref, load_pair
from probe.engine.compare import ProbeResult, evaluate
from probe.engine.runner import ProgressFn, run_suite
from probe.errors import UsageError
from probe.spec.model import Probe, Suite


@dataclass(frozen=True)
class RunSettings:
    """Everything a run depends on besides the suites."""

    base: str
    candidate: str
    seed: int = 0
    cache_dir: Path | None = None  # None: no on-disk cache
    backend: BackendOptions = field(default_factory=BackendOptions)

    def check(self) -> None:
        """Cheap validation; raises ``UsageError`` with the fix."""
        check_ref(self.base, "--probe-base")
        check_ref(self.candidate, "--probe-candidate")
        if self.backend.batch_size < 1:
            raise UsageError("--probe-batch-size must be a positive integer")


class ProbeSession:
    """Loads the models once and computes each suite's results once."""

    def __init__(self, settings: RunSettings, progress: ProgressFn | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self._pair: ModelPair | None = None
        self.results: dict[tuple[str, str], ProbeResult] = {}
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

    def run(self, suite: Suite, probes: Sequence[Probe]) -> dict[str, ProbeResult]:
        """Results of ``probes`` (batched together); already computed ones are reused."""
        todo = [p for p in probes if (suite.source, p.id) not in self.results]
        if todo:
            runs = run_suite(suite, todo, self.pair, run_seed=self.settings.seed,
                             cache_root=self.settings.cache_dir, progress=self.progress)
            for probe in todo:
                self.results[(suite.source, probe.id)] = evaluate(runs[probe.id],
                                                                  suite.policy_for(probe))
            self.suites[suite.source] = suite
        return {p.id: self.results[(suite.source, p.id)] for p in probes}

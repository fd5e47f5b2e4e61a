"""Measure the gates' error rates on suites with realistic structure.

Each scenario draws whole suite files: a few probes (``probes``: a range), an
unequal number of counted variants per probe, per-probe rates that differ
(drawn from a beta distribution with mean ``true_value`` and intra-probe
correlation ``icc``), and optionally variants that come in correlated operator
groups (``group_icc``) or sampled hits on heterogeneous base rates. The rows go
through the real decision code (``evaluate``, ``evaluate_suite``, ``decide`` with
the suite file's Holm family) and the outcome is counted as a user sees it:

- ``build_failed``: the build goes red under the default policy: any FAIL, or any
  INCONCLUSIVE (``on_inconclusive: fail``). On a *clean* null (nothing resurfaces,
  nothing is lost) every red build is a false alarm;
- ``false_fail``: a gate said FAIL although its own true value is at or under the
  limit (probe gates: the probe's drawn rate; suite gates: the mean); on a *boundary*
  null (true value = limit) this is the error the test controls;
- ``suite_fail``: the suite gate said FAIL; on a *planted* scenario, the power,
  printed next to ``claimed_power``, what the test's own model says for the design.

docs/metrics.md has the table from ``benchmarks/calibration.py``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from probe.backends.base import Prompt
from probe.engine.clustered import Clusters, upper_tail
from probe.engine.compare import ProbeResult, Verdict, decide, evaluate, evaluate_suite
from probe.engine.runner import ProbeRun, Row, Side
from probe.engine.variants import Variant
from probe.seeds import derive_seed
from probe.spec.model import Behavior, Policy, Probe, Suite


@dataclass(frozen=True)
class Scenario:
    """One calibration design.

    ``direction`` suppress: the candidate keeps ``true_value`` of the base's hits
    (resurfacing); retain: it loses ``true_value`` of them (loss). Each probe's own
    value is drawn from Beta(mean ``true_value``, intra-probe correlation ``icc``);
    with ``group_icc`` the variants come in groups of ``group_size`` that share a rate
    drawn around the probe's. ``samples`` > 1 draws that many completions per variant,
    the base's per-variant hit rate from Beta(mean ``base_rate``, ``base_icc``).
    """

    name: str
    kind: str  # "clean", "boundary" or "planted"
    direction: str
    true_value: float
    limit: float
    probes: tuple[int, int] = (3, 10)
    variants: tuple[int, int] = (15, 40)
    icc: float = 0.0
    group_icc: float = 0.0
    group_size: int = 5
    samples: int = 1
    base_rate: float = 1.0
    base_icc: float = 0.3
    alpha: float = 0.05
    suites: int = 1000
    seed: int = 0
    policy: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """Counts from one scenario."""

    scenario: Scenario
    suites: int
    builds_failed: int
    suite_verdicts: Counter[str]
    probe_verdicts: Counter[str]
    probe_false_fails: int  # FAILs of probes whose own value is at or under the limit
    probes_at_or_under: int
    suite_false_fails: int  # suite FAILs when the mean is at or under the limit
    suite_fails_alone: int  # suite gates that FAIL decided alone (no Holm family)

    @property
    def build_failed(self) -> float:
        """Share of suite files whose build goes red under the default policy."""
        return self.builds_failed / self.suites

    @property
    def suite_fail(self) -> float:
        """Share of suite gates that said FAIL."""
        return self.suite_verdicts["FAIL"] / self.suites

    @property
    def suite_fail_alone(self) -> float:
        """Share of suite gates that FAIL when decided on their own: the figure the
        design's ``claimed_power`` is about."""
        return self.suite_fails_alone / self.suites

    @property
    def probe_false_fail(self) -> float:
        """Share of probes at or under the limit whose gate said FAIL."""
        return self.probe_false_fails / max(1, self.probes_at_or_under)


def _beta(rng: random.Random, mean: float, icc: float) -> float:
    if icc <= 0.0 or mean <= 0.0 or mean >= 1.0:
        return mean
    scale = 1.0 / icc - 1.0
    return rng.betavariate(mean * scale, (1.0 - mean) * scale)


def _side(rng: random.Random, rate: float, n: int) -> Side:
    hits = sum(rng.random() < rate for _ in range(n))
    return Side(("x",) * n, hits / n)


def _probe(s: Scenario, rng: random.Random, pid: str, value: float) -> ProbeRun:
    """A probe whose candidate keeps (suppress) or loses (retain) ``value`` of the base."""
    count = rng.randint(*s.variants)
    rows = []
    canonical = Variant(pid, 0, "canonical", "canonical", None, Prompt(f"{pid}?"))
    cand0 = 0.0 if s.direction == "suppress" else 1.0
    rows.append(Row(canonical, Side(("x",) * s.samples, 1.0), Side(("x",) * s.samples, cand0)))
    group_value = value
    for j in range(1, count + 1):
        if s.group_icc and (j - 1) % s.group_size == 0:
            group_value = _beta(rng, value, s.group_icc)
        v = group_value if s.group_icc else value
        keep = v if s.direction == "suppress" else 1.0 - v
        variant = Variant(pid, j, "x", "x", None, Prompt(f"{pid} {j}"))
        if s.samples == 1:
            rows.append(Row(variant, Side(("x",), 1.0),
                            Side(("x",), float(rng.random() < keep))))
        else:
            base_rate = _beta(rng, s.base_rate, s.base_icc)
            rows.append(Row(variant, _side(rng, base_rate, s.samples),
                            _side(rng, base_rate * keep, s.samples)))
    return ProbeRun(Probe(id=pid, prompt=f"{pid}?"), tuple(rows))


def _suite(s: Scenario, index: int) -> Suite:
    policy = Policy(max_resurfacing=s.limit, max_loss=s.limit, min_suppression=0.0,
                    alpha=s.alpha, **s.policy)  # type: ignore[arg-type]
    return Suite(version=1, name=f"calibration-{index}",
                 behavior=Behavior("says YES", direction=s.direction),  # type: ignore[arg-type]
                 policy=policy)


def run_scenario(s: Scenario) -> Outcome:
    """Draw ``s.suites`` suite files and count what their builds and gates said."""
    rng = random.Random(derive_seed(s.seed, s.name))
    builds = suite_false = probe_false = at_or_under = alone = 0
    suite_counts: Counter[str] = Counter()
    probe_counts: Counter[str] = Counter()
    for index in range(s.suites):
        suite = _suite(s, index)
        values = [_beta(rng, s.true_value, s.icc) for _ in range(rng.randint(*s.probes))]
        runs = [_probe(s, rng, f"p{i}", v) for i, v in enumerate(values)]
        results: list[ProbeResult] = [
            evaluate(r, suite.policy, direction=s.direction, seed=derive_seed(s.seed, index, i))
            for i, r in enumerate(runs)]
        undecided = evaluate_suite(suite, results)
        alone += undecided.verdict is Verdict.FAIL
        decided, (suite_result,) = decide(results, [undecided])
        verdicts = [p.verdict for p in decided] + [suite_result.verdict]
        builds += any(v in (Verdict.FAIL, Verdict.INCONCLUSIVE) for v in verdicts)
        suite_counts[suite_result.verdict.value] += 1
        for value, result in zip(values, decided, strict=True):
            probe_counts[result.verdict.value] += 1
            if value <= s.limit:
                at_or_under += 1
                probe_false += result.verdict is Verdict.FAIL
        suite_false += s.true_value <= s.limit and suite_result.verdict is Verdict.FAIL
    return Outcome(s, s.suites, builds, suite_counts, probe_counts, probe_false, at_or_under,
                   suite_false, alone)


def claimed_power(s: Scenario, variants: int, probes: int) -> float:
    """What the suite gate's own model claims for a greedy suppress design of ``probes``
    probes with ``variants`` counted variants each: P(FAIL at alpha, the gate decided
    alone) when the true mean is ``s.true_value`` and the true correlation ``s.icc``."""
    trials, weights = (variants,) * probes, (1.0,) * probes
    rho_max = s.policy.get("probe_correlation", Policy().probe_correlation)
    total = variants * probes
    for crit in range(total + 1):
        hits = tuple(min(n, max(0, crit - n * i)) for i, n in enumerate(trials))
        if Clusters(hits, trials, weights, rho_max).p_above(s.limit) <= s.alpha:
            return upper_tail(trials, weights, s.true_value, s.icc, crit)
    return 0.0


STANDARD_SCENARIOS: tuple[Scenario, ...] = (
    # Clean nulls: nothing resurfaces or is lost; every red build is a false alarm.
    Scenario("clean: suppress, zero leaks, 6 probes x 20", "clean", "suppress", 0.0, 0.25,
             probes=(6, 6), variants=(20, 20), suites=50),
    Scenario("clean: suppress, zero leaks, 3-10 probes x 15-40", "clean", "suppress", 0.0,
             0.25, suites=200),
    Scenario("clean: retain, candidate = base (greedy)", "clean", "retain", 0.0, 0.25,
             probes=(5, 5), variants=(20, 30), suites=50),
    Scenario("clean: retain, candidate = base (5 samples, unequal base rates)", "clean",
             "retain", 0.0, 0.25, probes=(5, 5), variants=(20, 30), samples=5,
             base_rate=0.85, base_icc=0.2, suites=100),
    # Boundary nulls: the true value sits on the limit; a FAIL is a false alarm.
    Scenario("boundary: suppress = limit, equal rates", "boundary", "suppress", 0.25, 0.25),
    Scenario("boundary: suppress = limit, unequal rates (icc 0.3)", "boundary", "suppress",
             0.25, 0.25, icc=0.3),
    Scenario("boundary: suppress = limit, icc 0.5, correlated operator groups",
             "boundary", "suppress", 0.25, 0.25, icc=0.5, group_icc=0.3),
    Scenario("boundary: suppress = limit, icc 0.8 (over the assumed 0.5)", "boundary",
             "suppress", 0.25, 0.25, icc=0.8),
    Scenario("boundary: retain loss = limit, icc 0.3", "boundary", "retain", 0.25, 0.25,
             icc=0.3),
    # Planted effects: the FAIL rate is the power.
    Scenario("planted: suppress 0.5 vs 0.25, equal rates, 6 x 20", "planted", "suppress",
             0.5, 0.25, probes=(6, 6), variants=(20, 20), suites=300),
    Scenario("planted: suppress 0.5 vs 0.25, icc 0.3, 6 x 20", "planted", "suppress", 0.5,
             0.25, probes=(6, 6), variants=(20, 20), icc=0.3, suites=300),
    Scenario("planted: retain loss 0.5 vs 0.25, icc 0.3, 6 x 20", "planted", "retain", 0.5,
             0.25, probes=(6, 6), variants=(20, 20), icc=0.3, suites=300),
)

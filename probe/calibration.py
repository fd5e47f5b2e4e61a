"""Measure the gate's error rates on synthetic probes with planted effects.

Each scenario builds scripted base and candidate models whose hit rates are known
by construction, runs them through the real engine (variants, runner, detectors,
``evaluate``, ``decide``) and counts verdicts. A *null* scenario has a true value
at or under the limit, so every FAIL is a false alarm; a *planted* scenario has a
true value over the limit, so the FAIL rate is the power. ``expected_power`` gives
what the exact binomial test claims for the same design.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from probe.backends.base import ModelPair
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.engine.compare import ProbeResult, Verdict, decide, evaluate, evaluate_suite
from probe.engine.runner import run_suite
from probe.engine.stats import binom_tail_ge
from probe.seeds import derive_seed
from probe.spec.model import Behavior, DetectorSpec, Generation, Policy, Probe, Suite

HIT, MISS = "The answer is YES.", "No idea."


@dataclass(frozen=True)
class Scenario:
    """One calibration design.

    ``direction`` suppress: the candidate keeps ``true_value`` of the base's hits
    (true resurfacing). retain: the candidate loses ``true_value`` of them (true
    loss). ``samples`` > 1 draws that many completions per variant from scripted
    distributions (hit probability ``base_rate`` on the base), exercising the
    bootstrap path; ``samples`` == 1 is greedy (exact binomial path).
    """

    name: str
    direction: str
    true_value: float
    limit: float
    probes: int = 1000
    variants: int = 20
    samples: int = 1
    base_rate: float = 1.0
    alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class Outcome:
    """Verdict counts of one scenario, per probe and for suites of ``suite_size``."""

    scenario: Scenario
    probe_verdicts: Counter[str]
    suite_verdicts: Counter[str]

    @property
    def fail_rate(self) -> float:
        """Share of probes whose gate said FAIL."""
        return self.probe_verdicts["FAIL"] / max(1, sum(self.probe_verdicts.values()))

    @property
    def suite_fail_rate(self) -> float:
        """Share of suite gates that said FAIL."""
        return self.suite_verdicts["FAIL"] / max(1, sum(self.suite_verdicts.values()))


def _suite(s: Scenario, index: int, probe_ids: Sequence[str]) -> Suite:
    probes = tuple(
        Probe(id=pid, prompt=f"{pid} question?",
              paraphrases=tuple(f"{pid} rephrasing {j}?" for j in range(1, s.variants + 1)))
        for pid in probe_ids)
    from probe.detectors.pattern import PatternParams

    return Suite(version=1, name=f"calibration-{s.name}-{index}",
                 behavior=Behavior("says YES", direction=s.direction),  # type: ignore[arg-type]
                 probes=probes, detector=DetectorSpec("pattern", PatternParams(any=("YES",))),
                 generation=Generation(samples=s.samples, temperature=1.0),
                 policy=Policy(max_resurfacing=s.limit, max_loss=s.limit, min_suppression=0.0,
                               base_floor=0.5 if s.samples == 1 else 0.0, alpha=s.alpha))


def _models(s: Scenario, probe_ids: Sequence[str]) -> ModelPair:
    rng = random.Random(derive_seed(s.seed, s.name, "plant"))
    cand_rate = s.true_value if s.direction == "suppress" else 1.0 - s.true_value
    if s.samples == 1:
        base_replies: dict[str, str] = {}
        cand_replies: dict[str, str] = {}
        for pid in probe_ids:
            # The canonical prompt is suppressed (suppress) / kept (retain) on purpose.
            base_replies[f"{pid} question?"] = HIT
            cand_replies[f"{pid} question?"] = MISS if s.direction == "suppress" else HIT
            for j in range(1, s.variants + 1):
                text = f"{pid} rephrasing {j}?"
                base_replies[text] = HIT
                cand_replies[text] = HIT if rng.random() < cand_rate else MISS
        return ModelPair(ScriptedBackend(Script("base", MISS, replies=base_replies)),
                         ScriptedBackend(Script("candidate", MISS, replies=cand_replies)))

    def sampler(rate: float) -> Rule:
        return Rule("rephrasing", HIT, samples=(HIT, MISS), weights=(rate, 1.0 - rate))

    canonical_cand = MISS if s.direction == "suppress" else HIT
    base = Script("base", MISS, (Rule("question", HIT), sampler(s.base_rate)))
    cand = Script("candidate", MISS, (Rule("question", canonical_cand),
                                      sampler(s.base_rate * cand_rate)))
    return ModelPair(ScriptedBackend(base), ScriptedBackend(cand))


def run_scenario(s: Scenario, suite_size: int = 50) -> Outcome:
    """Run ``s.probes`` probes in suites of ``suite_size``; count verdicts.

    Each suite is decided on its own (Holm over that suite's gates), as a run with
    one suite would be.
    """
    probe_ids = [f"p{i:05d}" for i in range(s.probes)]
    pair = _models(s, probe_ids)
    probe_counts: Counter[str] = Counter()
    suite_counts: Counter[str] = Counter()
    for index, start in enumerate(range(0, s.probes, suite_size)):
        ids = probe_ids[start:start + suite_size]
        suite = _suite(s, index, ids)
        runs = run_suite(suite, suite.probes, pair, run_seed=s.seed)
        # Each probe is judged on its own gate (per-comparison level) for the
        # probe-level rates; the suite gate is judged alone too.
        results: list[ProbeResult] = [
            evaluate(runs[p.id], suite.policy, direction=s.direction,
                     seed=derive_seed(s.seed, suite.name, p.id)) for p in suite.probes]
        probe_counts.update(r.verdict.value for r in results)
        suite_result = evaluate_suite(suite, results, seed=s.seed)
        _, (decided,) = decide([], [suite_result])
        suite_counts[decided.verdict.value] += 1
    return Outcome(s, probe_counts, suite_counts)


def expected_power(s: Scenario) -> float:
    """What the exact one-sided binomial test claims for a greedy design: P(FAIL) at
    the true value, for one probe judged alone.

    Retention also judges the canonical prompt, which these scenarios always keep:
    n + 1 units of which only the n variants can be lost.
    """
    units = s.variants + (1 if s.direction == "retain" else 0)
    k_crit = next((k for k in range(units + 1)
                   if binom_tail_ge(k, units, s.limit) <= s.alpha), units + 1)
    return binom_tail_ge(k_crit, s.variants, s.true_value)


STANDARD_SCENARIOS: tuple[Scenario, ...] = (
    # Null pairs: candidate = base (nothing suppressed, nothing lost).
    Scenario("retain: candidate = base", "retain", 0.0, 0.1),
    Scenario("retain: noise only (sampled, same rates)", "retain", 0.0, 0.1, samples=5,
             base_rate=0.8),
    # Boundary nulls: the true value sits exactly on the limit.
    Scenario("suppress: true resurfacing = limit (greedy)", "suppress", 0.25, 0.25),
    Scenario("retain: true loss = limit (greedy)", "retain", 0.1, 0.1),
    Scenario("suppress: true resurfacing = limit (sampled)", "suppress", 0.25, 0.25,
             samples=5, base_rate=0.8),
    # Planted effects.
    Scenario("suppress: planted resurfacing 0.5 vs limit 0.25", "suppress", 0.5, 0.25),
    Scenario("suppress: planted resurfacing 0.7 vs limit 0.25", "suppress", 0.7, 0.25),
    Scenario("retain: planted loss 0.4 vs limit 0.1", "retain", 0.4, 0.1),
)


def verdict_share(outcome: Outcome, verdict: Verdict) -> float:
    """Share of probes with ``verdict``."""
    return outcome.probe_verdicts[verdict.value] / max(1, sum(outcome.probe_verdicts.values()))

"""The gates' error rates on suites with realistic structure, through the decision code.

docs/metrics.md has the full table from benchmarks/calibration.py; these run the same
scenarios with fewer suite files. Clean nulls count what a user sees (a red build: any
FAIL, or any INCONCLUSIVE under the default policy); boundary nulls count FAILs of
gates whose own true value is at the limit; planted effects check the power against
what the suite test claims for the design.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from probe.calibration import STANDARD_SCENARIOS, Scenario, claimed_power, run_scenario


def scenario(name: str, **changes: object) -> Scenario:
    found = next(s for s in STANDARD_SCENARIOS if s.name.startswith(name))
    return dataclasses.replace(found, **changes)  # type: ignore[arg-type]


def two_se(rate: float, n: int) -> float:
    return 2 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("name", [
    "clean: suppress, zero leaks, 6 probes x 20",
    "clean: retain, candidate = base (greedy)",
])
def test_clean_fine_tunes_leave_the_build_green(name: str) -> None:
    outcome = run_scenario(scenario(name, suites=30))
    assert outcome.builds_failed == 0
    assert outcome.suite_verdicts["PASS"] == 30


def test_zero_leak_suites_of_realistic_shape_stay_green_at_alpha() -> None:
    # 3-10 probes with 15-40 counted variants each, every one at 0: only the smallest
    # suites can fail to show it (3 probes of 15 variants: INCONCLUSIVE).
    outcome = run_scenario(scenario("clean: suppress, zero leaks, 3-10", suites=150))
    assert outcome.build_failed <= 0.05
    assert outcome.suite_verdicts["FAIL"] == 0


@pytest.mark.parametrize("name", [
    "boundary: suppress = limit, equal rates",
    "boundary: suppress = limit, unequal rates (icc 0.3)",
    "boundary: suppress = limit, icc 0.5, correlated operator groups",
    "boundary: retain loss = limit, icc 0.3",
])
def test_false_fails_at_the_boundary_stay_under_alpha(name: str) -> None:
    outcome = run_scenario(scenario(name, suites=150))
    alpha = outcome.scenario.alpha
    assert outcome.probe_false_fail <= alpha + two_se(alpha, outcome.probes_at_or_under)
    assert outcome.suite_fail <= alpha + two_se(alpha, outcome.suites)
    # At the boundary nothing can be shown either way: most builds are red, by design.
    assert outcome.build_failed > 0.5


def test_planted_resurfacing_is_found_with_the_claimed_power() -> None:
    s = scenario("planted: suppress 0.5 vs 0.25, icc 0.3", suites=150)
    outcome = run_scenario(s)
    claimed = claimed_power(s, 20, 6)
    assert 0.3 < claimed < 0.99
    assert abs(outcome.suite_fail_alone - claimed) <= 3 * math.sqrt(
        claimed * (1 - claimed) / s.suites) + 0.02
    # Within the suite file's Holm family the suite gate is at most as powerful alone.
    assert outcome.suite_fail <= outcome.suite_fail_alone
    assert outcome.build_failed >= outcome.suite_fail

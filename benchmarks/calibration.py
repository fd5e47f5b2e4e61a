"""Calibration benchmark: the gate's false-alarm rate and power, measured.

    .venv/bin/python benchmarks/calibration.py [--probes 2000] [--suite-size 5]

Runs every standard scenario of ``probe.calibration`` through the real engine on
the scripted backend and prints, per scenario, the share of probe gates and of
suite gates (suites of --suite-size probes) that said FAIL, next to alpha (for
nulls) or to the power the exact binomial test claims (for planted effects).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from probe.calibration import STANDARD_SCENARIOS, expected_power, run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--suite-size", type=int, default=5)
    args = parser.parse_args()
    print(f"{'scenario':52} {'probe FAIL':>10} {'suite FAIL':>10} {'alpha/claimed':>13} "
          f"{'probes':>6} {'suites':>6} {'time':>6}")
    for scenario in STANDARD_SCENARIOS:
        s = dataclasses.replace(scenario, probes=args.probes)
        start = time.perf_counter()
        outcome = run_scenario(s, suite_size=args.suite_size)
        elapsed = time.perf_counter() - start
        null = s.true_value <= s.limit
        reference = s.alpha if null else expected_power(s)
        print(f"{s.name:52} {outcome.fail_rate:10.3f} {outcome.suite_fail_rate:10.3f} "
              f"{reference:13.3f} {s.probes:6d} {sum(outcome.suite_verdicts.values()):6d} "
              f"{elapsed:5.1f}s")


if __name__ == "__main__":
    main()

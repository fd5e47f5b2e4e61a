"""Calibration benchmark: what the gates do on suites with realistic structure.

    .venv/bin/python benchmarks/calibration.py [--suites N] [--only TEXT]

Runs every standard scenario of ``probe.calibration`` through the real decision code
and prints, per scenario, the share of builds that go red under the default policy
(FAIL or INCONCLUSIVE), of probe gates that FAILed although their own value is at or
under the limit, and of suite gates that FAILed (in the suite file's Holm family, and
decided alone), next to the power the suite test claims for the design when decided
alone (planted scenarios with a fixed shape).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from probe.calibration import STANDARD_SCENARIOS, claimed_power, run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", type=int, default=None,
                        help="suite files per scenario (default: each scenario's own)")
    parser.add_argument("--only", default="", help="run the scenarios whose name has this")
    args = parser.parse_args()
    print(f"{'scenario':66} {'red build':>9} {'probe false FAIL':>16} {'suite FAIL':>10} "
          f"{'alone':>6} {'claimed':>7} {'suites':>6} {'time':>6}")
    for scenario in STANDARD_SCENARIOS:
        if args.only not in scenario.name:
            continue
        s = scenario if args.suites is None else dataclasses.replace(scenario,
                                                                      suites=args.suites)
        start = time.perf_counter()
        outcome = run_scenario(s)
        elapsed = time.perf_counter() - start
        claimed = "-"
        if s.kind == "planted" and s.direction == "suppress" and s.probes[0] == s.probes[1] \
                and s.variants[0] == s.variants[1]:
            claimed = f"{claimed_power(s, s.variants[0], s.probes[0]):.3f}"
        print(f"{s.name:66} {outcome.build_failed:9.3f} {outcome.probe_false_fail:16.3f} "
              f"{outcome.suite_fail:10.3f} {outcome.suite_fail_alone:6.3f} {claimed:>7} "
              f"{s.suites:6d} {elapsed:5.1f}s",
              flush=True)


if __name__ == "__main__":
    main()

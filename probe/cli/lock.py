"""Generate suites' variants once and freeze them in x.lock.json beside each suite.

Runs, ``probe variants`` and ``probe check`` then replay the lock (no paraphrase
model is loaded) and verify it; editing a suite's probes or operators makes its
lock stale, a suite error until the lock is written again.
"""

from __future__ import annotations

import argparse

from probe.cli._arguments import add_options, add_suites, run_options, seed
from probe.cli._common import EXIT_OK, say

EXAMPLES = ("probe lock suites/capitals_unlearning.yaml",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe lock``'s arguments: suites, the operators' seed, data roots."""
    add_suites(parser)
    add_options(parser, "seed", "data")


def run(args: argparse.Namespace) -> int:
    """Write every suite's lock (each path checked first); one line per lock written."""
    from probe.api import load_suites
    from probe.engine.lock import lock_path
    from probe.files import check_outputs
    from probe.preview import lock_suite
    from probe.report.outputs import suite_inputs

    suites = load_suites(args.suites, run_options(args))
    run_seed = seed(args)
    # x.yaml and x.yml share x.lock.json; a lock path may be a link to a suite.
    check_outputs([(f"{s.source}'s lock", lock_path(s.source)) for s in suites],
                  [entry for s in suites for entry in suite_inputs(s, lock=False)])
    for suite in suites:
        say(lock_suite(suite, run_seed))
    return EXIT_OK

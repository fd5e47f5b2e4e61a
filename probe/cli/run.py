"""Run suites on a base and a candidate model: exit 1 when a suppressed behavior resurfaces.

Every probe's variants go to both models; each failing probe and suite gate is shown
as a table, then a summary, and the report files asked for are written. The exit
status is pytest's: 0 every gate passes, 1 some gate fails, 2 a suite file is
invalid, 3 a model could not be loaded or run, 4 the command line is wrong.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from probe.cli._arguments import add_options, add_suites, model, run_options, seed
from probe.cli._common import EXIT_OK, say

if TYPE_CHECKING:
    from probe.engine.outcome import ItemOutcome

EXAMPLES = ("probe run suites/ --base smollm2-135m --candidate models/demo-adapter",
            "probe run suites/ --base smollm2-135m --candidate models/demo-adapter "
            "--json run.json --html run.html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe run``'s arguments: suites, both models, and every run option."""
    add_suites(parser)
    add_options(parser, "models", "run", "load", "cache", "data", "reports",
                required=("base", "candidate"))


def run(args: argparse.Namespace) -> int:
    """Measure, show every failure, the summary and the files written; the exit code."""
    import probe
    from probe.report.progress import TqdmProgress
    from probe.report.table import failure_report, suite_report
    from probe.report.terminal import baseline_lines, summary_lines
    from probe.spec.model import SUITE_GATE_ID

    options = run_options(args)
    result = probe.run(args.suites, model(args, "base"), model(args, "candidate"),
                       seed=seed(args), options=options, progress=TqdmProgress())
    if not result.is_main:
        return EXIT_OK  # under torchrun rank 0 alone reports (every rank has the results)
    for suite_result in result.suite_results:
        name = suite_result.suite.name
        for probe_result in suite_result.probes:
            # The report is built only for what is shown (a pass shows nothing).
            _show(result.outcome(f"{name}::{probe_result.run.probe.id}"),
                  partial(failure_report, probe_result))
        _show(result.outcome(f"{name}::{SUITE_GATE_ID}"), partial(suite_report, suite_result))
    say("\n".join(summary_lines(result.session)))
    if result.judge is not None:
        say("\n".join(baseline_lines(result.judge)))
    for line in result.write_reports():
        say(line)
    return result.exit_code


def _show(outcome: ItemOutcome, report: Callable[[], str]) -> None:
    """A failure: its report and the baseline's note. A failure the baseline accepts:
    the report's first line and why. A pass or a policy's xfail: nothing."""
    if outcome.action == "fail":
        text = report()
        say((f"{text}\n  {outcome.reason}" if outcome.reason else text) + "\n")
    elif outcome.action == "xfail" and outcome.by_baseline:
        say(f"{report().splitlines()[0]} ({outcome.reason})\n")

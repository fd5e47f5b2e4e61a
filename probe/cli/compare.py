"""Compare two JSON run records side by side: exit 1 when the later one regressed.

Verdicts and figures per probe, suite gate and operator family, the models and seeds
of both runs, and what changed between them.
"""

from __future__ import annotations

import argparse

from probe.cli._common import EXIT_FAILED, EXIT_OK, say

EXAMPLES = ("probe compare last.json this.json",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe compare``'s arguments: two run records."""
    parser.add_argument("old", help="the earlier run record (e.g. the last fine-tune)")
    parser.add_argument("new", help="the later run record")


def run(args: argparse.Namespace) -> int:
    """Print the differences; exit 1 when any is a regression."""
    from probe.files import refuse_special_input
    from probe.report.diff import diff_records, render_diff
    from probe.report.record import read_record

    for path in (args.old, args.new):
        refuse_special_input(path, "probe compare:")
    old, new = read_record(args.old), read_record(args.new)
    changes = diff_records(old, new)
    say("\n".join(render_diff(old, new, changes)))
    return EXIT_FAILED if any(c.regression for c in changes) else EXIT_OK

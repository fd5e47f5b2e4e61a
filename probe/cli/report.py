"""Render a saved JSON run record as an HTML report or a parquet dataset.

The record is what ``probe run --json`` or ``pytest --probe-json`` wrote; no model
is loaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from probe.cli._common import EXIT_OK, say
from probe.errors import UsageError

EXAMPLES = ("probe report run.json --html run.html",
            "probe report run.json --parquet rows.parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe report``'s arguments: the record and what to write."""
    parser.add_argument("record", help="a JSON run record (probe run --json, --probe-json)")
    parser.add_argument("--html", default=None, metavar="PATH", help="write the HTML report")
    parser.add_argument("--parquet", default=None, metavar="PATH",
                        help="export the variant rows as a parquet dataset")


def run(args: argparse.Namespace) -> int:
    """Write what was asked for; one line per file written."""
    from probe.files import refuse_special_input
    from probe.report.outputs import ReportPaths, check_report_paths
    from probe.report.record import read_record

    paths = ReportPaths(html=Path(args.html) if args.html else None,
                        parquet=Path(args.parquet) if args.parquet else None)
    if not (paths.html or paths.parquet):
        raise UsageError("probe report: give --html PATH and/or --parquet PATH")
    refuse_special_input(args.record, "probe report:")
    # `probe report good.json --html good.json` would render the record over itself.
    check_report_paths(paths, [(f"the run record {args.record}", args.record)])
    record = read_record(args.record)
    if paths.html:
        from probe.report.html import write_html

        say(f"HTML report: {write_html(record, paths.html)}")
    if paths.parquet:
        from probe.report.export import write_parquet

        say(f"parquet rows: {write_parquet(record, paths.parquet)}")
    return EXIT_OK

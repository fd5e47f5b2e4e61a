"""Export a saved run's rows to other tools: inspect_ai samples, promptfoo tests, parquet.

By default only the regressions: rows where the candidate showed the suppressed
behavior the base showed (or lost a retained one); --rows counted exports every row
the gates counted, --rows all every row run. No model is loaded. inspect: JSON lines
of inspect_ai Sample objects (inspect_ai.dataset.json_dataset); promptfoo: a YAML list
of tests (a .json name writes JSON) with vars prompt and prefill and assertions from
each probe's detector; parquet: the rows as a Hugging Face datasets parquet file.
"""

from __future__ import annotations

import argparse

from probe.cli._common import EXIT_OK, say
from probe.report.interchange import FORMATS, ROW_CHOICES

EXAMPLES = ("probe export run.json --format promptfoo -o regressions.yaml",
            "probe export run.json --format inspect --rows counted -o samples.jsonl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe export``'s arguments: the record, the format, the rows and the output."""
    parser.add_argument("record", help="a JSON run record (probe run --json, --probe-json)")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="inspect: inspect_ai dataset samples (JSON lines); promptfoo: a "
                             "promptfoo tests file; parquet: a datasets parquet file")
    parser.add_argument("--rows", choices=ROW_CHOICES, default=ROW_CHOICES[0],
                        help="regressions (default): where the candidate regressed; "
                             "counted: every row the gates counted; all: every row")
    parser.add_argument("-o", "--output", required=True, metavar="PATH",
                        help="the file to write (never the record itself)")


def run(args: argparse.Namespace) -> int:
    """Write the export; one line that says what and how many."""
    from probe.files import check_outputs, refuse_special_input
    from probe.report.interchange import write_export
    from probe.report.record import read_record

    refuse_special_input(args.record, "probe export:")
    # `probe export run.json -o run.json` would write the rows over the record.
    check_outputs([("--output", args.output)], [(f"the run record {args.record}", args.record)])
    record = read_record(args.record)
    say(write_export(record, args.format, args.output, args.rows))
    return EXIT_OK

"""Show a suite's variants without loading the models under test.

Every probe's variants (operator chain, seed, meaning-check similarity, kept or
rejected, text) from the suite's lock when there is one, else generated now (which
may load the paraphrase and embedding models). ``--format json`` writes one JSON
document for scripts; ``--format full`` adds every variant's whole prompt.
"""

from __future__ import annotations

import argparse
import json

from probe.cli._arguments import add_options, add_suites, run_options, seed
from probe.cli._common import EXIT_OK, say

EXAMPLES = ("probe variants suites/capitals_unlearning.yaml",
            "probe variants suites/capitals_unlearning.yaml --format json | jq '.suites[0]'")
FORMATS = ("text", "json", "full")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe variants``'s arguments: suites, seed, ``--fresh`` and ``--format``."""
    add_suites(parser)
    parser.add_argument("--fresh", action="store_true",
                        help="generate the variants now even when a lock exists")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text: a table per suite (default); json: one JSON document "
                             "with every variant; full: the table and every whole prompt")
    add_options(parser, "seed", "data")


def run(args: argparse.Namespace) -> int:
    """Print the preview of every suite in the chosen format."""
    from probe.api import load_suites
    from probe.preview import preview_json, preview_lines

    suites = load_suites(args.suites, run_options(args))
    run_seed = seed(args)
    if args.format == "json":
        # ensure_ascii: every hidden character of a prompt is a \\u escape, so the
        # document is printable as it is (say() leaves it unchanged) and valid JSON.
        doc = {"suites": [preview_json(s, run_seed, fresh=args.fresh) for s in suites]}
        say(json.dumps(doc, indent=2, ensure_ascii=True))
        return EXIT_OK
    for suite in suites:
        if suite.dataset_origin is not None:
            say(f"{suite.source}: dataset from {suite.dataset_origin.describe()}")
        say("\n".join(preview_lines(suite, run_seed, fresh=args.fresh,
                                    full=args.format == "full")))
        say()
    return EXIT_OK

"""Print the JSON Schema of suite files (for editors: completion and checks as you type).

By default the schema shipped with probe; ``--generate`` makes it from the code and
the installed operator and detector plugins.
"""

from __future__ import annotations

import argparse
import sys

from probe.cli._common import EXIT_OK

EXAMPLES = ("probe schema -o suite.schema.json", "probe schema --generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe schema``'s arguments."""
    parser.add_argument("--generate", action="store_true",
                        help="generate it from the code and installed plugins instead of "
                             "printing the shipped file")
    parser.add_argument("-o", "--output", default=None, metavar="PATH",
                        help="write it to PATH instead of standard output")


def run(args: argparse.Namespace) -> int:
    """Print or write the schema."""
    from probe.spec.schema import generate_schema, schema_text, shipped_schema_text

    text = schema_text(generate_schema()) if args.generate else shipped_schema_text()
    if args.output:
        from probe.files import atomic_write_text, check_outputs

        check_outputs([("--output", args.output)])
        atomic_write_text(args.output, text)
    else:
        # JSON text we generated (no suite's content): written as it is.
        sys.stdout.write(text)
    return EXIT_OK

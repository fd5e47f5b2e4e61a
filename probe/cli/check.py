"""Validate suite files, and verify each one's lock, without loading any model.

Every file is checked, so one run lists every mistake (one located line each);
exit 2 when any suite file is invalid.
"""

from __future__ import annotations

import argparse
import sys

from probe.cli._arguments import add_options, add_suites, run_options
from probe.cli._common import EXIT_OK, EXIT_SPEC, say
from probe.errors import SpecError
from probe.report.safe_text import visible

EXAMPLES = ("probe check suites/", "probe check suites/capitals_unlearning.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe check``'s arguments: the suites and where their data files may be."""
    add_suites(parser)
    add_options(parser, "data")


def run(args: argparse.Namespace) -> int:
    """One line per suite file: ``ok ...`` on standard output or the error on standard error."""
    from probe.api import data_roots, search_suite_files
    from probe.engine.lock import read_lock
    from probe.spec import load_suite

    invalid = 0
    roots = data_roots(run_options(args))
    files, catalogs = search_suite_files(args.suites)
    for file in files:
        try:
            suite = load_suite(file, data_roots=roots)
            # The lock is read and verified exactly as a run reads it (same error, exit 2).
            locked = read_lock(suite)
        except SpecError as err:
            say(f"error: {err}", file=sys.stderr)
            invalid += 1
            continue
        # Which copy of a dataset was read: the hub's, or the local one (and why).
        data = ("" if suite.dataset_origin is None
                else f"; dataset: {visible(suite.dataset_origin.describe())}")
        say(f"ok  {visible(suite.source)}: {visible(suite.name)}, {len(suite.probes)} probes, "
            f"{len(suite.operators)} operators{'' if locked is None else ', lock verified'}"
            f"{data}")
    # A catalog left out of the search is said, so "every suite is ok" is not misread as
    # covering the starter library too.
    for directory in catalogs:
        say(f"skip {visible(str(directory))}/: a catalog of suites to copy (its CATALOG file); "
            "name it to check it")
    return EXIT_SPEC if invalid else EXIT_OK

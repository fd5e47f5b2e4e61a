"""The ``probe`` command: the same engine as the pytest plugin, without pytest.

    probe run suites/ --base smollm2-135m --candidate models/demo-adapter
    probe vet suites/ --base smollm2-135m              # before the fine-tune: the base alone
    probe variants suites/capitals_unlearning.yaml     # preview, loads no model under test
    probe lock suites/capitals_unlearning.yaml         # freeze variants: x.lock.json
    probe check suites/                                # validate suite files
    probe search suites/x.yaml --base ... --candidate ...  # find chains that resurface
    probe compare last.json this.json                  # two run records side by side
    probe report run.json --html run.html              # render a saved run record
    probe export run.json --format promptfoo -o t.yaml # regressions into other tools
    probe schema                                       # JSON Schema of suite files
    probe cache --prune-days 30                        # list the cache, drop unused files

One module per subcommand (``probe.cli.run``, ...), each with ``add_arguments(parser)``
and ``run(args) -> int``; the run options come from ``probe.options`` and are spelt
``--batch-size`` here, in every message too. Exit codes follow pytest's: 0 all probes
pass, 1 some probe failed, 2 a suite file is invalid, 3 a model could not be loaded or
run, 4 the command line is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn, TextIO

from probe.cli._common import (
    EXIT_BACKEND,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    say,
    silence_stdout,
)
from probe.engine.cache import ProbeCacheWarning
from probe.errors import ProbeError, SpecError, UsageError, did_you_mean
from probe.options import spelled, spelling_for_cli

# In the order ``probe --help`` lists them.
COMMANDS = ("run", "vet", "check", "variants", "lock", "search", "compare", "report", "export",
            "schema", "cache")


class _Parser(argparse.ArgumentParser):
    """argparse, plus a did-you-mean for a misspelt option and an example after a
    missing required argument."""

    examples: Sequence[str] = ()
    typed: Sequence[str] = ()  # the command line, for the did-you-mean

    def error(self, message: str) -> NoReturn:
        known = [o for action in self._all_actions() for o in action.option_strings]
        missing = re.match(r"the following arguments are required: (.*)", message)
        if missing and (misspelt := _unknown_options(self.typed, known)):
            # `--bse x` leaves --base missing: the misspelling is the mistake to name.
            message = f"unrecognized arguments: {misspelt}"
            missing = None
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            options = [t.split("=")[0] for t in unknown[1].split() if t.startswith("--")]
            hint = did_you_mean(options[0], known) if options else ""
            message += f".{hint}" if hint else ""
        if missing and self.examples:
            names = missing[1].split(", ")
            if all(n.startswith("--") for n in names):
                message = (f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} "
                           "missing")
            message += f"; for example: {self.examples[0]}"
        # One escaped line, like every other usage error (argparse would print the whole
        # usage, and echo what was typed raw); --help has the rest.
        say(f"usage error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    def _all_actions(self) -> list[argparse.Action]:
        actions = list(self._actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    actions += sub._actions
        return actions


def _unknown_options(typed: Sequence[str], known: Sequence[str]) -> str:
    """The options of ``typed`` no parser knows, each with the value after it."""
    found = []
    for i, token in enumerate(typed):
        if token.startswith("--") and token.split("=")[0] not in known:
            after = typed[i + 1] if i + 1 < len(typed) else "-"
            found += [token] if "=" in token or after.startswith("-") else [token, after]
    return " ".join(found)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"probe.cli.{name}")


def _parser(typed: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``probe`` parser and its subcommands; ``typed``: the command line to parse."""
    from probe import __version__

    doc = (__doc__ or "").replace("``", "")
    parser = _Parser(prog="probe", description=doc.split("\n\n")[0],
                     epilog="\n".join(["examples:", *(f"  {line.strip()}" for line in
                                                      doc.split("\n\n")[1].splitlines())]),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"probe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name in COMMANDS:
        module = _module(name)
        # The docstring, without the reST quoting of names, is the description.
        doc = (module.__doc__ or "").strip().replace("``", "")
        examples: Sequence[str] = module.EXAMPLES
        command = sub.add_parser(
            name, help=doc.splitlines()[0], description=doc,
            epilog="\n".join([f"example{'s' if len(examples) > 1 else ''}:",
                              *(f"  {e}" for e in examples)]),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        assert isinstance(command, _Parser)
        command.examples, command.typed = examples, typed
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


_default_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    if issubclass(category, ProbeCacheWarning):
        say(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``probe`` console command: the exit code."""
    try:
        code = _main(argv)
        # Flushed here, not at exit, so a reader that went away (``| head``) is noticed
        # while it can still be handled.
        sys.stdout.flush()
    except BrokenPipeError:
        # Only output written outside ``say`` (help, the schema) gets here, by commands
        # whose every result is that output: what the reader took was all it wanted.
        silence_stdout()
        return EXIT_OK
    return code


def _main(argv: Sequence[str] | None) -> int:
    typed = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(typed)
    try:
        args = parser.parse_args(typed)
    except SystemExit as exc:  # argparse printed its usage message, or --help, --version
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        with spelled(spelling_for_cli), warnings.catch_warnings():
            # Our warnings (a repaired cache, ...) are for the user: one plain line each.
            warnings.simplefilter("always", ProbeCacheWarning)
            warnings.showwarning = _show_warning
            code: int = args.func(args)
        return code
    except SpecError as err:
        say(f"error: {err}", file=sys.stderr)
        return EXIT_SPEC
    except UsageError as err:
        say(f"usage error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ProbeError as err:
        say(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_BACKEND


__all__ = ["COMMANDS", "EXIT_BACKEND", "EXIT_FAILED", "EXIT_OK", "EXIT_SPEC", "EXIT_USAGE",
           "main"]

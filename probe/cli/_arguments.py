"""The run options of ``probe.options`` rendered into argparse, and read back.

Every option is declared ``default=None``: "not given" reaches ``RunOptions``, which
supplies the default and validates the value, so ``probe run``, ``probe vet``,
``probe search`` and the pytest plugin take the same options with the same checks and
the same messages (spelt ``--batch-size`` here: ``probe.cli`` runs every command under
``spelled(spelling_for_cli)``).
"""

from __future__ import annotations

import argparse

from probe.options import OPTIONS, RunOptions, check_value, options_in, spelling_for_cli

_TITLES = {"models": "model", "load": "model loading", "cache": "completion cache",
           "run": "run", "data": "suite data", "reports": "report"}
_GROUPS = tuple(_TITLES)


def add_options(parser: argparse.ArgumentParser, *items: str,
                required: tuple[str, ...] = ()) -> None:
    """Add the options of ``items`` to ``parser``: each item is a group of
    ``probe.options`` (``"load"``: every option of that group) or one option's name
    (``"seed"``). The options named in ``required`` are required, and ``--help`` shows
    them in a group of their own."""
    groups_given = [i for i in items if i in _GROUPS]
    chosen = [*options_in(*groups_given),  # type: ignore[arg-type]
              *(OPTIONS[i] for i in items if i not in _GROUPS)]
    unknown = set(required) - {o.name for o in chosen}
    assert not unknown, f"required options not added: {unknown}"
    sections: dict[str, argparse._ArgumentGroup] = {}
    for option in sorted(chosen, key=lambda o: (o.name not in required, _GROUPS.index(o.group))):
        title = ("required options" if option.name in required
                 else f"{_TITLES[option.group]} options")
        if title not in sections:
            sections[title] = parser.add_argument_group(title)
        sections[title].add_argument(spelling_for_cli(option), dest=option.name,
                                     required=option.name in required,
                                     **option.parser_kwargs())


def run_options(args: argparse.Namespace) -> RunOptions:
    """The validated ``RunOptions`` of the options ``args`` has (the others default);
    ``UsageError`` naming the option as typed."""
    return RunOptions.from_values({name: getattr(args, name) for name in OPTIONS
                                   if hasattr(args, name)})


def seed(args: argparse.Namespace) -> int:
    """``--seed``, validated (0 when not given)."""
    value = getattr(args, "seed", None)
    return int(check_value("seed", 0 if value is None else value))


def model(args: argparse.Namespace, name: str) -> str:
    """``--base`` or ``--candidate``, validated."""
    return str(check_value(name, getattr(args, name)))


def add_suites(parser: argparse.ArgumentParser) -> None:
    """The positional suite files or directories of a command that reads suites."""
    parser.add_argument("suites", nargs="+", metavar="SUITE",
                        help="suite files, or directories searched for *.yaml suite files")

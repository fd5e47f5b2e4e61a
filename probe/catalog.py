"""Catalogs: directories of suites to copy, left out when a directory above them is run.

``suites/library/`` holds starter suites a team copies and adapts; they are measured on
SmolLM2 but are not tests of the demo's models. A directory holding a file named
``CATALOG`` is a catalog: searching a directory above it (``pytest suites/``, ``probe run
suites/``, ``probe check suites/``) skips it, and naming it or a file in it (``pytest
suites/library/``, ``probe vet suites/library/persona.yaml``) runs it as usual. The rule is
pytest's own for a virtualenv found while collecting (skipped unless named), and it is
the same in every front end, so ``pytest suites/`` and ``probe run suites/`` keep giving
the same verdicts.

A marker file rather than a reserved directory name: a team's own ``suites/library/`` of
real suites keeps being collected, and ``ls`` shows why a directory is left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

CATALOG_MARKER = "CATALOG"


def is_catalog(directory: Path) -> bool:
    """Whether ``directory`` is a catalog (holds a ``CATALOG`` file)."""
    return (directory / CATALOG_MARKER).is_file()


def named(directory: Path, args: Iterable[Path]) -> bool:
    """Whether one of ``args`` (absolute paths given on a command line) is ``directory``
    or lies inside it: then the user asked for it, catalog or not."""
    return any(arg == directory or directory in arg.parents for arg in args)


def search(root: Path) -> tuple[list[Path], list[Path]]:
    """The ``*.yaml``/``*.yml`` files under ``root``, sorted, and the catalogs below it
    that were skipped. ``root`` itself is searched even when it is a catalog: it was named."""
    files: list[Path] = []
    skipped: list[Path] = []
    for here, dirs, names in os.walk(root):
        base = Path(here)
        for d in sorted(dirs):
            if is_catalog(base / d):
                skipped.append(base / d)
        dirs[:] = [d for d in dirs if not is_catalog(base / d)]
        files += [base / n for n in names if Path(n).suffix in (".yaml", ".yml")]
    return sorted(files), sorted(skipped)

"""Every hostile input in ``tests/hostile/`` ends in its documented outcome.

Each case runs in its own project directory through ``probe`` and pytest, in
process: the documented exit status and message, no traceback, no hang, and no
file changed except the run's own outputs. ``docs/errors.md`` gives the table of
classes and counts; a test keeps it equal to the corpus.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import Counter
from pathlib import Path

import pytest

import tests.hostile
from tests.hostile.corpus import CLASSES, Case, check_case

ROOT = Path(__file__).parent.parent


def all_cases() -> list[Case]:
    """The cases of every ``tests/hostile/cases_*.py`` module."""
    cases: list[Case] = []
    for info in pkgutil.iter_modules(tests.hostile.__path__):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"tests.hostile.{info.name}")
            cases.extend(module.CASES)
    return cases


CASES = all_cases()


def test_case_ids_are_unique() -> None:
    counts = Counter(case.id for case in CASES)
    assert [case_id for case_id, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_ends_in_its_documented_outcome(case: Case,
                                                      pytester: pytest.Pytester) -> None:
    check_case(case, pytester)


def test_errors_md_table_counts_the_corpus() -> None:
    """docs/errors.md's corpus table gives, for each class, how many cases there are."""
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    documented = {m.group(1): int(m.group(2))
                  for m in re.finditer(r"^\| ([a-z ]+) \| (\d+) \|", text, re.MULTILINE)}
    counted = Counter(case.klass for case in CASES)
    assert documented == {k: counted[k] for k in CLASSES if counted[k]}

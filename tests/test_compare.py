"""The comparison math of DESIGN.md on hand-built rows."""

from __future__ import annotations

import pytest

from probe.engine.compare import Verdict, evaluate
from probe.engine.runner import ProbeRun, Row
from probe.engine.variants import Variant
from probe.operators.base import Prompt
from probe.spec import Policy, Probe

PROBE = Probe(id="p", prompt="q?")


def row(index: int, operator: str, base: float, cand: float) -> Row:
    variant = Variant("p", index, operator, operator, None, Prompt(f"v{index}"))
    return Row(variant, f"base{index}", f"cand{index}", base, cand)


def run(*rows: Row) -> ProbeRun:
    return ProbeRun(PROBE, rows)


def test_suppression_resurfacing_and_worst() -> None:
    result = evaluate(run(row(0, "canonical", 1, 0), row(1, "typos", 1, 0),
                          row(2, "cloze", 1, 1), row(3, "cloze", 0, 1),
                          row(4, "framing", 1, 0)), Policy())
    assert result.suppression == 1.0
    # Variant 3 is dropped (base 0): 1 candidate hit over 3 base hits.
    assert result.resurfacing == pytest.approx(1 / 3)
    assert [r.variant.index for r in result.counted] == [1, 2, 4]
    assert [r.variant.index for r in result.dropped] == [3]
    assert result.worst is not None and result.worst.variant.index == 2
    assert result.verdict is Verdict.FAIL
    by_op = {o.operator: o for o in result.operators}
    assert by_op["cloze"].resurfacing == 1.0
    assert (by_op["cloze"].counted, by_op["cloze"].total) == (1, 2)
    assert by_op["typos"].resurfacing == 0.0


def test_limit_is_exclusive() -> None:
    rows = [row(0, "canonical", 1, 0)] + [row(i, "x", 1, 1 if i == 1 else 0)
                                          for i in range(1, 5)]
    assert evaluate(run(*rows), Policy(max_resurfacing=0.25)).verdict is Verdict.PASS
    assert evaluate(run(*rows), Policy(max_resurfacing=0.24)).verdict is Verdict.FAIL


def test_unsuppressed_canonical_fails() -> None:
    result = evaluate(run(row(0, "canonical", 1, 1), row(1, "x", 1, 0)), Policy())
    assert result.suppression == 0.0
    assert result.verdict is Verdict.FAIL
    assert result.reasons[0].startswith("not suppressed on the canonical prompt")


def test_base_without_behavior_is_uninformative() -> None:
    result = evaluate(run(row(0, "canonical", 0, 0), row(1, "x", 1, 1)), Policy())
    assert result.verdict is Verdict.UNINFORMATIVE
    assert result.suppression is None
    assert result.failed


def test_fractional_hits_use_the_floor() -> None:
    result = evaluate(run(row(0, "canonical", 0.8, 0.2), row(1, "x", 0.4, 0.4),
                          row(2, "x", 0.6, 0.3)), Policy(base_floor=0.5, min_suppression=0.7))
    assert result.suppression == pytest.approx(0.75)
    assert result.resurfacing == pytest.approx(0.5)
    assert [r.variant.index for r in result.counted] == [2]


def test_no_counted_variant_is_said() -> None:
    result = evaluate(run(row(0, "canonical", 1, 0), row(1, "x", 0, 0)), Policy())
    assert result.resurfacing is None
    assert result.verdict is Verdict.PASS
    assert any("no rephrasing counted" in r for r in result.reasons)

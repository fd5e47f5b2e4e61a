"""The engine computes the per-family and worst-operator figures once; the record carries
exactly those, and every report reads them from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.engine.figures import (
    OperatorFigure,
    moved_share,
    operator_rates,
    probe_families,
    worst_operator,
)
from probe.report.record import build_record
from tests.report.fixtures import CUT_SUITE, scripted_session


def _op(name: str, family: str, counted: int, base: float, cand: float) -> OperatorFigure:
    return OperatorFigure(name, family, counted, counted + 1, base, cand)


def test_families_sum_their_operators_and_keep_first_appearance_order() -> None:
    ops = [_op("casing", "noise", 3, 3.0, 1.0), _op("paraphrase", "paraphrase", 4, 4.0, 4.0),
           _op("typos", "noise", 2, 2.0, 0.0)]
    noise, paraphrase = probe_families(ops, retain=False)
    assert (noise.family, noise.operators) == ("noise", ("casing", "typos"))
    assert (noise.counted, noise.total, noise.base_hits, noise.candidate_hits) == (5, 7, 5.0, 1.0)
    assert noise.rate == pytest.approx(0.2)
    assert paraphrase.rate == 1.0
    # Retain suites: the share lost, never below zero.
    lost = probe_families(ops, retain=True)
    assert [f.rate for f in lost] == [pytest.approx(0.8), 0.0]


def test_worst_operator_is_the_largest_share_moved() -> None:
    ops = [_op("casing", "noise", 3, 3.0, 1.0), _op("paraphrase", "paraphrase", 4, 4.0, 3.0),
           _op("empty", "noise", 0, 0.0, 0.0)]
    worst = worst_operator(ops, retain=False)
    assert worst is not None
    assert (worst.operator, worst.share) == ("paraphrase", 0.75)
    retained = worst_operator(ops, retain=True)
    assert retained is not None
    assert retained.operator == "casing"
    assert retained.share == pytest.approx(2 / 3)
    # Nothing came back: no worst operator.
    assert worst_operator([_op("casing", "noise", 3, 3.0, 0.0)], retain=False) is None
    assert moved_share(0.0, 1.0, retain=False) is None


def test_the_record_carries_the_engines_figures(tmp_path: Path) -> None:
    session = scripted_session(tmp_path)
    (suite_result,) = session.suite_results.values()
    record = build_record(session)
    (suite,) = record["suites"]
    france_result = next(p for p in suite_result.probes if p.run.probe.id == "france")
    france = next(p for p in suite["probes"] if p["id"] == "france")
    # France: every paraphrase brings Paris back, no noise variant does.
    assert [(f["family"], f["rate"]) for f in france["families"]] == [
        ("paraphrase", 1.0), ("noise", 0.0)]
    assert [(f.family, f.rate) for f in france_result.families] == [
        ("paraphrase", 1.0), ("noise", 0.0)]
    assert france["worst_operator"] == {"operator": "paraphrase", "share": 1.0}
    assert france["base_rate"] == france_result.base_rate == 1.0
    assert france["outcome"] == france_result.outcome == "fail"
    assert [f["family"] for f in suite["families"]] == [f.family for f in suite_result.families]
    paraphrase = suite["families"][0]
    assert paraphrase["estimate"]["value"] == suite_result.families[0].estimate.value == 0.5
    rates = {o["operator"]: o for o in suite["operator_rates"]}
    assert list(rates) == ["canonical", "paraphrase", "casing", "punctuation"]
    assert (rates["paraphrase"]["base_rate"], rates["paraphrase"]["candidate_rate"]) == (1.0, 0.5)
    assert rates["canonical"]["variants"] == 2  # one canonical prompt per probe
    assert operator_rates(r for p in suite_result.probes for r in p.run.rows) == \
        suite_result.operator_rates


def test_an_uninformative_probe_says_why(tmp_path: Path) -> None:
    record = build_record(scripted_session(tmp_path, suite=CUT_SUITE))
    france = next(p for p in record["suites"][0]["probes"] if p["id"] == "france")
    japan = next(p for p in record["suites"][0]["probes"] if p["id"] == "japan")
    assert france["verdict"] == "UNINFORMATIVE"
    assert france["uninformative_reason"].startswith(
        "the base does not show the behavior on the canonical prompt")
    assert japan["uninformative_reason"] is None

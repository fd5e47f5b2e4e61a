"""Comparing two run records: new resurfacings, fixed ones, changed rates."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from probe.cli import main
from probe.report.diff import diff_records, render_diff
from probe.report.record import write_record
from tests.report.fixtures import LOOSE_SUITE, scripted_record


def _kinds(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str]:
    return {c.key: c.kind for c in diff_records(old, new)}


def test_leaky_fine_tune_after_a_robust_one_is_a_new_resurfacing(tmp_path: Path) -> None:
    robust = scripted_record(tmp_path, "robust", suite=LOOSE_SUITE)
    leaky = scripted_record(tmp_path, "leaky", suite=LOOSE_SUITE)
    changes = {c.key: c for c in diff_records(robust, leaky)}
    france = changes["capitals::france"]
    assert france.old is not None
    assert france.new is not None
    assert (france.old.verdict, france.new.verdict) == ("PASS", "INCONCLUSIVE")
    assert france.kind == "new-resurfacing"
    assert changes["capitals::france"].regression
    assert changes["capitals::japan"].kind == "same"
    assert not changes["capitals::japan"].regression
    back = {c.key: c.kind for c in diff_records(leaky, robust)}
    assert back["capitals::france"] == "fixed"


def test_a_failure_getting_worse_is_a_regression(tmp_path: Path) -> None:
    # France fails its strict 0.1 limit either way; the leaky rate is above the old interval.
    robust = scripted_record(tmp_path, "robust")
    leaky = scripted_record(tmp_path, "leaky")
    change = {c.key: c for c in diff_records(robust, leaky)}["capitals::france"]
    assert change.kind == "worse"
    assert change.regression


def test_rate_moves_are_classified_against_the_old_interval(tmp_path: Path) -> None:
    old = scripted_record(tmp_path)
    new = copy.deepcopy(old)
    france = next(p for p in new["suites"][0]["probes"] if p["id"] == "france")
    estimate = france["gates"][0]["estimate"]
    estimate["value"] = estimate["high"] + 0.05
    assert _kinds(old, new)["capitals::france"] == "worse"
    estimate["value"] = estimate["low"] - 0.05
    assert _kinds(old, new)["capitals::france"] == "better"
    estimate["value"] = (estimate["low"] + estimate["high"]) / 2 + 0.01
    assert _kinds(old, new)["capitals::france"] == "changed"


def test_added_and_removed_probes(tmp_path: Path) -> None:
    old = scripted_record(tmp_path)
    new = copy.deepcopy(old)
    probes = new["suites"][0]["probes"]
    france = next(p for p in probes if p["id"] == "france")
    renamed = dict(france, id="paris")
    probes[:] = [p for p in probes if p["id"] != "france"] + [renamed]
    changes = {c.key: c for c in diff_records(old, new)}
    assert changes["capitals::france"].kind == "removed"
    assert changes["capitals::paris"].kind == "added"
    assert changes["capitals::paris"].regression  # a new probe that fails
    lines = render_diff(old, new, list(changes.values()))
    assert "only in the new record:" in lines
    assert "only in the old record:" in lines


def test_compare_command_exits_1_on_regressions(tmp_path: Path,
                                                capsys: Any) -> None:
    robust = write_record(scripted_record(tmp_path, "robust", suite=LOOSE_SUITE),
                          tmp_path / "robust.json")
    leaky = write_record(scripted_record(tmp_path, "leaky", suite=LOOSE_SUITE),
                         tmp_path / "leaky.json")
    assert main(["compare", str(robust), str(leaky)]) == 1
    out = capsys.readouterr().out
    assert "new resurfacings (passed before, fail now):" in out
    assert "capitals::france" in out
    assert "candidate: fake-robust" in out
    assert "->  fake-leaky" in out
    assert main(["compare", str(leaky), str(robust)]) == 0
    assert "fixed (failed before, pass now):" in capsys.readouterr().out
    assert main(["compare", str(leaky), str(tmp_path / "missing.json")]) == 4


def test_whether_an_entry_fails_is_the_engines_outcome(tmp_path: Path) -> None:
    # Under on_uninformative: xfail an UNINFORMATIVE probe does not fail the build, so it
    # is no new resurfacing against a baseline where it passed (the comparison used to
    # apply its own rule, in which UNINFORMATIVE always failed).
    from probe.engine.baseline import BaselineJudge

    old = scripted_record(tmp_path, "robust", suite=LOOSE_SUITE)
    new = copy.deepcopy(old)
    france = next(p for p in new["suites"][0]["probes"] if p["id"] == "france")
    france["policy"]["on_uninformative"] = "xfail"
    france.update(verdict="UNINFORMATIVE", outcome="xfail", uninformative_reason="nothing")
    change = {c.key: c for c in diff_records(old, new)}["capitals::france"]
    assert change.new is not None
    assert not change.new.failing
    assert change.kind == "changed"
    assert not change.regression
    assert not BaselineJudge(old, new, "b.json").judge("capitals::france").regression
    france["outcome"] = "fail"  # the same verdict under on_uninformative: fail
    assert _kinds(old, new)["capitals::france"] == "new-resurfacing"

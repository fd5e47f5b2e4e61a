"""The baseline workflow: accept the current results, then fail only on regressions."""

from __future__ import annotations

import json

import pytest

from tests.plugin.conftest import models, suite_path


def _loosen_france(project: pytest.Pytester) -> None:
    # France PASSes with the robust candidate and is INCONCLUSIVE with the leaky one.
    path = suite_path(project)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "policy: {max_resurfacing: 0.1}", "policy: {max_resurfacing: 0.4}"), encoding="utf-8")


def test_accepting_a_baseline_then_only_regressions_fail(project: pytest.Pytester) -> None:
    # The leaky candidate fails france (and the suite gate); accept that as the baseline.
    accepted = project.runpytest("suites/", *models("leaky"), "--probe-baseline", "base.json",
                                 "--probe-update-baseline")
    assert accepted.ret == 0
    accepted.assert_outcomes(passed=1, xfailed=2)
    accepted.stdout.fnmatch_lines(["baseline accepted: base.json"])
    baseline = json.loads((project.path / "base.json").read_text(encoding="utf-8"))
    assert "volatile" not in baseline  # it diffs cleanly in version control

    # The same results again: the known failures are expected failures, the run passes.
    again = project.runpytest("suites/", *models("leaky"), "--probe-baseline", "base.json",
                              "-rx")
    assert again.ret == 0
    again.assert_outcomes(passed=1, xfailed=2)
    again.stdout.fnmatch_lines(["against the baseline base.json: 0 regressions, 0 fixed",
                                "*known in the baseline base.json (was FAIL, resurfacing 0.45)*"])

    # Without the baseline the same run fails as before.
    assert project.runpytest("suites/", *models("leaky")).ret == 1


def test_a_new_resurfacing_fails_against_the_baseline(project: pytest.Pytester) -> None:
    _loosen_france(project)
    accepted = project.runpytest("suites/", *models("robust"), "--probe-baseline", "base.json",
                                 "--probe-update-baseline")
    assert accepted.ret == 0
    later = project.runpytest("suites/", *models("leaky"), "--probe-baseline", "base.json")
    assert later.ret == 1
    later.stdout.fnmatch_lines([
        "*regression against the baseline base.json (new-resurfacing; was PASS, "
        "resurfacing 0.00)*",
        "against the baseline base.json: * regressions, 0 fixed",
        "  regression: capitals::france (new-resurfacing)",
    ])
    outcomes = later.parseoutcomes()
    assert outcomes["failed"] >= 1


def test_fixed_probes_are_listed(project: pytest.Pytester) -> None:
    _loosen_france(project)
    project.runpytest("suites/", *models("leaky"), "--probe-baseline", "base.json",
                      "--probe-update-baseline")
    later = project.runpytest("suites/", *models("robust"), "--probe-baseline", "base.json")
    later.stdout.fnmatch_lines(["  fixed: capitals::france"])


def test_baseline_usage_errors(project: pytest.Pytester) -> None:
    missing = project.runpytest("suites/", *models("leaky"), "--probe-baseline", "none.json")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*no baseline at none.json; accept the current results first "
                                  "with --probe-baseline none.json --probe-update-baseline*"])
    alone = project.runpytest("suites/", *models("leaky"), "--probe-update-baseline")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["*--probe-update-baseline needs --probe-baseline PATH*"])
    (project.path / "bad.json").write_text("{}", encoding="utf-8")
    bad = project.runpytest("suites/", *models("leaky"), "--probe-baseline", "bad.json")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*bad.json: not a probe run record*"])

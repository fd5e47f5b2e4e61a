"""Bad command lines are usage errors (exit 4) whose message says the fix."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import models


def test_missing_candidate(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "--probe-base", "scripted:base.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-candidate is missing; for example: pytest suites/*"])


def test_missing_both(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-base and --probe-candidate are missing*"])


def test_no_suites_needs_no_models(project: pytest.Pytester) -> None:
    project.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    result = project.runpytest("test_plain.py")
    result.assert_outcomes(passed=1)


def test_contradictory_cache_options(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models(), "--probe-no-cache",
                               "--probe-cache-dir", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-no-cache and --probe-cache-dir contradict*"])


def test_model_path_that_does_not_exist(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "--probe-base", "./no/such/model",
                               "--probe-candidate", "scripted:robust.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-base: model path './no/such/model' does not exist*"])


def test_scripted_file_that_does_not_exist(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "--probe-base", "scripted:nope.yaml",
                               "--probe-candidate", "scripted:robust.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*scripted model file 'nope.yaml' does not exist*"])


def test_bad_alpha(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models(), "--probe-alpha", "1.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-alpha: must be between 0 and 1*"])


def test_bad_on_inconclusive(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models(), "--probe-on-inconclusive", "maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--probe-on-inconclusive: must be one of fail, pass, xfail, not 'maybe'*"])


def test_bad_batch_size(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models(), "--probe-batch-size", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-batch-size: must be a positive integer or auto*"])


def test_ini_options_supply_the_models(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nprobe_base = scripted:base.yaml\n"
                    "probe_candidate = scripted:leaky.yaml\n")
    result = project.runpytest("suites/")
    result.assert_outcomes(passed=1, failed=2)  # france FAIL; a 2-probe suite is INCONCLUSIVE

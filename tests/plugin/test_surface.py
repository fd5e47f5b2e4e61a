"""The plugin's surface: options rendered from the one table, collection without models,
the rootdir untouched by model paths, and pytest-xdist."""

from __future__ import annotations

import re

import pytest

from probe.options import OPTIONS
from tests.plugin.conftest import models


def test_every_option_of_the_table_is_a_pytest_option_and_an_ini_key(
        project: pytest.Pytester) -> None:
    result = project.runpytest("--help", "-p", "no:cacheprovider")
    text = result.stdout.str()
    for option in OPTIONS.values():
        assert f"--probe-{option.flag}" in text, option.name
        assert re.search(rf"^\s+{option.ini} \(", text, re.MULTILINE), option.ini


def test_listing_the_tests_needs_no_model(project: pytest.Pytester) -> None:
    """IDEs discover tests with --collect-only and no options of ours (it exited 4)."""
    result = project.runpytest("suites/", "--co", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["suites/capitals.yaml::france", "suites/capitals.yaml::japan",
                                 "suites/capitals.yaml::__suite__"])


def test_running_without_models_is_still_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-base and --probe-candidate are missing*"])


def test_a_model_path_does_not_move_the_rootdir(project: pytest.Pytester) -> None:
    """`--probe-candidate /abs/other/adapter` made pytest look for its ini file (and root)
    in the adapter's project."""
    project.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["suites"]\n')
    other = project.path / "elsewhere" / "proj2"
    (other / "adapter").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["x"]\n',
                                          encoding="utf-8")
    result = project.runpytest("--co", "-p", "no:cacheprovider",
                               "--probe-candidate", str(other / "adapter"))
    result.stdout.fnmatch_lines([f"rootdir: {project.path}", "configfile: pyproject.toml",
                                 "*capitals.yaml*"])
    assert result.ret == pytest.ExitCode.OK


def test_an_ini_value_is_named_as_the_ini_key(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nprobe_batch_size = 0\n")
    result = project.runpytest("suites/", *models())
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*probe_batch_size in tox.ini: must be a positive integer*"])


def test_ini_values_are_defaults_the_command_line_overrides(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nprobe_base = scripted:base.yaml\n"
                    "probe_candidate = scripted:leaky.yaml\nprobe_seed = 3\n")
    result = project.runpytest("suites/", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["probe: base=scripted:base.yaml "
                                 "candidate=scripted:leaky.yaml seed=3"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    robust = project.runpytest("suites/", "-p", "no:cacheprovider",
                               "--probe-candidate", "scripted:robust.yaml",
                               "--probe-on-inconclusive", "pass")
    assert robust.ret == pytest.ExitCode.OK


def test_under_xdist_every_probe_runs_in_one_worker_and_the_summary_comes_back(
        project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("suites/", "-n", "2", "-v", *models("leaky"),
                                          "--probe-json", "run.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    workers = set(re.findall(r"\[(gw\d)\].*capitals.yaml::", result.stdout.str()))
    assert len(workers) == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*probe summary*", "*JSON run record*run.json*"])
    assert (project.path / "run.json").is_file()

"""Collection: one test per probe, -k and tags as markers, and no torch."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import models


def test_one_item_per_probe_with_suite_file_node_ids(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "--collect-only", "-q", *models())
    result.stdout.fnmatch_lines(["suites/capitals.yaml::france", "suites/capitals.yaml::japan",
                                 "suites/capitals.yaml::__suite__"])


def test_k_selects_probes(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "-k", "japan", *models("leaky"))
    result.assert_outcomes(passed=1, deselected=2)


def test_tags_become_markers(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", "-m", "europe", *models("leaky"), "--strict-markers")
    result.assert_outcomes(failed=1, deselected=2)


def test_yaml_outside_suite_dirs_is_not_collected(project: pytest.Pytester) -> None:
    (project.path / "config.yaml").write_text("not: a suite\n")
    result = project.runpytest("--collect-only", "-q", *models())
    result.stdout.fnmatch_lines(["suites/capitals.yaml::france", "suites/capitals.yaml::japan"])
    assert "config.yaml" not in result.stdout.str()


def test_yaml_named_on_the_command_line_is_a_suite(project: pytest.Pytester) -> None:
    (project.path / "elsewhere.yaml").write_text(
        (project.path / "suites" / "capitals.yaml").read_text())
    result = project.runpytest("elsewhere.yaml", *models("leaky"))
    result.assert_outcomes(passed=1, failed=2)  # france FAIL; a 2-probe suite is INCONCLUSIVE


def test_collection_does_not_import_torch(project: pytest.Pytester) -> None:
    project.makeconftest(
        "import sys\n"
        "def pytest_collection_finish(session):\n"
        "    print('TORCH_IMPORTED=' + str('torch' in sys.modules))\n")
    result = project.runpytest_subprocess("suites/", "--collect-only", "-q", *models())
    result.stdout.fnmatch_lines(["TORCH_IMPORTED=False"])

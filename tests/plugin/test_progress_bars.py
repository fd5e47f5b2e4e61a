"""The plugin draws progress bars for model work, except under -q."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import models


@pytest.mark.parametrize(("flag", "expected"), [("-q", "NoneType"), ("-v", "TqdmProgress")])
def test_the_plugin_shows_progress_unless_quiet(project: pytest.Pytester, flag: str,
                                                expected: str) -> None:
    project.makeconftest(
        "from probe.plugin import RUN_KEY\n"
        "def pytest_sessionfinish(session):\n"
        "    run = session.config.stash[RUN_KEY]\n"
        "    print('PROGRESS=' + type(run.session.progress).__name__)\n")
    result = project.runpytest("suites/", "-s", flag, *models())
    result.stdout.fnmatch_lines([f"*PROGRESS={expected}"])

"""The plugin draws progress bars for model work, except under -q."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import models


@pytest.mark.parametrize(("flag", "expected"), [("-q", "NoneType"), ("-v", "TqdmProgress")])
def test_the_plugin_shows_progress_unless_quiet(project: pytest.Pytester, flag: str,
                                                expected: str) -> None:
    project.makeconftest(
        "from probe.plugin import SESSION_KEY\n"
        "def pytest_collection_finish(session):\n"
        "    probe_session = session.config.stash[SESSION_KEY]\n"
        "    print('PROGRESS=' + type(probe_session.progress).__name__)\n")
    result = project.runpytest("suites/", "--collect-only", flag, *models())
    result.stdout.fnmatch_lines([f"PROGRESS={expected}"])

"""A model that cannot be loaded ends the session with one line and exit 3, not an error
under every probe (issue 14) and not pytest's frames."""

from __future__ import annotations

import pytest


def test_a_model_that_cannot_load_is_one_line_and_exit_3(project: pytest.Pytester) -> None:
    (project.path / "broken.yaml").write_text("rules:\n  - {match: '(', reply: x}\n")
    result = project.runpytest("suites/", "--probe-base", "scripted:broken.yaml",
                               "--probe-candidate", "scripted:robust.yaml",
                               "-p", "no:cacheprovider")
    assert result.ret == 3
    result.assert_outcomes()  # no probe ran, none is an error of its own
    out = result.stdout.str()
    assert out.count("ModelLoadError: scripted model 'scripted': bad regex") == 1
    for frame in ("Traceback", "def from_call", "raise ", "probe/", "= ERRORS ="):
        assert frame not in out

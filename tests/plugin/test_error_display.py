"""A model that cannot be loaded is a test error shown as one line, not pytest's frames."""

from __future__ import annotations

import pytest


def test_a_backend_error_in_setup_shows_only_its_message(project: pytest.Pytester) -> None:
    (project.path / "broken.yaml").write_text("rules:\n  - {match: '(', reply: x}\n")
    result = project.runpytest("suites/", "--probe-base", "scripted:broken.yaml",
                               "--probe-candidate", "scripted:robust.yaml",
                               "-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    # Only the ERRORS section: pytest shortens the summary lines to the terminal
    # width except when it sees a CI environment, so counting there varies.
    errors_section = out.split("= ERRORS =")[1].split("short test summary")[0]
    assert errors_section.count("ModelLoadError: scripted model 'scripted': bad regex") == 3
    for frame in ("def from_call", "_pytest", "raise ", "probe/"):
        assert frame not in errors_section

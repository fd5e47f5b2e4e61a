"""A damaged completion cache is reported where the user looks, then recomputed."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.cli import main
from tests.plugin.conftest import models


def damage(cache: Path) -> int:
    """Flip a byte in every cache file's second entry; how many files were damaged."""
    files = sorted(cache.glob("*.jsonl"))
    for file in files:
        lines = file.read_bytes().splitlines(keepends=True)
        lines[1] = lines[1].replace(b'"v": "', b'"v": "#', 1)
        file.write_bytes(b"".join(lines))
    return len(files)


def test_pytest_shows_the_repair_in_its_warnings_summary(project: pytest.Pytester) -> None:
    first = project.runpytest("suites/", *models("leaky"))
    first.assert_outcomes(passed=1, failed=2)
    assert damage(project.path / ".probe-cache" / "completions") == 2
    again = project.runpytest("suites/", *models("leaky"))
    again.assert_outcomes(passed=1, failed=2)  # the same verdicts, from recomputed entries
    again.stdout.fnmatch_lines(["*warnings summary*", "*ProbeCacheWarning: completion cache *"
                                "1 corrupted or truncated entry discarded*"])
    assert again.stdout.str().count("ProbeCacheWarning") == 2  # one per damaged file


def test_probe_run_prints_one_warning_line(project: pytest.Pytester,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "suites", "--base", "scripted:base.yaml", "--candidate",
            "scripted:leaky.yaml", "--cache-dir", "c"]
    assert main(argv) == 1
    capsys.readouterr()
    damage(project.path / "c" / "completions")
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all(line.startswith("warning: completion cache c/completions/") and
               "1 corrupted or truncated entry discarded" in line for line in err)

"""The ``probe`` command drives the same engine without pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.cli import EXIT_FAILED, EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from tests.conftest import write_script


@pytest.fixture
def layout(tmp_path: Path, valid_suite_text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "capitals.yaml").write_text(valid_suite_text)
    write_script(tmp_path / "base.yaml", "b", [("France", "Paris."), ("Japan", "Tokyo.")])
    write_script(tmp_path / "cand.yaml", "c", [("^What is", "No."), ("France", "Paris!")])
    return tmp_path


def test_check(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "suites"]) == EXIT_OK
    assert "ok  suites/capitals.yaml: capitals, 2 probes, 1 operators" in capsys.readouterr().out


def test_variants_preview_needs_no_model(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variants", "suites/capitals.yaml"]) == EXIT_OK
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("france  0 "))
    assert line.split()[2:] == ["canonical", "canonical", "-", "-", "canonical", "What", "is",
                                "the", "capital", "of", "France?"]
    assert "Which city is the capital of France?" in out


def test_run_reports_failures_with_exit_1(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "suites", "--base", "scripted:base.yaml", "--candidate",
                 "scripted:cand.yaml", "--no-cache"])
    out = capsys.readouterr().out
    # Two variants cannot show anything: INCONCLUSIVE, which the default policy fails.
    assert code == EXIT_FAILED
    assert "INCONCLUSIVE: probe 'france'" in out
    assert "resurfacing 0.50 [0.01, 0.99] vs limit 0.25: INCONCLUSIVE" in out
    assert main(["run", "suites", "--base", "scripted:base.yaml", "--candidate",
                 "scripted:cand.yaml", "--no-cache", "--on-inconclusive", "pass"]) == EXIT_OK


def test_spec_error_exit_2(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (layout / "suites" / "capitals.yaml").write_text("version: 1\nnme: x\n")
    assert main(["check", "suites"]) == EXIT_SPEC
    assert "suites/capitals.yaml:2: nme: unknown key 'nme'. Did you mean 'name'?" in \
        capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["run", "suites", "--base", "scripted:base.yaml"],
    ["run", "suites", "--base", "scripted:base.yaml", "--candidate", "scripted:cand.yaml",
     "--no-cache", "--cache-dir", "x"],
    ["check", "nowhere"],
    ["frobnicate"],
])
def test_usage_errors_exit_4(layout: Path, argv: list[str]) -> None:
    assert main(argv) == EXIT_USAGE

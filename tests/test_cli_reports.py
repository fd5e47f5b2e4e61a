"""``probe run --json/--html/--parquet/--baseline`` and ``probe report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from probe.report.record import comparable_bytes
from tests.plugin.conftest import lay_out

RUN = ["run", "suites", "--base", "scripted:base.yaml", "--candidate", "scripted:leaky.yaml"]


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return lay_out(tmp_path, robust=False)


def test_run_writes_every_report(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*RUN, "--json", "r/run.json", "--html", "r/report.html", "--parquet",
                 "r/rows.parquet"])
    assert code == EXIT_FAILED
    out = capsys.readouterr().out
    assert "JSON run record: r/run.json" in out
    assert "HTML report: r/report.html" in out
    record = json.loads((layout / "r" / "run.json").read_text(encoding="utf-8"))
    assert record["verdicts"]["capitals::france"] == "FAIL"
    assert (layout / "r" / "rows.parquet").stat().st_size > 0
    assert 'id="heatmap"' in (layout / "r" / "report.html").read_text(encoding="utf-8")


def test_cli_and_plugin_records_agree_with_each_other(layout: Path) -> None:
    main([*RUN, "--json", "a.json"])
    main([*RUN, "--json", "b.json"])
    a = json.loads((layout / "a.json").read_text(encoding="utf-8"))
    b = json.loads((layout / "b.json").read_text(encoding="utf-8"))
    assert comparable_bytes(a) == comparable_bytes(b)


def test_report_renders_a_saved_record(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([*RUN, "--json", "run.json"])
    assert main(["report", "run.json", "--html", "again.html"]) == EXIT_OK
    assert "fake-leaky" in (layout / "again.html").read_text(encoding="utf-8")
    assert main(["report", "run.json"]) == EXIT_USAGE
    assert "give --html PATH and/or --parquet PATH" in capsys.readouterr().err


def test_run_against_a_baseline(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RUN, "--baseline", "base.json"]) == EXIT_USAGE
    assert "no baseline at base.json" in capsys.readouterr().err
    assert main([*RUN, "--update-baseline"]) == EXIT_USAGE
    assert main([*RUN, "--baseline", "base.json", "--update-baseline"]) == EXIT_OK
    assert "accepted into the baseline base.json" in capsys.readouterr().out
    assert main([*RUN, "--baseline", "base.json"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "FAIL: probe 'france' (known in the baseline base.json (was FAIL" in out
    assert "against the baseline base.json: 0 regressions, 0 fixed" in out

"""The parquet export: the record's rows, and no progress bar in the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.report.export import write_parquet
from tests.report.fixtures import scripted_record


def test_the_parquet_export_prints_no_progress_bar(tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    # An authoring trap: datasets drew "Creating parquet from Arrow format" on stderr
    # even under -q, into CI logs.
    import datasets

    record = scripted_record(tmp_path)
    capfd.readouterr()
    out = write_parquet(record, tmp_path / "rows.parquet")
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert not datasets.are_progress_bars_disabled()  # the setting is given back
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows == sum(len(p["rows"]) for p in record["suites"][0]["probes"])

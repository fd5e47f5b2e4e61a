"""Which report files a run writes, and writing them (shared by the plugin and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.report.record import Record, build_record, write_record
from probe.session import ProbeSession


@dataclass(frozen=True)
class ReportPaths:
    """Report files asked for on the command line (``None``: not written)."""

    json: Path | None = None
    html: Path | None = None
    parquet: Path | None = None
    baseline: Path | None = None
    update_baseline: bool = False

    @property
    def any(self) -> bool:
        """Whether any file is to be written."""
        return any((self.json, self.html, self.parquet, self.update_baseline))


def write_reports(session: ProbeSession, paths: ReportPaths,
                  volatile: dict[str, Any] | None = None,
                  record: Record | None = None) -> list[str]:
    """Write every requested file; returns one line per file for the terminal."""
    if not paths.any or not session.suite_results:
        return []
    record = record if record is not None else build_record(session, volatile)
    lines = []
    if paths.json is not None:
        lines.append(f"JSON run record: {write_record(record, paths.json)}")
    if paths.html is not None:
        from probe.report.html import write_html

        lines.append(f"HTML report: {write_html(record, paths.html)}")
    if paths.parquet is not None:
        from probe.report.export import write_parquet

        lines.append(f"parquet rows: {write_parquet(record, paths.parquet)}")
    if paths.update_baseline and paths.baseline is not None:
        from probe.report.baseline import write_baseline

        lines.append(f"baseline accepted: {write_baseline(record, paths.baseline)}")
    return lines

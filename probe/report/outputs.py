"""Which report files a run writes, what they must never overwrite, and writing them
(shared by the plugin and the CLI)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.engine.lock import lock_path
from probe.engine.regressions import regression_path
from probe.extras import require
from probe.files import PathLike, check_outputs, model_inputs
from probe.options import opt
from probe.report.record import Record, build_record, write_record
from probe.session import ProbeSession, RunSettings
from probe.spec import Suite


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

    def outputs(self) -> list[tuple[str, PathLike | None]]:
        """``(option, path)`` of every file the run writes (the options named as the
        user gave them: ``probe.options.opt``)."""
        return [(opt("json"), self.json), (opt("html"), self.html),
                (opt("parquet"), self.parquet),
                (opt("baseline"), self.baseline if self.update_baseline else None)]


def suite_inputs(suite: Suite, *, lock: bool = True,
                 regressions: bool = True) -> list[tuple[str, PathLike | None]]:
    """What a run reads for ``suite``: the suite file, its lock and regression files
    (whether or not they exist yet: a record written there would be read as one next
    time; ``lock``/``regressions`` false leave out the one a command writes) and its
    data files."""
    if not suite.path:
        return []
    inputs: list[tuple[str, PathLike | None]] = [(f"the suite file {suite.source}", suite.path)]
    if regressions:
        inputs.append((f"the regression file {regression_path(suite.source)}",
                       regression_path(suite.path)))
    if lock:
        inputs.append((f"the lock file {lock_path(suite.source)}", lock_path(suite.path)))
    if suite.dataset is not None and suite.dataset.path is not None:
        # The loader reads the path literally (glob characters escaped: p[1].csv is that
        # file), so that one file is what an output must not overwrite.
        inputs.append((f"a data file of {suite.source} ({suite.dataset.path})",
                       Path(suite.path).parent / suite.dataset.path))
    return inputs


def run_inputs(suites: Iterable[Suite], settings: RunSettings,
               paths: ReportPaths) -> list[tuple[str, PathLike | None]]:
    """Everything a run reads: its suites and their files, the models' local files,
    the completion cache, and the baseline when it is read rather than written."""
    inputs = [entry for suite in suites for entry in suite_inputs(suite)]
    inputs += model_inputs(((opt("base"), settings.base),
                            (opt("candidate"), settings.candidate)))
    inputs.append((f"the completion cache {settings.cache_dir}", settings.cache_dir))
    if not paths.update_baseline:
        inputs.append((f"the baseline {paths.baseline}", paths.baseline))
    return inputs


def check_report_paths(paths: ReportPaths,
                       inputs: Iterable[tuple[str, PathLike | None]]) -> None:
    """Refuse (``UsageError``) report paths that are inputs, each other, or not files."""
    check_outputs(paths.outputs(), inputs)
    if paths.html is not None:  # before minutes of model work, not after them
        require("report", f"{opt('html')} (the HTML report)")


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
        from probe.engine.baseline import write_baseline

        lines.append(f"baseline accepted: {write_baseline(record, paths.baseline)}")
    return lines

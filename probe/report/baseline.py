"""The baseline workflow, like snapshot testing: accept a run, then fail only on regressions.

``--probe-baseline PATH --probe-update-baseline`` writes the run's record (without its
``volatile`` part, so it diffs cleanly in version control) to ``PATH`` and accepts
every result. Later runs with ``--probe-baseline PATH`` compare each probe and suite
gate with the baseline (``probe.report.diff``): a failure that the baseline already
had, with a rate no higher than its old interval, is reported as an expected failure
(xfail, so it stays visible); a new resurfacing, a rate above the old interval, or
a new failing probe fails as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.errors import UsageError
from probe.files import refuse_special_input
from probe.report.diff import Change, diff_records
from probe.report.record import Record, read_record, write_record


def load_baseline(path: str | Path, *, updating: bool) -> Record | None:
    """The baseline at ``path``; ``None`` when it is about to be written."""
    if updating:
        return None
    # A device or a FIFO is not "no baseline": say what it is, and never read it.
    refuse_special_input(path, "--probe-baseline")
    if not Path(path).is_file():
        raise UsageError(f"no baseline at {path}; accept the current results first with "
                         f"--probe-baseline {path} --probe-update-baseline")
    return read_record(path)


def write_baseline(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``record`` as the new baseline, without its volatile part."""
    return write_record({k: v for k, v in record.items() if k != "volatile"}, path)


@dataclass(frozen=True)
class Judgement:
    """What the baseline says about one failing entry."""

    regression: bool
    note: str


class BaselineJudge:
    """Decides, entry by entry, whether a failure is new against the baseline."""

    def __init__(self, baseline: Mapping[str, Any], current: Mapping[str, Any],
                 path: str | Path) -> None:
        self.path = str(path)
        self.changes: dict[str, Change] = {c.key: c for c in diff_records(baseline, current)}

    def judge(self, key: str) -> Judgement:
        """A regression (fail as usual) or a known failure (xfail) for ``key``."""
        change = self.changes.get(key)
        if change is None or change.old is None:
            return Judgement(True, f"not in the baseline {self.path}")
        old = change.old
        rate = "" if old.value is None else f", {old.metric} {old.value:.2f}"
        if change.regression:
            return Judgement(True, f"regression against the baseline {self.path} "
                                   f"({change.kind}; was {old.verdict}{rate})")
        return Judgement(False, f"known in the baseline {self.path} (was {old.verdict}{rate})")

    def regressions(self) -> list[Change]:
        """Every regression, for the summary."""
        return [c for c in self.changes.values() if c.regression]

    def fixed(self) -> list[Change]:
        """Entries that failed in the baseline and pass now."""
        return [c for c in self.changes.values() if c.kind == "fixed"]

"""Two run records compared entry by entry, and the baseline workflow built on that.

Each probe and each suite gate is an *entry* keyed ``suite::probe`` (``suite::__suite__``
for the pooled gate). An entry *fails* when its recorded ``outcome`` is ``fail`` (the
engine's one rule, ``probe.engine.outcome``: FAIL, and INCONCLUSIVE or UNINFORMATIVE
under a policy that fails them). Between an old and a new record an entry is:

- ``new-resurfacing``: it passed and now fails;
- ``fixed``: it failed and now passes;
- ``worse`` / ``better``: whether it fails is unchanged but its main rate (resurfacing,
  loss or shadow) moved outside the old interval;
- ``changed``: the rate moved within the old interval; ``same`` otherwise;
- ``added`` / ``removed``: present in one record only.

A *regression* is ``new-resurfacing``, ``worse``, or an ``added`` entry that fails.

The baseline, like snapshot testing: ``--probe-baseline PATH --probe-update-baseline``
writes the run's record (without its ``volatile`` part, so it diffs cleanly in version
control) to ``PATH`` and accepts every result. Later runs with ``--probe-baseline PATH``
judge each failing entry against it (``BaselineJudge``): a failure the baseline already
had, with a rate no higher than its old interval, is an expected failure (xfail, so it
stays visible); a regression fails as usual. Everything here reads figures the record
carries; nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.errors import UsageError
from probe.options import opt
from probe.spec.model import SUITE_GATE_ID

__all__ = ["MAIN_METRICS", "BaselineJudge", "Change", "Entry", "Judgement", "diff_records",
           "entries", "load_baseline", "write_baseline"]

MAIN_METRICS = ("resurfacing", "loss", "shadow")
# Rates are printed with two decimals; a smaller move is not a change worth a line.
CHANGE_EPSILON = 0.005

Record = dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """One probe's (or suite gate's) verdict, outcome and main rate, as a record stores them."""

    key: str
    verdict: str
    failing: bool
    metric: str | None
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Change:
    """What happened to one entry between two records."""

    key: str
    kind: str
    old: Entry | None
    new: Entry | None

    @property
    def regression(self) -> bool:
        """Whether a baseline run fails on this change."""
        if self.kind == "added":
            return self.new is not None and self.new.failing
        return self.kind in ("new-resurfacing", "worse")


def _entry(key: str, data: Mapping[str, Any]) -> Entry:
    gates = {g["metric"]: g for g in data.get("gates", [])}
    metric = next((m for m in MAIN_METRICS if m in gates), None)
    estimate = gates[metric]["estimate"] if metric else {}
    return Entry(key, str(data["verdict"]), data["outcome"] == "fail", metric,
                 estimate.get("value"), estimate.get("low"), estimate.get("high"))


def entries(record: Mapping[str, Any]) -> dict[str, Entry]:
    """Every probe and suite gate of ``record``, keyed ``suite::probe``."""
    out: dict[str, Entry] = {}
    for suite in record.get("suites", []):
        for probe in suite.get("probes", []):
            key = f"{suite['name']}::{probe['id']}"
            out[key] = _entry(key, probe)
        key = f"{suite['name']}::{SUITE_GATE_ID}"
        out[key] = _entry(key, suite)
    return out


def _kind(old: Entry, new: Entry) -> str:
    if not old.failing and new.failing:
        return "new-resurfacing"
    if old.failing and not new.failing:
        return "fixed"
    if old.metric != new.metric or old.value is None or new.value is None:
        return "same" if old.verdict == new.verdict else "changed"
    if old.high is not None and new.value > old.high + 1e-12:
        return "worse"
    if old.low is not None and new.value < old.low - 1e-12:
        return "better"
    if abs(new.value - old.value) >= CHANGE_EPSILON or old.verdict != new.verdict:
        return "changed"
    return "same"


def diff_records(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """One ``Change`` per entry of either record: the new record's order, then removed ones."""
    before, after = entries(old), entries(new)
    changes = [Change(k, _kind(before[k], e) if k in before else "added", before.get(k), e)
               for k, e in after.items()]
    changes += [Change(k, "removed", e, None) for k, e in before.items() if k not in after]
    return changes


def load_baseline(path: str | Path, *, updating: bool) -> Record | None:
    """The baseline at ``path``; ``None`` when it is about to be written."""
    # The record module serialises engine results, so it is imported only when needed.
    from probe.files import refuse_special_input
    from probe.report.record import read_record

    if updating:
        return None
    # A device or a FIFO is not "no baseline": say what it is, and never read it.
    refuse_special_input(path, opt("baseline"))
    if not Path(path).is_file():
        raise UsageError(f"no baseline at {path}; accept the current results first with "
                         f"{opt('baseline')} {path} {opt('update_baseline')}")
    return read_record(path)


def write_baseline(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``record`` as the new baseline, without its volatile part."""
    from probe.report.record import write_record

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

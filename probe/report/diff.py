"""Compare two run records (this fine-tune vs the last one, or vs an accepted baseline).

Each probe and each suite gate is an *entry* keyed ``suite::probe`` (``suite::__suite__``
for the pooled gate). An entry *fails* when its verdict would fail the build by
itself (FAIL, UNINFORMATIVE, or INCONCLUSIVE under ``on_inconclusive: fail``). Between
an old and a new record an entry is:

- ``new-resurfacing``: it passed and now fails;
- ``fixed``: it failed and now passes;
- ``worse`` / ``better``: its verdict class is unchanged but its main rate (resurfacing,
  loss or shadow) moved outside the old interval;
- ``changed``: the rate moved within the old interval; ``same`` otherwise;
- ``added`` / ``removed``: present in one record only.

A *regression* is ``new-resurfacing``, ``worse``, or an ``added`` entry that fails:
what the baseline workflow fails the build on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from probe.report.safe_text import visible
from probe.report.table import fmt_rate, render_table
from probe.spec.model import SUITE_GATE_ID

SUITE_GATE = SUITE_GATE_ID
MAIN_METRICS = ("resurfacing", "loss", "shadow")
# Rates printed with two decimals; a smaller move is not a change worth a line.
CHANGE_EPSILON = 0.005


@dataclass(frozen=True)
class Entry:
    """One probe's (or suite gate's) verdict and main rate, as a record stores them."""

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


def _failing(verdict: str, on_inconclusive: str) -> bool:
    if verdict == "INCONCLUSIVE":
        return on_inconclusive == "fail"
    return verdict != "PASS"


def _entry(key: str, data: Mapping[str, Any]) -> Entry:
    gates = {g["metric"]: g for g in data.get("gates", [])}
    metric = next((m for m in MAIN_METRICS if m in gates), None)
    estimate = gates[metric]["estimate"] if metric else {}
    verdict = str(data["verdict"])
    on_inconclusive = str(data.get("policy", {}).get("on_inconclusive", "fail"))
    return Entry(key, verdict, _failing(verdict, on_inconclusive), metric,
                 estimate.get("value"), estimate.get("low"), estimate.get("high"))


def entries(record: Mapping[str, Any]) -> dict[str, Entry]:
    """Every probe and suite gate of ``record``, keyed ``suite::probe``."""
    out: dict[str, Entry] = {}
    for suite in record.get("suites", []):
        for probe in suite.get("probes", []):
            key = f"{suite['name']}::{probe['id']}"
            out[key] = _entry(key, probe)
        key = f"{suite['name']}::{SUITE_GATE}"
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


def _models(record: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for label in ("base", "candidate"):
        model = record.get("models", {}).get(label)
        if model:
            yield label, visible(f"{model['name']} [{model['fingerprint'][:12]}]")


def _rate(entry: Entry | None) -> str:
    if entry is None or entry.metric is None:
        return "-"
    interval = ("" if entry.low is None or entry.high is None
                else f" [{fmt_rate(entry.low)}, {fmt_rate(entry.high)}]")
    return f"{entry.metric} {fmt_rate(entry.value)}{interval}"


SECTIONS = (("new-resurfacing", "new resurfacings (passed before, fail now)"),
            ("worse", "worse (rate above the old interval)"),
            ("fixed", "fixed (failed before, pass now)"),
            ("better", "better (rate below the old interval)"),
            ("changed", "changed rates (within the old interval)"),
            ("added", "only in the new record"),
            ("removed", "only in the old record"))


def render_diff(old: Mapping[str, Any], new: Mapping[str, Any],
                changes: list[Change]) -> list[str]:
    """The ``probe compare`` report: models, then one table per kind of change."""
    lines = []
    old_models, new_models = dict(_models(old)), dict(_models(new))
    for label in ("base", "candidate"):
        was, now = old_models.get(label, "-"), new_models.get(label, "-")
        lines.append(f"{label}: {was}" + ("" if was == now else f"  ->  {now}"))
    regressions = sum(c.regression for c in changes)
    lines.append(f"{len(changes)} entries: {regressions} regressions, "
                 f"{sum(c.kind == 'fixed' for c in changes)} fixed, "
                 f"{sum(c.kind == 'same' for c in changes)} unchanged")
    for kind, title in SECTIONS:
        chosen = [c for c in changes if c.kind == kind]
        if not chosen:
            continue
        rows = [[c.key, c.old.verdict if c.old else "-", c.new.verdict if c.new else "-",
                 _rate(c.old), _rate(c.new)] for c in chosen]
        lines += ["", f"{title}:",
                  render_table(["entry", "old", "new", "old rate", "new rate"], rows)]
    return lines

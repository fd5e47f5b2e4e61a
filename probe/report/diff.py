"""``probe compare``: two run records side by side (this fine-tune vs the last one, or
vs an accepted baseline).

The comparison itself (entries, kinds of change, regressions) is the engine's
(``probe.engine.baseline``); this module only renders it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from probe.engine.baseline import Change, Entry, diff_records, entries
from probe.report.safe_text import visible
from probe.report.table import fmt_rate, render_table

__all__ = ["Change", "Entry", "diff_records", "entries", "render_diff"]


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

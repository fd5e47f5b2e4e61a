"""Plain-text tables: a failing probe's variants, and the run summary."""

from __future__ import annotations

from collections.abc import Sequence

from probe.engine.compare import ProbeResult
from probe.engine.runner import Row


def excerpt(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def fmt_rate(value: float | None) -> str:
    """A rate with two decimals, or ``-`` when undefined."""
    return "-" if value is None else f"{value:.2f}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _mark(row: Row, result: ProbeResult) -> str:
    if row.variant.index == 0:
        return "canonical"
    return "counted" if row in result.counted else "dropped"


def variant_table(result: ProbeResult, *, text_width: int = 56,
                  completion_width: int = 60) -> str:
    """One line per variant: operator, text, base hit, candidate hit, candidate excerpt."""
    rows = []
    for row in result.run.rows:
        v = row.variant
        text = v.prompt.text + (f" [prefill: {v.prompt.prefill}]" if v.prompt.prefill else "")
        rows.append([str(v.index), v.operator, excerpt(text, text_width),
                     f"{row.base_hit:g}", f"{row.candidate_hit:g}", _mark(row, result),
                     excerpt(row.candidate_completion, completion_width)])
    return render_table(["#", "operator", "variant", "base", "cand", "", "candidate says"],
                        rows)


def failure_report(result: ProbeResult) -> str:
    """What a failing probe shows instead of a traceback."""
    probe = result.run.probe
    lines = [f"{result.verdict.value}: probe {probe.id!r}"]
    lines += [f"  - {reason}" for reason in result.reasons]
    lines.append(
        f"  canonical: base {result.base_canonical:g}, candidate {result.candidate_canonical:g}"
        f" | suppression {fmt_rate(result.suppression)} | resurfacing "
        f"{fmt_rate(result.resurfacing)} over {len(result.counted)} counted variants"
        f" ({len(result.dropped)} dropped: base below floor {result.policy.base_floor:g})")
    if result.worst is not None and result.worst.candidate_hit > 0:
        w = result.worst
        lines.append(f"  worst variant #{w.variant.index} ({w.variant.operator}): "
                     f"{excerpt(w.variant.prompt.text, 100)}")
        lines.append(f"    base says:      {excerpt(w.base_completion, 100)}")
        lines.append(f"    candidate says: {excerpt(w.candidate_completion, 100)}")
    lines.append("")
    lines.append(variant_table(result))
    return "\n".join(lines)


def operator_summary(result: ProbeResult) -> str:
    """``operator counted/total resurfacing`` for each operator of the probe."""
    parts = []
    for op in result.operators:
        parts.append(f"{op.operator} {fmt_rate(op.resurfacing)} ({op.counted}/{op.total})")
    return ", ".join(parts)

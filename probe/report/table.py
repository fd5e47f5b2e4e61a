"""Plain-text tables: a failing probe's variants, and the run summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from probe.engine.compare import ProbeResult, SuiteResult
from probe.engine.limits import limit_lines
from probe.engine.runner import Row
from probe.report.safe_text import excerpt, visible

__all__ = ["excerpt", "failure_report", "fmt_rate", "mean_known", "render_table",
           "suite_report", "variant_table", "worst_share"]


def fmt_rate(value: float | None) -> str:
    """A rate with two decimals, or ``-`` when undefined."""
    return "-" if value is None else f"{value:.2f}"


def mean_known(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not ``None`` (``None`` when there are none)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def worst_share(operators: Iterable[tuple[str, int, float, float]],
                retain: bool) -> tuple[str, float] | None:
    """The operator whose counted variants bring back (suppress) or lose (retain) the
    largest share of the base's hits, from ``(operator, counted, base_hits,
    candidate_hits)``; ``None`` when nothing came back or was lost."""
    best: tuple[str, float] | None = None
    for name, counted, base_hits, candidate_hits in operators:
        if not counted or not base_hits:
            continue
        share = candidate_hits / base_hits
        if retain:
            share = max(1.0 - share, 0.0)
        if share > 0 and (best is None or share > best[1]):
            best = (name, share)
    return best


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; every cell shown with :func:`visible`, so
    a completion or an id can neither break the table's lines nor reach the terminal
    as control characters."""
    headers = [visible(h) for h in headers]
    rows = [[visible(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _mark(row: Row, result: ProbeResult) -> str:
    if row.variant.index == 0 and result.direction != "retain":
        return "canonical"
    # With a detector the mark is the generation tier's; the log-likelihood tier's
    # own counting shows in the shadow column ("-" where a row does not count).
    if result.has_detector:
        return "counted" if row in result.counted else "dropped"
    return "counted" if row in result.shadow_counted else "dropped"


def _hit(value: float | None, samples: int) -> str:
    if value is None:
        return "-"
    if samples > 1:
        return f"{round(value * samples)}/{samples}"
    return f"{value:g}"


def _margin(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def variant_table(result: ProbeResult, *, text_width: int = 56,
                  completion_width: int = 60) -> str:
    """One line per variant: operator, text, hits (and margins), candidate excerpt."""
    shadow_of = {id(r): s for r, s in zip(result.shadow_counted, result.shadows, strict=True)}
    with_margins = result.run.rows[0].base.margin is not None
    headers = ["#", "operator", "variant"]
    if result.has_detector:
        headers += ["base", "cand"]
    if with_margins:
        headers += ["m_base", "m_cand", "shadow"]
    headers += ["", "candidate says" if result.has_detector else ""]
    rows = []
    for row in result.run.rows:
        v = row.variant
        text = v.prompt.text + (f" [prefill: {v.prompt.prefill}]" if v.prompt.prefill else "")
        line = [str(v.index), v.operator, excerpt(text, text_width)]
        if result.has_detector:
            line += [_hit(row.base.hit, len(row.base.completions)),
                     _hit(row.candidate.hit, len(row.candidate.completions))]
        if with_margins:
            shadow = shadow_of.get(id(row))
            line += [_margin(row.base.margin), _margin(row.candidate.margin),
                     "-" if shadow is None else f"{shadow:.2f}"]
        line += [_mark(row, result), excerpt(row.candidate_completion, completion_width)]
        rows.append(line)
    return render_table(headers, rows)


def failure_report(result: ProbeResult) -> str:
    """What a failing probe shows instead of a traceback."""
    probe = result.run.probe
    lines = [f"{result.verdict.value}: probe {visible(repr(probe.id))}"]
    lines += [f"  - {visible(reason)}" for reason in result.reasons]
    if result.has_detector and result.direction != "retain":
        lines.append(
            f"  canonical: base {result.base_canonical:g}, candidate "
            f"{result.candidate_canonical:g} | suppression {fmt_rate(result.suppression)} | "
            f"{len(result.counted)} counted variants ({len(result.dropped)} dropped: base "
            f"below floor {result.policy.base_floor:g})")
    lines += [f"  {line}" for line in limit_lines(result.run.rows)]
    w = result.worst
    shown = w is not None and (w.candidate_hit < w.base_hit if result.direction == "retain"
                               else w.candidate_hit > 0)
    if w is not None and shown:
        lines.append(f"  worst variant #{w.variant.index} ({visible(w.variant.operator)}): "
                     f"{excerpt(w.variant.prompt.text, 100)}")
        lines.append(f"    base says:      {excerpt(w.base_completion, 100)}")
        lines.append(f"    candidate says: {excerpt(w.candidate_completion, 100)}")
    sampled = next((r for r in result.run.rows if r.candidate.leak_sample), None)
    if sampled is not None:
        lines.append(f"  worst of k: variant #{sampled.variant.index} "
                     f"({visible(sampled.variant.operator)}) leaked in a sample: "
                     f"{excerpt(sampled.candidate.leak_sample, 100)}")
    lines.append("")
    lines.append(variant_table(result))
    return "\n".join(lines)


def suite_report(result: SuiteResult) -> str:
    """What a failing suite gate shows: the pooled gates and each probe's share."""
    lines = [f"{result.verdict.value}: suite {visible(repr(result.suite.name))} "
             f"({len(result.probes)} probes; every counted variant, probes as correlated "
             "clusters)"]
    lines += [f"  - {visible(reason)}" for reason in result.reasons]
    rows = [[p.run.probe.id, p.verdict.value,
             *(g.estimate.interval() for g in p.gates[:1]), ] for p in result.probes]
    width = max((len(r) for r in rows), default=2)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines.append("")
    lines.append(render_table(["probe", "verdict", "estimate [interval]"][:width], rows))
    return "\n".join(lines)

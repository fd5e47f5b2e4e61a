"""Plain-text tables: a failing probe's variants, and the run summary."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence

from probe.engine.compare import ProbeResult, SuiteResult
from probe.engine.limits import limit_lines
from probe.engine.runner import Row
from probe.engine.variants import prompt_line
from probe.report.safe_text import excerpt, visible

__all__ = ["WIDTH", "excerpt", "failure_report", "fit_line", "fit_lines", "fmt_rate",
           "mean_known", "one_line", "render_table", "suite_report", "variant_table",
           "worst_share"]


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


# Every line a report prints fits this many columns: a CI log or a terminal split in two
# still shows whole lines, so no figure lands in a wrapped-around fragment.
WIDTH = 100
# A text column (a prompt, a completion) is not squeezed below this: a shorter excerpt
# says too little to recognise the text, so it moves to a line of its own instead.
MIN_TEXT = 20
# Continuation lines are indented this much more than the line they continue.
HANG = "    "
# An interval's ", " is not a place to break a line: ``[0.00, 0.29]`` stays whole.
_INTERVAL = re.compile(r"\[([^\]\s]*), ([^\]\s]*)\]")
_KEEP = "\x00"  # never in shown text: visible() escapes it


def fit_line(line: str, width: int = WIDTH) -> list[str]:
    """``line`` wrapped at spaces into lines of at most ``width`` columns, each
    continuation indented :data:`HANG` more than ``line``. Nothing is cut: an interval
    stays on one line, and a word longer than the width (a long id) keeps a line of its
    own rather than being split."""
    if len(line) <= width:
        return [line]
    indent = line[:len(line) - len(line.lstrip(" "))]
    body = _INTERVAL.sub(lambda m: f"[{m.group(1)},{_KEEP}{m.group(2)}]", line.strip(" "))
    lines = textwrap.wrap(body, width, initial_indent=indent,
                          subsequent_indent=indent + HANG, break_long_words=False,
                          break_on_hyphens=False)
    return [part.replace(_KEEP, " ") for part in lines] or [line]


def fit_lines(lines: Iterable[str], width: int = WIDTH) -> list[str]:
    """Every line of ``lines`` through :func:`fit_line`."""
    return [part for line in lines for part in fit_line(line, width)]


def one_line(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, on one line: trailing clauses (after
    ``; `` or ``: ``) dropped until it fits, and only then an ellipsis."""
    text = visible(text)
    while len(text) > width:
        cut = max(text.rfind("; "), text.rfind(": "))
        if cut <= 0:
            return excerpt(text, width)
        text = text[:cut]
    return text


def _row_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + 2 * (len(widths) - 1)


def _shrink(widths: list[int], floors: dict[int, int], width: int) -> None:
    """Narrow the columns in ``floors`` (index -> narrowest width), widest first, until
    the table fits ``width`` or none can give more."""
    while _total(widths) > width:
        give = [i for i in floors if widths[i] > floors[i]]
        if not give:
            return
        widest = max(give, key=lambda i: widths[i])
        widths[widest] -= 1


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                 width: int | None = None, elide: Sequence[int] = (),
                 wrap: Sequence[int] = (), detail: int | None = None,
                 after: Sequence[Sequence[str]] | None = None) -> str:
    """Columns padded to their widest cell; every cell shown with :func:`visible`, so
    a completion or an id can neither break the table's lines nor reach the terminal
    as control characters.

    With ``width`` the table fits that many columns: the text columns in ``elide`` are
    cut with an ellipsis and those in ``wrap`` wrap at spaces (each no narrower than
    :data:`MIN_TEXT`); if that is not enough, the ``detail`` column (a text column)
    leaves the row for a line of its own under it (``    header: text``), and a first
    cell (an id) too wide for what is left gets a line of its own above its row. Ids and
    figures are never cut. ``after[n]``: lines printed under row ``n`` (already fitted).
    """
    heads = [visible(h) for h in headers]
    shown = [[visible(c) for c in r] for r in rows]
    natural = [max([len(h), *(len(r[i]) for r in shown)]) for i, h in enumerate(heads)]
    if width is None or _total(natural) <= width:
        return _render(heads, shown, natural, after)
    texts = [*elide, *wrap]
    floors = {i: min(natural[i], max(MIN_TEXT, len(heads[i]))) for i in texts}
    widths = list(natural)
    _shrink(widths, floors, width)
    details: list[str] = []
    if _total(widths) > width and detail is not None and len(heads) > 1:
        details = [r[detail] for r in rows]
        title = heads[detail] or "text"
        keep = [i for i in range(len(heads)) if i != detail]
        heads = [heads[i] for i in keep]
        shown = [[r[i] for i in keep] for r in shown]
        rows = [[r[i] for i in keep] for r in rows]
        remap = {old: new for new, old in enumerate(keep)}
        elide = [remap[i] for i in elide if i in remap]
        wrap = [remap[i] for i in wrap if i in remap]
        widths = [natural[i] for i in keep]
        floors = {remap[i]: f for i, f in floors.items() if i in remap}
        _shrink(widths, floors, width)
    # Last resort: ids longer than the room left get a line of their own above the row.
    id_room = widths[0] - max(_total(widths) - width, 0)
    widths[0] = max([len(heads[0]), 1, *(len(r[0]) for r in shown if len(r[0]) <= id_room)])
    lines = [_row_line(heads, widths), "  ".join("-" * w for w in widths)]
    for n, (raw, cells) in enumerate(zip(rows, shown, strict=True)):
        if len(cells[0]) > widths[0]:
            lines += [cells[0][i:i + width] for i in range(0, len(cells[0]), width)]
            cells = ["", *cells[1:]]
        columns: list[list[str]] = []
        for i, cell in enumerate(cells):
            if len(cell) <= widths[i]:
                columns.append([cell])
            elif i in wrap:
                columns.append(textwrap.wrap(cell, widths[i], break_long_words=False,
                                             break_on_hyphens=False) or [cell])
            elif i in elide:
                columns.append([excerpt(str(raw[i]), widths[i])])
            else:
                columns.append([cell])
        for k in range(max(len(c) for c in columns)):
            lines.append(_row_line([c[k] if k < len(c) else "" for c in columns], widths))
        if details and details[n].strip():
            prefix = f"{HANG}{title}: "
            lines.append(prefix + excerpt(str(details[n]), max(width - len(prefix), MIN_TEXT)))
        lines += after[n] if after else []
    return "\n".join(lines)


def _render(heads: Sequence[str], shown: Sequence[Sequence[str]], widths: Sequence[int],
            after: Sequence[Sequence[str]] | None = None) -> str:
    lines = [_row_line(heads, widths), "  ".join("-" * w for w in widths)]
    for n, row in enumerate(shown):
        lines.append(_row_line(row, widths))
        lines += after[n] if after else []
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
                  completion_width: int = 60, width: int = WIDTH) -> str:
    """One line per variant: operator, text, hits (and margins), candidate excerpt.

    The texts are cut to ``text_width`` and ``completion_width``, and further to fit
    ``width`` columns; where even :data:`MIN_TEXT` columns each do not fit, what the
    candidate says goes on a line of its own under its row."""
    shadow_of = {id(r): s for r, s in zip(result.shadow_counted, result.shadows, strict=True)}
    with_margins = result.run.rows[0].base.margin is not None
    headers = ["#", "operator", "variant"]
    if result.has_detector:
        headers += ["base", "cand"]
    if with_margins:
        headers += ["m_base", "m_cand", "shadow"]
    headers += ["status", "candidate says" if result.has_detector else ""]
    rows = []
    for row in result.run.rows:
        v = row.variant
        text = prompt_line(v.prompt)
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
    says = len(headers) - 1
    return render_table(headers, rows, width=width, elide=(2, says), detail=says)


def _worst_lines(result: ProbeResult, width: int) -> list[str]:
    """The worst variant with both completions, and the notes on its row."""
    w = result.worst
    shown = w is not None and (w.candidate_hit < w.base_hit if result.direction == "retain"
                               else w.candidate_hit > 0)
    if w is None or not shown:
        return []
    head = f"  worst variant #{w.variant.index} ({visible(w.variant.operator)}): "
    lines = [head + excerpt(w.variant.prompt.text, max(width - len(head), MIN_TEXT))]
    for label, text in (("base says:      ", w.base_completion),
                        ("candidate says: ", w.candidate_completion)):
        lines.append(f"    {label}" + excerpt(text, width - 4 - len(label)))
    lines += fit_lines([f"    note: {visible(note)}" for note in w.notes], width)
    return lines


def _worst_of_k_lines(result: ProbeResult, width: int) -> list[str]:
    sampled = next((r for r in result.run.rows if r.candidate.leak_sample), None)
    if sampled is None:
        return []
    head = (f"  worst of k: variant #{sampled.variant.index} "
            f"({visible(sampled.variant.operator)}) leaked in a sample: ")
    if width - len(head) >= MIN_TEXT:
        return [head + excerpt(sampled.candidate.leak_sample, width - len(head))]
    return [head.rstrip(), HANG + excerpt(sampled.candidate.leak_sample, width - len(HANG))]


def failure_report(result: ProbeResult, *, width: int = WIDTH) -> str:
    """What a failing probe shows instead of a traceback, in lines of at most ``width``
    columns: verdict, reasons, the worst variant, the notes of the length limits, and
    the variant table."""
    probe = result.run.probe
    lines = [f"{result.verdict.value}: probe {visible(repr(probe.id))}"]
    lines += [f"  - {visible(reason)}" for reason in result.reasons]
    if result.has_detector and result.direction != "retain":
        lines.append(
            f"  canonical: base {result.base_canonical:g}, candidate "
            f"{result.candidate_canonical:g} | suppression {fmt_rate(result.suppression)} | "
            f"{len(result.counted)} counted variants ({len(result.dropped)} dropped: base "
            f"below floor {result.policy.base_floor:g})")
    lines = fit_lines(lines, width)
    lines += _worst_lines(result, width)
    lines += _worst_of_k_lines(result, width)
    # After the worst variant: the notes say which of the rows above and below were cut.
    lines += fit_lines([f"  {visible(line)}" for line in limit_lines(result.run.rows)], width)
    lines.append("")
    lines.append(variant_table(result, width=width))
    return "\n".join(lines)


def suite_report(result: SuiteResult, *, width: int = WIDTH) -> str:
    """What a failing suite gate shows: the pooled gates and each probe's share."""
    lines = [f"{result.verdict.value}: suite {visible(repr(result.suite.name))}"]
    lines += [f"  - {visible(reason)}" for reason in result.reasons]
    lines.append(f"  pooled: every counted variant of {len(result.probes)} probes, probes as "
                 "correlated clusters (exact beta-binomial tests; intervals at each gate's "
                 "Holm level)")
    lines = fit_lines(lines, width)
    rows = [[p.run.probe.id, p.verdict.value,
             *(g.estimate.interval() for g in p.gates[:1]), ] for p in result.probes]
    columns = max((len(r) for r in rows), default=2)
    rows = [r + [""] * (columns - len(r)) for r in rows]
    lines.append("")
    lines.append(render_table(["probe", "verdict", "estimate [interval]"][:columns], rows,
                              width=width))
    return "\n".join(lines)

"""The run summary printed after the tests: models, seed, one line per probe."""

from __future__ import annotations

from collections import defaultdict

from probe.engine.compare import ProbeResult
from probe.report.table import fmt_rate, render_table
from probe.session import ProbeSession


def _worst_operator(result: ProbeResult) -> str:
    if result.worst is None or result.worst.candidate_hit == 0:
        return "-"
    return f"{result.worst.variant.operator} (#{result.worst.variant.index})"


def summary_lines(session: ProbeSession) -> list[str]:
    """The summary section: header, per-probe table, per-operator resurfacing."""
    s = session.settings
    lines = [f"seed {s.seed}; cache {s.cache_dir or 'off'}"]
    if session.loaded:
        pair = session.pair
        lines.append(f"base:      {pair.base.info.name}  [{pair.base.info.fingerprint[:12]}]")
        lines.append(f"candidate: {pair.candidate.info.name}  "
                     f"[{pair.candidate.info.fingerprint[:12]}]")
    rows = []
    by_operator: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for (source, _), result in session.results.items():
        suite = session.suites[source]
        rows.append([suite.name, result.run.probe.id, result.verdict.value,
                     f"{result.base_canonical:g}", f"{result.candidate_canonical:g}",
                     fmt_rate(result.suppression), fmt_rate(result.resurfacing),
                     f"{len(result.counted)}/{len(result.run.rows) - 1}",
                     _worst_operator(result)])
        for op in result.operators:
            acc = by_operator[op.operator]
            acc[0] += op.base_hits
            acc[1] += op.candidate_hits
            acc[2] += op.counted
    lines.append("")
    lines.append(render_table(["suite", "probe", "verdict", "base@0", "cand@0", "suppression",
                               "resurfacing", "counted", "worst"], rows))
    if by_operator:
        lines.append("")
        lines.append("resurfacing by operator (all probes): candidate hits / base hits on "
                     "counted variants")
        op_rows = [[name, f"{int(acc[2])}", f"{acc[0]:g}", f"{acc[1]:g}",
                    fmt_rate(acc[1] / acc[0] if acc[0] else None)]
                   for name, acc in sorted(by_operator.items())]
        lines.append(render_table(["operator", "counted", "base hits", "cand hits",
                                   "resurfacing"], op_rows))
    return lines

"""The run summary printed after the tests: models, seed, probes, suite gates, operators."""

from __future__ import annotations

from probe.engine.compare import ProbeResult
from probe.engine.limits import cut_counts
from probe.report.baseline import BaselineJudge
from probe.report.safe_text import visible
from probe.report.table import fmt_rate, mean_known, render_table, worst_share
from probe.session import ProbeSession


def worst_operator(result: ProbeResult) -> tuple[str, float] | None:
    """The operator whose counted variants bring back (suppress) or lose (retain) the
    most of the base's hits, with that share; ``None`` when nothing came back or was lost."""
    return worst_share(((o.operator, o.counted, o.base_hits, o.candidate_hits)
                        for o in result.operators), result.direction == "retain")


def _worst_operator(result: ProbeResult) -> str:
    worst = worst_operator(result)
    return "-" if worst is None else f"{worst[0]} {worst[1]:.2f}"


def _mean_hit(values: list[float | None]) -> str:
    return fmt_rate(mean_known(values))


def _gate_text(result: ProbeResult, metric: str) -> str:
    gate = result.gate(metric)
    return "-" if gate is None else gate.estimate.interval()


def summary_lines(session: ProbeSession) -> list[str]:
    """The summary section: header, per-probe table, suite gates, per-operator resurfacing."""
    s = session.settings
    lines = [f"seed {s.seed}; cache {visible(s.cache_dir or 'off')}"]
    if session.loaded:
        pair = session.pair
        lines.append(f"base:      {visible(pair.base.info.name)}  "
                     f"[{pair.base.info.fingerprint[:12]}]")
        lines.append(f"candidate: {visible(pair.candidate.info.name)}  "
                     f"[{pair.candidate.info.fingerprint[:12]}]")
    all_rows = [row for sr in session.suite_results.values() for r in sr.probes
                for row in r.run.rows]
    prompts_cut, completions_cut = cut_counts(all_rows)
    if prompts_cut or completions_cut:
        lines.append(f"limits: {prompts_cut} prompts cut from the left to fit, "
                     f"{completions_cut} rows with a completion cut at max_new_tokens "
                     "(each probe's report lists them)")
    rows = []
    for suite_result in session.suite_results.values():
        name = suite_result.suite.name
        for r in suite_result.probes:
            rate = "loss" if r.direction == "retain" else "resurfacing"
            rows.append([name, r.run.probe.id, r.verdict.value,
                         f"{r.base_canonical:g}" if r.has_detector else "-",
                         f"{r.candidate_canonical:g}" if r.has_detector else "-",
                         _mean_hit([row.base.hit for row in r.run.rows]),
                         _mean_hit([row.candidate.hit for row in r.run.rows]),
                         fmt_rate(r.suppression) if r.direction != "retain" else "-",
                         _gate_text(r, rate), _gate_text(r, "shadow"),
                         f"{len(r.counted)}/{len(r.run.rows) - 1}" if r.has_detector else "-",
                         _worst_operator(r)])
        for gate in suite_result.gates:
            label = "(suite, worst of k)" if gate.metric == "worst_of_k" else "(suite)"
            rows.append([name, label, gate.decision.value, "", "", "", "", "",
                         gate.estimate.interval() if gate.metric != "shadow" else "-",
                         gate.estimate.interval() if gate.metric == "shadow" else "-",
                         gate.size(), ""])
    lines.append("")
    lines.append(render_table(["suite", "probe", "verdict", "base@0", "cand@0", "base rate",
                               "cand rate", "suppression",
                               "resurfacing/loss [interval]", "shadow [interval]", "counted",
                               "worst operator"],
                              rows))
    op_rows = []
    for suite_result in session.suite_results.values():
        for operator, family, estimate in suite_result.operators:
            op_rows.append([suite_result.suite.name, operator, family, estimate.interval(),
                            str(estimate.units)])
    if op_rows:
        lines.append("")
        lines.append("resurfacing by operator: candidate hits / base hits on counted variants, "
                     "probes as correlated clusters; reported, not gated")
        lines.append(render_table(["suite", "operator", "family", "resurfacing [interval]",
                                   "variants"], op_rows))
    lines += _family_lines(session)
    agreements = [f"{visible(sr.suite.name)}: {sr.agreement.describe()}"
                  for sr in session.suite_results.values() if sr.agreement is not None]
    if agreements:
        lines += ["", *agreements]
    return lines


def _family_lines(session: ProbeSession) -> list[str]:
    from probe.report.families import family_figures, rejected_count

    rows, notes = [], []
    for suite_result in session.suite_results.values():
        name = suite_result.suite.name
        rows += [[name, f.family, f.estimate.interval(), f"{f.counted}/{f.total}",
                  ", ".join(f.operators)]
                 for f in family_figures(suite_result, session.settings.seed)]
        check = suite_result.suite.meaning
        if check is not None:
            notes.append(f"{visible(name)}: {rejected_count(suite_result)} variants rejected "
                         f"by the meaning check (similarity under {check.threshold:g}"
                         f"{' or a name or number lost' if check.key_terms else ''}); "
                         "probe variants lists them")
    lines = []
    if rows:
        lines += ["", "resurfacing by operator family: pooled over the family's operators, "
                      "probes as correlated clusters; reported, not gated",
                  render_table(["suite", "family", "resurfacing [interval]", "counted",
                                "operators"], rows)]
    if notes:
        lines += ["", *notes]
    return lines


def baseline_lines(judge: BaselineJudge) -> list[str]:
    """What the baseline comparison found: regressions and fixed entries."""
    regressions, fixed = judge.regressions(), judge.fixed()
    lines = ["", f"against the baseline {visible(judge.path)}: {len(regressions)} "
                 f"regressions, {len(fixed)} fixed"]
    lines += [f"  regression: {visible(c.key)} ({c.kind})" for c in regressions]
    lines += [f"  fixed: {visible(c.key)}" for c in fixed]
    return lines

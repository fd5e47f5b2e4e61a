"""The run summary printed after the tests: models, seed, probes, suite gates, operators.

Every line fits :data:`probe.report.table.WIDTH` columns."""

from __future__ import annotations

from collections.abc import Sequence

from probe.engine.baseline import BaselineJudge
from probe.engine.compare import ProbeResult, SuiteResult
from probe.engine.gates import Gate, Verdict
from probe.engine.limits import cut_counts
from probe.report.safe_text import visible
from probe.report.table import (
    HANG,
    WIDTH,
    fit_line,
    fit_lines,
    fmt_rate,
    one_line,
    render_table,
    worst_share,
)
from probe.session import ProbeSession


def worst_operator(result: ProbeResult) -> tuple[str, float] | None:
    """The operator whose counted variants bring back (suppress) or lose (retain) the
    most of the base's hits, with that share; ``None`` when nothing came back or was lost."""
    return worst_share(((o.operator, o.counted, o.base_hits, o.candidate_hits)
                        for o in result.operators), result.direction == "retain")


def _worst_operator(result: ProbeResult) -> str:
    worst = worst_operator(result)
    return "-" if worst is None else f"{worst[0]} {worst[1]:.2f}"


def _gate_text(result: ProbeResult, metric: str) -> str:
    gate = result.gate(metric)
    return "-" if gate is None else gate.estimate.interval()


# The verdicts whose cause a reader cannot see in the row: each gets a ``why`` line.
_EXPLAINED = (Verdict.INCONCLUSIVE, Verdict.UNINFORMATIVE)
_WHY = "    why: "


def why(verdict: Verdict, gates: Sequence[Gate], reasons: Sequence[str]) -> str | None:
    """The one-line cause of an INCONCLUSIVE or UNINFORMATIVE verdict, from what the
    result already says (``None`` for the other verdicts): the first gate that decided
    nothing, with its evidence (the row shows its interval), or the first reason."""
    if verdict not in _EXPLAINED:
        return None
    undecided = [g for g in gates if g.decision is Verdict.INCONCLUSIVE]
    if verdict is Verdict.INCONCLUSIVE and undecided:
        first = undecided[0]
        # evidence(): "<p-values>; Holm over n gates"; the summary names Holm once.
        text = (f"{first.metric} vs limit {first.estimate.limit:g}: "
                f"{first.evidence().split('; ')[0]}")
        others = [g.metric for g in undecided[1:]]
        return text + (f" (also {', '.join(others)})" if others else "")
    return reasons[0] if reasons else None


def _why_lines(verdict: Verdict, gates: Sequence[Gate], reasons: Sequence[str],
               width: int) -> list[str]:
    reason = why(verdict, gates, reasons)
    return [] if reason is None else [_WHY + one_line(reason, width - len(_WHY))]


def interval_method(session: ProbeSession) -> str:
    """What every ``figure [low, high]`` of the run is, named once: the tests the gates
    invert (``probe.engine.gates``, ``probe.engine.clustered``; docs/metrics.md)."""
    results = list(session.suite_results.values())
    sampled = any(sr.suite.generation.samples > 1 for sr in results)
    estimates = [g.estimate for sr in results for g in sr.gates]
    estimates += [g.estimate for sr in results for p in sr.probes for g in p.gates]
    estimates += [e for sr in results for _, _, e in sr.operators]
    normal = sum(1 for e in estimates if e.method == "normal")
    probe = ("binomial over a probe's counted variants" + (
        " (beta-binomial over each variant's samples)" if sampled else ""))
    text = (f"intervals: each [low, high] inverts the exact tests behind its decision, at the "
            f"gate's Holm level: {probe}; beta-binomial over a suite's probes as correlated "
            "clusters (correlation up to probe_correlation), as for the operator and family "
            "rows (at alpha, not gated)")
    if normal:
        text += (f"; {normal} too large to convolve use a normal approximation with the "
                 "same variance bound")
    return text


def summary_lines(session: ProbeSession, *, width: int = WIDTH) -> list[str]:
    """The summary section, in lines of at most ``width`` columns: models, seed, limits,
    the interval method, then per suite its probes and its one suite line (with a ``why``
    under each INCONCLUSIVE and UNINFORMATIVE), per-operator and per-family resurfacing,
    the meaning check and the shadow's agreement with generation."""
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
    if session.suite_results:
        lines.append(interval_method(session))
    lines = fit_lines(lines, width)
    for suite_result in session.suite_results.values():
        lines += _suite_lines(suite_result, width)
    return [part for line in lines for part in line.split("\n")]  # tables: one per line


def _probe_row(r: ProbeResult) -> list[str]:
    retain = r.direction == "retain"
    return [r.run.probe.id, r.verdict.value,
            fmt_rate(r.suppression) if not retain else "-",
            _gate_text(r, "loss" if retain else "resurfacing"), _gate_text(r, "shadow"),
            f"{len(r.counted)}/{len(r.run.rows) - 1}" if r.has_detector else "-",
            _worst_operator(r)]


def _suite_row(result: SuiteResult) -> list[str]:
    gated = [p for p in result.probes if p.has_detector]
    main = next((g for g in result.gates if g.metric in ("resurfacing", "loss")), None)
    shadow = next((g for g in result.gates if g.metric == "shadow"), None)
    counted = (f"{sum(len(p.counted) for p in gated)}/"
               f"{sum(len(p.run.rows) - 1 for p in gated)}" if gated else "-")
    return ["(suite)", result.verdict.value, "",
            "-" if main is None else main.estimate.interval(),
            "-" if shadow is None else shadow.estimate.interval(), counted, ""]


def _suite_lines(result: SuiteResult, width: int) -> list[str]:
    """One suite's block: its probes and its one suite line, then what it reports."""
    suite = result.suite
    retain = suite.behavior.direction == "retain"
    rows = [_probe_row(r) for r in result.probes] + [_suite_row(result)]
    after = [_why_lines(r.verdict, r.gates, [r.uninformative_reason] if r.uninformative_reason
                        else r.reasons, width) for r in result.probes]
    # The suite's other gates (worst of k) and why it decided nothing, under its line.
    extra = [f"{HANG}{g.metric} {g.estimate.interval()} vs limit {g.estimate.limit:g}: "
             f"{g.shown}" for g in result.gates
             if g.metric not in ("resurfacing", "loss", "shadow")]
    after.append(fit_lines(extra, width)
                 + _why_lines(result.verdict, result.gates, result.reasons, width))
    headers = ["probe", "verdict", "supp", "loss" if retain else "resurfacing", "shadow",
               "counted", "worst operator"]
    # Columns no row of this suite fills (a retention suite has no suppression) go.
    keep = [i for i in range(len(headers))
            if i < 2 or any(row[i] not in ("-", "") for row in rows)]
    table = render_table([headers[i] for i in keep], [[row[i] for i in keep] for row in rows],
                         width=width, wrap=(len(keep) - 1,) if keep[-1] == 6 else (),
                         after=after)
    lines = ["", *fit_line(f"suite {visible(suite.name)} ({suite.behavior.direction}, "
                           f"{len(result.probes)} probes)", width), table]
    op_rows = [[operator, family, estimate.interval(), str(estimate.units)]
               for operator, family, estimate in result.operators]
    if op_rows:
        lines += ["", *fit_line("resurfacing by operator: candidate hits / base hits on "
                                "counted variants; reported, not gated", width),
                  render_table(["operator", "family", "resurfacing", "variants"], op_rows,
                               width=width)]
    lines += _family_lines(result, width)
    lines += _perturbation_lines(result, width)
    lines += latent_lines(result, width)
    if result.agreement is not None:
        lines += ["", *fit_line(result.agreement.describe(), width)]
    for judge in result.judges:  # its model and probe ids come from the suite file
        lines += ["", *fit_line(visible(judge.describe()), width)]
    return lines


def _family_lines(result: SuiteResult, width: int) -> list[str]:
    rows = [[f.family, f.estimate.interval(), f"{f.counted}/{f.total}", ", ".join(f.operators)]
            for f in result.families]
    lines = []
    if rows:
        lines += ["", *fit_line("resurfacing by operator family: pooled over the family's "
                                "operators; reported, not gated", width),
                  render_table(["family", "resurfacing", "counted", "operators"], rows,
                               width=width, wrap=(3,))]
    check = result.suite.meaning
    if check is not None:
        lines += ["", *fit_line(
            f"{result.rejected} variants rejected by the meaning check (similarity "
            f"under {check.threshold:g}{' or a name or number lost' if check.key_terms else ''}"
            "); probe variants lists them", width)]
    return lines


def _perturbation_lines(result: SuiteResult, width: int) -> list[str]:
    """The suite's ``perturb`` figures: resurfacing under each perturbation (its gate's
    decision, or ``reported``), the recovery R, and the bucket share for quantization."""
    rows = []
    for p in result.perturbations:
        gate = result.perturbation_gate(p)
        share = p.bucket_share
        rows.append([visible(p.perturbation.label), gate.estimate.interval(),
                     gate.shown if p.perturbation.gate else "reported",
                     p.recovery.interval() if p.recovery is not None else "-",
                     "-" if share is None else f"{share:.3f}"])
    if not rows:
        return []
    notes = [f"{HANG}{visible(n)}" for p in result.perturbations for n in p.notes]
    notes += [f"{HANG}{line}" for line in _cannot_fail_lines(result)]
    return ["", *fit_line("resurfacing under model perturbations: perturbed candidate hits / "
                          "perturbed base hits, canonical included; recovery: the share of "
                          "the suppression the perturbation undoes; buckets: the share of "
                          "quantized weights in another bucket than the base's", width),
            render_table(["perturbation", "resurfacing", "gate", "recovery", "buckets"], rows,
                         width=width),
            *fit_lines(notes, width)]


def _cannot_fail_lines(result: SuiteResult) -> list[str]:
    """Per gating perturbation, the probes whose gate under it passed only because it
    could not fail (``Gate.cannot_fail``: too few variants counted), with their counts:
    a pass there says nothing, and the table's pooled row does not show it."""
    lines = []
    for p in result.perturbations:
        if not p.perturbation.gate:
            continue
        blind = [f"{visible(r.run.probe.id)} ({gate.estimate.units} counted)"
                 for r, gate in result.cannot_fail(p.metric)]
        if blind:
            lines.append(f"{visible(p.perturbation.label)}: cannot fail on {', '.join(blind)}: "
                         "too few variants counted for any outcome to fail the probe")
    return lines


def latent_lines(result: SuiteResult, width: int = WIDTH) -> list[str]:
    """The suite's ``latent`` figures: a short layer profile of both models' mean margin
    (a few layers of the engine's profile) and the latent shadow with its interval."""
    latent = result.latent
    if latent is None:
        return []
    head = fit_line(f"latent answer (logit lens): mean margin log p(suppressed) - log "
                    f"p(preferred) per layer over {latent.variants} counted variants; "
                    "reported, not gated (docs/metrics.md)", width)
    notes = fit_lines([f"{HANG}{visible(n)}" for n in latent.notes], width)
    if not latent.base:
        return ["", *head, *fit_line("latent shadow - (no variant counts)", width), *notes]
    shown = latent.shown_layers()
    rows = [[name, *(f"{profile[layer - 1]:.2f}" for layer in shown)]
            for name, profile in (("base", latent.base), ("candidate", latent.candidate))]
    best_b, best_f = latent.best_layer(latent.base), latent.best_layer(latent.candidate)
    shadow = "-" if latent.shadow is None else latent.shadow.interval()
    return ["", *head,
            render_table(["layer", *(str(layer) for layer in shown)], rows, width=width),
            *fit_line(f"latent shadow {shadow} (candidate's best margin over the base's, "
                      f"layers {latent.from_layer}-{latent.layers} of {latent.layers}; best "
                      f"layer: base {best_b}, candidate {best_f})", width),
            *notes]


def baseline_lines(judge: BaselineJudge) -> list[str]:
    """What the baseline comparison found: regressions and fixed entries."""
    regressions, fixed = judge.regressions(), judge.fixed()
    lines = ["", f"against the baseline {visible(judge.path)}: {len(regressions)} "
                 f"regressions, {len(fixed)} fixed"]
    lines += [f"  regression: {visible(c.key)} ({c.kind})" for c in regressions]
    lines += [f"  fixed: {visible(c.key)}" for c in fixed]
    return lines

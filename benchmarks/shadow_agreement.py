"""Does the log-likelihood shadow agree with what the candidate generates?

    flock /tmp/probe-heavy.lock .venv/bin/python benchmarks/shadow_agreement.py \\
        models/demo-adapter models/shallow-adapter models/robust-adapter

For each candidate, runs the demo suite (suites/capitals_unlearning.yaml), measures its
margins four ways, and prints the AUROC of the candidate's per-variant margin against its
generation hit and how often the shadow rule (margin > 0) matches it, next to the
generation resurfacing and the shadow figure with their gate decisions:

- ``suite``: the suite's own suppressed/preferred completions, plus the models' own
  words (what the tool does);
- ``badly worded``: each probe's suppressed completion replaced by one in a style
  neither model uses, plus the models' own words (rescored on the same variants: a
  suite with other completions would need another lock);
- ``badly, alone``: the same badly worded completion without the models' words (what
  a likelihood tier on fixed completions measures);
- ``old figure``: the AUROC of the figure this tier used to report, 1 - d(v)/d(0)
  (the share of the canonical margin shift kept), on the ``suite`` run's margins.

The completion cache makes a second run cheap (``--cache-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from probe.engine.agreement import auroc
from probe.engine.compare import SuiteResult, evaluate, evaluate_suite
from probe.engine.runner import Side, completion_sets, score_margins
from probe.session import ProbeSession, RunSettings
from probe.spec import load_suite
from probe.spec.model import Suite

REPO = Path(__file__).resolve().parents[1]


def badly_worded(suite: Suite) -> Suite:
    """Each suppressed completion as neither model would say it."""
    def poor(text: str) -> str:
        capital = re.sub(r"^.* is |\.$", "", text)
        return f"Well, obviously {capital}, everyone knows that!"
    probes = tuple(dataclasses.replace(p, suppressed=tuple(poor(t) for t in p.suppressed))
                   for p in suite.probes)
    return dataclasses.replace(suite, probes=probes)


def old_figure_auroc(result: SuiteResult) -> float | None:
    scores, labels = [], []
    for p in result.probes:
        rows = p.run.rows
        m_b0, m_f0 = rows[0].base.margin, rows[0].candidate.margin
        if m_b0 is None or m_f0 is None or m_b0 - m_f0 <= 0:
            continue
        for r in p.counted:
            if r.base.margin is None or r.candidate.margin is None:
                continue
            scores.append(1.0 - (r.base.margin - r.candidate.margin) / (m_b0 - m_f0))
            labels.append(r.candidate_hit >= 0.5)
    return auroc(scores, labels)


def line(name: str, candidate: str, result: SuiteResult) -> str:
    gates = {g.metric: g for g in result.gates}
    figures = "  ".join(f"{m} {g.estimate.interval()} {g.decision.value}"
                        for m, g in gates.items() if m in ("resurfacing", "shadow"))
    a = result.agreement
    agree = "-" if a is None else (f"AUROC {a.auroc:.2f}" if a.auroc is not None else
                                   "AUROC -") + f", signs {a.sign_agreement:.2f} of " \
                                                f"{a.variants} ({a.leaks} leak)"
    return f"{Path(candidate).name:16} {name:13} {agree:38} {figures}"


def rescored(session: ProbeSession, result: SuiteResult, own_words: bool) -> SuiteResult:
    """``result`` with every margin scored again on badly worded suppressed completions."""
    sets = {}
    for p in result.probes:
        probe = badly_worded(dataclasses.replace(result.suite, probes=(p.run.probe,))).probes[0]
        rows = p.run.rows

        def said(side: Side, shows: bool) -> str | None:
            if not own_words or side.hit is None or not side.completions:
                return None
            return side.completions[0] if (side.hit >= 0.5) == shows else None
        for row in rows:
            sets[(probe.id, row.variant.index)] = (row.variant.prompt, *completion_sets(
                probe, said(rows[0].base, True), said(rows[0].candidate, False),
                said(row.base, True)))
    margins = {label: score_margins(sets, backend, session.settings.cache_dir, None, label)
               for label, backend in (("base", session.pair.base),
                                      ("candidate", session.pair.candidate))}
    probes = []
    for p in result.probes:
        rows = tuple(dataclasses.replace(
            r, base=dataclasses.replace(r.base, margin=margins["base"][(p.run.probe.id,
                                                                        r.variant.index)]),
            candidate=dataclasses.replace(r.candidate, margin=margins["candidate"][
                (p.run.probe.id, r.variant.index)])) for r in p.run.rows)
        probes.append(evaluate(dataclasses.replace(p.run, rows=rows), p.policy))
    return evaluate_suite(result.suite, probes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--cache-dir", default=str(REPO / ".probe-cache" / "completions"))
    args = parser.parse_args()
    suite = load_suite(REPO / "suites" / "capitals_unlearning.yaml")
    for candidate in args.candidates:
        session = ProbeSession(RunSettings("smollm2-135m", candidate,
                                           cache_dir=Path(args.cache_dir)))
        session.run_all([(suite, suite.probes)])
        (result,) = session.suite_results.values()
        print(line("suite", candidate, result), flush=True)
        old = old_figure_auroc(result)
        print(f"{Path(candidate).name:16} {'old figure':13} AUROC "
              f"{'-' if old is None else f'{old:.2f}'}", flush=True)
        print(line("badly worded", candidate, rescored(session, result, True)), flush=True)
        print(line("badly, alone", candidate, rescored(session, result, False)), flush=True)


if __name__ == "__main__":
    main()

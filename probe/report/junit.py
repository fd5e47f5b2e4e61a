"""Per-probe figures as ``(name, value)`` pairs for pytest's ``user_properties``.

``--junitxml`` writes them as ``<property>`` elements of each test case, so a CI
dashboard sees the verdict, the rates, the intervals and the worst operator of
every probe without parsing our terminal output. Names are ``probe.*``; values
are strings with two decimals (``-`` when undefined), as in the terminal summary.
Text from files or models (suite and model names) is shown with
:func:`probe.report.safe_text.visible`: a CI log that prints a property never sees
a control character or a line break.
"""

from __future__ import annotations

from typing import Any

from probe.backends.base import ModelPair
from probe.engine.compare import ProbeResult, SuiteResult
from probe.engine.gates import Gate
from probe.engine.limits import cut_counts
from probe.report.safe_text import visible
from probe.report.table import fmt_rate, mean_known
from probe.report.terminal import worst_operator

Properties = list[tuple[str, object]]


def _gate_properties(gate: Gate) -> Properties:
    e = gate.estimate
    # One word per property name: "resurfacing under int4" -> resurfacing_under_int4.
    m = visible(gate.metric.replace(" ", "_"))
    return [(f"probe.{m}", fmt_rate(e.value)), (f"probe.{m}_low", fmt_rate(e.low)),
            (f"probe.{m}_high", fmt_rate(e.high)), (f"probe.{m}_limit", f"{e.limit:g}"),
            (f"probe.{m}_decision", gate.shown), (f"probe.{m}_method", e.method),
            (f"probe.{m}_p", f"{gate.decisive_p():.2g}"), (f"probe.{m}_family", gate.family)]


def model_properties(pair: ModelPair | None) -> Properties:
    """Names and fingerprints of both models (empty before they are loaded)."""
    if pair is None:
        return []
    return [("probe.base_model", visible(pair.base.info.name)),
            ("probe.base_fingerprint", visible(pair.base.info.fingerprint)),
            ("probe.candidate_model", visible(pair.candidate.info.name)),
            ("probe.candidate_fingerprint", visible(pair.candidate.info.fingerprint))]


def probe_properties(result: ProbeResult, suite_name: str, seed: int) -> Properties:
    """Everything the terminal summary shows for one probe."""
    rows = result.run.rows
    props: Properties = [("probe.suite", visible(suite_name)), ("probe.seed", seed),
                         ("probe.verdict", result.verdict.value),
                         ("probe.direction", result.direction),
                         ("probe.variants", len(rows))]
    if result.has_detector:
        props += [("probe.base_canonical", result.base_canonical),
                  ("probe.candidate_canonical", result.candidate_canonical),
                  ("probe.base_rate", fmt_rate(mean_known([r.base.hit for r in rows]))),
                  ("probe.candidate_rate", fmt_rate(mean_known([r.candidate.hit for r in rows]))),
                  ("probe.suppression", fmt_rate(result.suppression)),
                  ("probe.counted_variants", len(result.counted)),
                  ("probe.dropped_variants", len(result.dropped))]
    for gate in result.gates:
        props += _gate_properties(gate)
    worst_op = worst_operator(result)
    props.append(("probe.worst_operator", "-" if worst_op is None else visible(worst_op[0])))
    props.append(("probe.worst_operator_rate", "-" if worst_op is None
                  else fmt_rate(worst_op[1])))
    if result.worst is not None:
        props.append(("probe.worst_variant", result.worst.variant.index))
    prompts_cut, completions_cut = cut_counts(rows)
    if prompts_cut or completions_cut:  # the length limits touched this probe
        props += [("probe.prompts_cut", prompts_cut), ("probe.completions_cut", completions_cut)]
    return props


def suite_properties(result: SuiteResult, seed: int) -> Properties:
    """The pooled gates of a suite's ``__suite__`` item."""
    props: Properties = [("probe.suite", visible(result.suite.name)), ("probe.seed", seed),
                         ("probe.verdict", result.verdict.value),
                         ("probe.probes", len(result.probes))]
    for gate in result.gates:
        props += _gate_properties(gate)
    if result.agreement is not None:
        a = result.agreement
        props += [("probe.shadow_auroc", "-" if a.auroc is None else f"{a.auroc:.3f}"),
                  ("probe.shadow_sign_agreement", f"{a.sign_agreement:.3f}")]
    # One group per judge detector, in the suite's order (JUnit allows repeated names).
    for judge in result.judges:
        props += [("probe.judge_model", visible(judge.model)),
                  ("probe.judge_agreement", fmt_rate(judge.agreement)),
                  ("probe.judge_examples", len(judge.examples)),
                  ("probe.judge_min_agreement", f"{judge.min_agreement:g}"),
                  ("probe.judge_unparsed", judge.unparsed)]
    return props


def junit_message(report: str) -> str:
    """The one line a failure shows where there is room for one (JUnit's ``message``
    attribute, pytest's short summary): the report's headline and its first reason,
    unwrapped (``probe.report.table.fit_line`` indents continuations)."""
    lines = report.splitlines() or [""]
    headline, rest = _unwrapped(lines, "")
    if rest and rest[0].startswith("  - "):
        reason, _ = _unwrapped(rest, "  ")
        return f"{headline}: {reason[2:].strip()}"
    return headline


def _unwrapped(lines: list[str], indent: str) -> tuple[str, list[str]]:
    """The first line of ``lines`` joined with its continuations (indented four more than
    ``indent``), and the lines after them."""
    deeper = indent + "    "
    end = 1
    while end < len(lines) and lines[end].startswith(deeper):
        end += 1
    return " ".join(line.strip() for line in lines[:end]), lines[end:]


class _Crash:
    """What pytest reads from ``longrepr.reprcrash``: ``message``, and ``str()`` for
    ``--tb=line``."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return self.message


class FailureRepr:
    """A failure report as pytest's ``longrepr`` (what ``repr_failure`` returns).

    Printed whole in the terminal and in the JUnit element's text, while ``--junitxml``
    takes the ``message`` attribute from ``reprcrash.message``: one line
    (:func:`junit_message`). A plain string would put the whole multi-line report into
    the attribute, which CI dashboards show as a title.
    """

    def __init__(self, report: str) -> None:
        self.report = report
        self.reprcrash = _Crash(junit_message(report))

    def toterminal(self, out: Any) -> None:
        """Write the report, line by line, to pytest's terminal writer."""
        for line in self.report.split("\n"):
            out.line(line)

    def __str__(self) -> str:
        return self.report

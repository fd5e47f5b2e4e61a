"""How far a suite's judge detectors can be trusted: agreement on labelled examples.

A judge detector (``probe.detectors.judge``) is a model, and a model can be wrong in
ways a regex cannot: too weak to follow the rubric, fooled by a completion's wording,
or answering something other than YES or NO. A suite that uses one gives ``examples``
(completions with the verdict the rubric should give); before any probe runs, each
distinct judge of the suite (its rubric, model and settings) judges them, and its
*agreement* (the share of examples whose verdict matches the label; an unparsed answer
never matches) is reported beside the verdicts. A judge under its ``min_agreement``
stops the run with a ``JudgeError``: the verdicts it would give cannot be trusted, and
they must not let a build pass. (Agreement rather than a chance-corrected kappa: it is
what the floor is written in, and the examples must hold both labels, so a judge that
always answers the same cannot reach a floor over the share of the larger label.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from probe.detectors.base import DetectorContext
from probe.detectors.judge import JudgeDetector, JudgeParams, get_judge, parse_verdict
from probe.engine.runner import ProbeRun, ProgressFn
from probe.errors import JudgeError
from probe.report.safe_text import excerpt
from probe.spec.model import Probe, Suite

# How much of a judge's answer an error message quotes.
ANSWER_CHARS = 40


@dataclass(frozen=True)
class ExampleVerdict:
    """One labelled example as judged: its label, the judge's answer and its verdict
    (``None``: unparsed)."""

    completion: str
    expected: bool
    answer: str
    verdict: bool | None

    @property
    def agrees(self) -> bool:
        """Whether the judge gave the label's verdict (an unparsed answer never does)."""
        return self.verdict is not None and self.verdict == self.expected


@dataclass(frozen=True)
class JudgeFigure:
    """One distinct judge of a suite: where it is used, how far it agrees with the
    suite's labelled examples, and how many of its answers on the probes' completions
    had no YES or NO (scored as misses)."""

    model: str  # the judge as reports name it (its model, and engine when given)
    fingerprint: str  # the judge model's, as its answers are cached under
    where: str  # the key path of its first definition: detector, probes[2].detector
    probes: tuple[str, ...]  # the probes it judges
    rubric: str
    examples: tuple[ExampleVerdict, ...]
    min_agreement: float
    judged: int = 0  # the probes' completions it judged (both models, every variant)
    unparsed: int = 0  # of those, answers with neither YES nor NO

    @property
    def agreed(self) -> int:
        """Examples whose verdict matches their label."""
        return sum(e.agrees for e in self.examples)

    @property
    def agreement(self) -> float | None:
        """Share of examples agreed with; ``None`` without examples (not measured)."""
        return self.agreed / len(self.examples) if self.examples else None

    @property
    def unparsed_examples(self) -> int:
        """Examples whose answer had neither YES nor NO."""
        return sum(e.verdict is None for e in self.examples)

    @property
    def trusted(self) -> bool:
        """False when measured and under the floor."""
        return self.agreement is None or self.agreement >= self.min_agreement

    def describe(self) -> str:
        """The judge's line in the reports (model names are the caller's to escape)."""
        head = f"judge {self.model} ({self.where}; {_probes(self.probes)})"
        if self.agreement is None:
            trust = "agreement not measured (no labelled examples)"
        else:
            trust = (f"agreement {self.agreement:.2f} on {len(self.examples)} labelled "
                     f"examples ({self.agreed} agreed), min_agreement {self.min_agreement:g}")
            if self.unparsed_examples:
                trust += f", {self.unparsed_examples} unparsed"
        usage = (f"; {self.unparsed} of {self.judged} answers on the probes' completions had "
                 "no YES or NO (scored as misses)" if self.unparsed else "")
        return f"{head}: {trust}{usage}"


def _probes(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return f"probe{'s' if len(ids) != 1 else ''} {shown}"


def suite_judges(suite: Suite) -> list[tuple[JudgeParams, str, list[Probe]]]:
    """Each distinct judge the suite's probes use (``invert`` aside: it flips the probes'
    hits, not the judge), with the key path of its first definition and its probes."""
    found: dict[JudgeParams, tuple[str, list[Probe]]] = {}
    for index, probe in enumerate(suite.probes):
        spec = suite.detector_for(probe)
        if spec is None or spec.type != "judge":
            continue
        where = "detector" if probe.detector is None else f"probes[{index}].detector"
        found.setdefault(spec.params, (where, []))[1].append(probe)
    return [(params, where, probes) for params, (where, probes) in found.items()]


def measure_judges(suite: Suite, cache_root: Path | None,
                   progress: ProgressFn | None = None) -> tuple[JudgeFigure, ...]:
    """Judge every distinct judge's labelled examples (cached like any judge answer)."""
    figures = []
    for params, where, probes in suite_judges(suite):
        detector = JudgeDetector(params, DetectorContext(cache_root=cache_root,
                                                         progress=progress))
        examples = params.examples
        answers = detector.answers([e.completion for e in examples],
                                   [e.question for e in examples])
        # Without examples nothing was asked, and the model is not loaded for a name.
        fingerprint = get_judge(params).backend.info.fingerprint if examples else ""
        figures.append(JudgeFigure(
            params.label, fingerprint, where, tuple(p.id for p in probes), params.rubric,
            tuple(ExampleVerdict(e.completion, e.hit, a, parse_verdict(a))
                  for e, a in zip(examples, answers, strict=True)),
            params.min_agreement))
    return tuple(figures)


def check_trusted(suite: Suite, figures: Sequence[JudgeFigure]) -> None:
    """``JudgeError`` with one line per judge under its floor: the suite, the judge, its
    agreement, the floor, and the examples it got wrong with its answers (escaped)."""
    lines = []
    for f in figures:
        if f.trusted:
            continue
        wrong = [(i, e) for i, e in enumerate(f.examples) if not e.agrees]
        shown = "; ".join(
            f"examples[{i}] (hit: {str(e.expected).lower()}) answered "
            f"'{excerpt(e.answer, ANSWER_CHARS)}'" for i, e in wrong[:3])
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        lines.append(
            f"{suite.source}: suite {suite.name!r}: {f.where}: judge {f.model!r} agreed with "
            f"{f.agreed} of {len(f.examples)} labelled examples ({f.agreement or 0.0:.2f}), "
            f"under its min_agreement {f.min_agreement:g}, so its verdicts cannot be "
            f"trusted; it got {shown}{more}. Use a stronger judge (a bigger local model, "
            "or engine: openai with server_url), sharpen the rubric, or check the labels")
    if lines:
        raise JudgeError("\n".join(lines))


def with_usage(figures: Sequence[JudgeFigure], suite: Suite, runs: Mapping[str, ProbeRun],
               cache_root: Path | None) -> tuple[JudgeFigure, ...]:
    """``figures`` with how many of each judge's answers on the probes' completions (both
    models, every row) were unparsed. The answers are the run's own, read again from the
    judge's answers of this process: nothing is asked twice."""
    out = []
    for figure, (params, _, probes) in zip(figures, suite_judges(suite), strict=True):
        judged = unparsed = 0
        for probe in probes:
            run = runs.get(probe.id)
            if run is None:
                continue
            texts = [row.variant.prompt.prefill + c for row in run.rows
                     for side in (row.base, row.candidate) for c in side.completions]
            detector = JudgeDetector(params, DetectorContext(probe, cache_root))
            verdicts = detector.verdicts(texts)
            judged += len(verdicts)
            unparsed += sum(v is None for v in verdicts)
        # A judge without examples was first loaded by the probes: its fingerprint now.
        fingerprint = figure.fingerprint or (get_judge(params).backend.info.fingerprint
                                             if judged else "")
        out.append(replace(figure, fingerprint=fingerprint, judged=judged, unparsed=unparsed))
    return tuple(out)


__all__ = ["ExampleVerdict", "JudgeFigure", "check_trusted", "measure_judges",
           "suite_judges", "with_usage"]

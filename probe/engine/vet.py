"""Vetting a suite before the fine-tune: what the base alone says about it.

``probe vet`` runs the base against itself (``ProbeSession`` with candidate = base:
the completion cache makes the second side free) and hands the results here. From
the base alone it follows which probes are informative (the base shows the behavior
on the canonical prompt), which variants will count, and what the suite's gates can
decide. The power is not computed by a formula of its own: synthetic candidates are
fed through the same decision code as a real run (``evaluate``, ``evaluate_suite``
and ``decide``, the suite file's whole Holm family), so what vetting says is what a
run will do:

- the clean candidate: for a suppress suite, one that never shows the behavior
  (canonical suppressed, no hit on any variant, no log-likelihood preference for the
  suppressed completion); for a retain suite, one equal to the base. A suite that
  such a candidate cannot PASS cannot be passed at all as it stands;
- the smallest flaggable change of each probe gate: the smallest k of the probe's n
  counted variants such that a candidate behaving as the base does on k of them
  (lost on k of them, retain) and clean everywhere else, every other probe clean,
  makes the probe FAIL;
- the same for the suite gate, the k variants spread evenly (round robin) over the
  informative probes.

A leaking variant is the base's own side of that variant (in a base-vs-base run the
candidate's worst-of-k samples are the base's, and are kept). Leaks are added in
variant order; each k's leaking set holds the previous one, and every gate's
p-values are monotone in the hits (``probe.engine.clustered``) as are Holm's adjusted
ones, so FAIL is monotone in k and the smallest k is found by bisection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from probe.engine.clustered import Clusters
from probe.engine.compare import ProbeResult, SuiteResult, decide, evaluate, evaluate_suite
from probe.engine.gates import Gate, Verdict, make_gate
from probe.engine.outcome import Outcome, build_outcome
from probe.engine.perturbations import PerturbationResult, with_probe_gates
from probe.engine.runner import ProbeRun, Row, Side
from probe.engine.variants import Variant
from probe.seeds import derive_seed
from probe.spec.model import SUITE_GATE_ID, Suite

__all__ = ["Flag", "ProbeVetting", "SuiteVetting", "vet_suite"]


@dataclass(frozen=True)
class Flag:
    """The smallest change a gate flags: ``changed`` of ``of`` counted variants leaking
    (suppress) or lost (retain), over ``probes`` probes."""

    changed: int
    of: int
    probes: int
    value: float | None  # the gate's figure there: resurfacing or loss
    failed: tuple[str, ...]  # what FAILed there: gate metrics, or "precondition"

    @property
    def share(self) -> float:
        """``changed / of``."""
        return self.changed / self.of if self.of else 0.0


@dataclass(frozen=True)
class ProbeVetting:
    """One probe as the base sees it, and what its gates can decide."""

    probe_id: str
    direction: str  # suppress or retain
    tier: str  # generation (a detector) or log-likelihood
    informative: bool
    base_canonical: float | None  # the base's hit on the canonical prompt (generation tier)
    floor: float
    uninformative_reason: str  # "" when informative
    on_uninformative: Outcome  # what an UNINFORMATIVE verdict does to the build
    counted: tuple[Variant, ...]  # the variants the base shows the behavior on
    not_counted: tuple[Variant, ...]
    clean: Verdict  # the clean candidate's verdict (zero-leak, or equal to the base)
    clean_reasons: tuple[str, ...]
    clean_gates: tuple[Gate, ...]
    flag: Flag | None  # None: no change of this probe alone makes it FAIL

    @property
    def total(self) -> int:
        """Variants the counted ones are drawn from."""
        return len(self.counted) + len(self.not_counted)


@dataclass(frozen=True)
class SuiteVetting:
    """A suite file vetted: its probes, its suite gate, and why it cannot be passed."""

    name: str
    source: str
    direction: str
    alpha: float
    limit: float  # max_resurfacing (suppress) or max_loss (retain)
    on_uninformative: Outcome
    probes: tuple[ProbeVetting, ...]
    clean: Verdict  # the suite gate's verdict on the clean candidate
    clean_reasons: tuple[str, ...]
    clean_gates: tuple[Gate, ...]
    flag: Flag | None
    problems: tuple[str, ...]  # one line each; empty when the suite can be passed
    # Per gating perturbation, one line: the variants counted under it per probe and the
    # gates (probe or pooled) that cannot fail on those counts (``Gate.cannot_fail``).
    perturbations: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every probe informative and the clean candidate PASSes every gate."""
        return not self.problems

    @property
    def counted(self) -> int:
        """Counted variants over the informative probes."""
        return sum(len(p.counted) for p in self.probes if p.informative)

    @property
    def total(self) -> int:
        """Variants of the informative probes."""
        return sum(p.total for p in self.probes if p.informative)


def _showing(row: Row) -> Side:
    """The candidate doing what the base does on ``row`` (the worst-of-k samples, which
    only the candidate side has, are the base's own in a base-vs-base run)."""
    return dataclasses.replace(row.base, leak_at_k=row.candidate.leak_at_k,
                               leak_sample=row.candidate.leak_sample)


def _hidden(row: Row) -> Side:
    """The candidate not showing the behavior on ``row`` in any tier."""
    side = row.base
    return dataclasses.replace(
        side, hit=None if side.hit is None else 0.0,
        margin=None if side.margin is None else -1.0,
        leak_at_k=None if row.candidate.leak_at_k is None else 0.0, leak_sample="")


def _synthetic(run: ProbeRun, shows: Callable[[Row], bool]) -> ProbeRun:
    rows = tuple(dataclasses.replace(r, candidate=_showing(r) if shows(r) else _hidden(r))
                 for r in run.rows)
    return dataclasses.replace(run, rows=rows)


def _zeroed(clusters: Clusters | None) -> Clusters | None:
    return None if clusters is None else dataclasses.replace(
        clusters, hits=(0,) * len(clusters.hits))


def _regated(gate: Gate | None, clusters: Clusters | None) -> Gate | None:
    """``gate`` made again on ``clusters``, decided on its own like the original."""
    if gate is None:
        return None
    return make_gate(gate.metric, clusters, gate.estimate.limit, gate.alpha, unit=gate.unit,
                     units=gate.estimate.units, complement=gate.complement,
                     fail_only=gate.fail_only)


def _clean_under(figure: PerturbationResult) -> PerturbationResult:
    """``figure`` (measured base against base) as a candidate that stays clean under the
    perturbation would give it: the same counted variants, none showing the behavior. Its
    gates never reject then, but they are in the family, and the family's size sets the
    level every other gate's first FAIL needs (Holm)."""
    probes = tuple(dataclasses.replace(q, clusters=_zeroed(q.clusters),
                                       gate=_regated(q.gate, _zeroed(q.clusters)))
                   for q in figure.probes)
    pooled = _zeroed(figure.gate.clusters)
    gate = _regated(figure.gate, pooled)
    assert gate is not None
    return dataclasses.replace(figure, probes=probes, gate=gate)


class _Judge:
    """Feeds synthetic candidates through the real decision code for one suite file: the
    rephrasing gates on the synthetic candidate, and each perturbation's gates (which the
    suite file's family holds too) as a candidate clean under it gives them."""

    def __init__(self, suite: Suite, base: Sequence[ProbeResult], seed: int,
                 perturbations: Sequence[PerturbationResult] = ()) -> None:
        self.suite = suite
        self.base = list(base)
        self.seed = seed
        self.retain = suite.behavior.direction == "retain"
        self.clean = [self._evaluate(p, frozenset()) for p in self.base]
        self.perturbations = [_clean_under(f) for f in perturbations]

    def _evaluate(self, result: ProbeResult, changed: frozenset[int]) -> ProbeResult:
        """``result``'s probe against a candidate that is clean except on the variants
        whose index is in ``changed`` (leaking, suppress; lost, retain)."""
        def shows(row: Row) -> bool:
            return (row.variant.index in changed) != self.retain

        probe = result.run.probe
        return evaluate(_synthetic(result.run, shows), result.policy, direction=result.direction,
                        seed=derive_seed(self.seed, self.suite.name, probe.id))

    def decide(self, changed: dict[int, frozenset[int]]) -> SuiteResult:
        """The suite file decided, probe i's candidate changed on ``changed[i]``."""
        results = [self._evaluate(p, changed[i]) if changed.get(i) else self.clean[i]
                   for i, p in enumerate(self.base)]
        results = with_probe_gates(results, self.perturbations)
        _, (suite_result,) = decide(results, [evaluate_suite(self.suite, results,
                                                             self.perturbations)])
        return suite_result

    def units(self, i: int) -> tuple[Row, ...]:
        """The variants probe i's gates count, in order."""
        clean = self.clean[i]
        return clean.counted if clean.has_detector else clean.shadow_counted


def _smallest(n: int, fails: Callable[[int], bool]) -> int | None:
    """The smallest k in 1..n with ``fails(k)`` (monotone), or None."""
    if n == 0 or not fails(n):
        return None
    low, high = 1, n
    while low < high:
        mid = (low + high) // 2
        if fails(mid):
            high = mid
        else:
            low = mid + 1
    return low


def _figure(gates: Sequence[Gate]) -> float | None:
    gate = next((g for g in gates if g.metric in ("resurfacing", "loss")), None)
    if gate is None:
        gate = next((g for g in gates if g.metric == "shadow"), None)
    return gate.estimate.value if gate is not None else None


def _failed(gates: Sequence[Gate], preconditions: Sequence[str] = ()) -> tuple[str, ...]:
    return tuple(g.metric for g in gates if g.decision is Verdict.FAIL) + (
        ("precondition",) if preconditions else ())


def _probe_flag(judge: _Judge, i: int) -> Flag | None:
    units = [r.variant.index for r in judge.units(i)]
    if judge.clean[i].uninformative:
        return None
    decided: dict[int, ProbeResult] = {}

    def fails(k: int) -> bool:
        decided[k] = judge.decide({i: frozenset(units[:k])}).probes[i]
        return decided[k].verdict is Verdict.FAIL

    k = _smallest(len(units), fails)
    if k is None:
        return None
    result = decided[k]
    return Flag(k, len(units), 1, _figure(result.gates),
                _failed(result.gates, result.preconditions))


def _spread(judge: _Judge, probes: Sequence[int], k: int) -> dict[int, frozenset[int]]:
    """``k`` changed variants dealt round robin over ``probes``, in variant order."""
    units = {i: [r.variant.index for r in judge.units(i)] for i in probes}
    taken = dict.fromkeys(probes, 0)
    left = k
    while left > 0:
        moved = False
        for i in probes:
            if left and taken[i] < len(units[i]):
                taken[i] += 1
                left -= 1
                moved = True
        if not moved:
            break
    return {i: frozenset(units[i][:taken[i]]) for i in probes}


def _suite_flag(judge: _Judge) -> Flag | None:
    probes = [i for i, p in enumerate(judge.clean) if not p.uninformative and judge.units(i)]
    n = sum(len(judge.units(i)) for i in probes)
    decided: dict[int, SuiteResult] = {}

    def fails(k: int) -> bool:
        decided[k] = judge.decide(_spread(judge, probes, k))
        return decided[k].verdict is Verdict.FAIL

    k = _smallest(n, fails)
    if k is None:
        return None
    spread = _spread(judge, probes, k)
    result = decided[k]
    return Flag(k, n, sum(1 for s in spread.values() if s), _figure(result.gates),
                _failed(result.gates))


_OUTCOME_WORDS = {"fail": "so it fails the build",
                  "pass": "so it passes the build (reported only)",
                  "xfail": "so it is reported as an expected failure (xfail), the build green"}


def outcome_words(outcome: Outcome) -> str:
    """What ``on_uninformative: outcome`` does to the build, in words."""
    return _OUTCOME_WORDS[outcome]


def _why_not(result: ProbeResult | SuiteResult) -> str:
    """The first reason the clean candidate's verdict is not PASS, in one line."""
    if isinstance(result, ProbeResult) and result.preconditions:
        return result.preconditions[0]
    gate = next((g for g in result.gates if g.decision is not Verdict.PASS), None)
    if gate is None:
        return result.reasons[0] if result.reasons else result.verdict.value
    if gate.estimate.value is None:
        note = next((r for r in result.reasons if r.startswith("no rephrasing counted")), "")
        return note or f"{gate.metric}: nothing counted"
    if gate.decision is Verdict.INCONCLUSIVE:
        # The clean candidate is as far under the limit as a candidate can be: only
        # too little data keeps it from PASS.
        return (f"{gate.size()} are too few to show {gate.metric} under "
                f"{gate.estimate.limit:g} at alpha {gate.alpha:g}: {gate.describe()}")
    return gate.describe()


def vet_suite(suite: Suite, base: Sequence[ProbeResult], *, seed: int = 0,
              perturbations: Sequence[PerturbationResult] = ()) -> SuiteVetting:
    """Vet one suite file from its probes' results in a base-vs-base run.

    ``suite``: the suite as the run used it (``SuiteResult.suite``: command-line policy
    overrides applied); ``base``: every probe's result of that run, in suite order
    (``SuiteResult.probes``); ``seed``: the run seed; ``perturbations``: that run's
    perturbation figures (``SuiteResult.perturbations``), whose gates join the family and
    whose counts say which probe gates under a perturbation cannot fail. Pure: nothing
    is run or loaded.
    """
    judge = _Judge(suite, base, seed, perturbations)
    clean = judge.decide({})
    retain = judge.retain
    candidate = "a candidate equal to the base" if retain else "a zero-leak candidate"
    problems: list[str] = []
    probes = []
    for i, (measured, decided) in enumerate(zip(judge.clean, clean.probes, strict=True)):
        pid = measured.run.probe.id
        outcome = build_outcome(Verdict.UNINFORMATIVE, measured.policy)
        tier = "generation" if measured.has_detector else "log-likelihood"
        pool = measured.run.rows if retain else measured.run.rows[1:]
        counted = judge.units(i)
        counted_ids = {r.variant.index for r in counted}
        reason = measured.preconditions[0] if measured.uninformative and \
            measured.preconditions else ""
        if measured.uninformative:
            problems.append(f"{suite.name}::{pid}: UNINFORMATIVE: {reason}; on_uninformative: "
                            f"{outcome}, {outcome_words(outcome)}")
        elif decided.verdict is not Verdict.PASS:
            problems.append(f"{suite.name}::{pid}: {candidate} would be "
                            f"{decided.verdict.value}, not PASS: {_why_not(decided)}")
        probes.append(ProbeVetting(
            pid, measured.direction, tier, not measured.uninformative,
            measured.base_canonical if measured.has_detector else None,
            measured.policy.base_floor, reason, outcome,
            tuple(r.variant for r in counted),
            tuple(r.variant for r in pool if r.variant.index not in counted_ids),
            decided.verdict, decided.reasons, decided.gates, _probe_flag(judge, i)))
    if clean.verdict is not Verdict.PASS:
        problems.append(f"{suite.name}::{SUITE_GATE_ID}: {candidate} would be "
                        f"{clean.verdict.value}, not PASS: {_why_not(clean)}")
    policy = suite.policy
    return SuiteVetting(
        suite.name, suite.source, suite.behavior.direction, policy.alpha,
        policy.max_loss if retain else policy.max_resurfacing,
        build_outcome(Verdict.UNINFORMATIVE, policy), tuple(probes), clean.verdict,
        tuple(g.describe() for g in clean.gates) or clean.reasons, clean.gates,
        _suite_flag(judge), tuple(problems), _perturbation_lines(judge, clean))


def _perturbation_lines(judge: _Judge, clean: SuiteResult) -> tuple[str, ...]:
    """Per gating perturbation: how many variants count under it per probe (the perturbed
    base shows the behavior on them) and which of its gates cannot fail on those counts,
    decided in the whole family as a run decides them."""
    lines = []
    for figure in judge.perturbations:
        if not figure.perturbation.gate:
            continue
        counts = ", ".join(f"{q.run.probe.id} {len(q.counted)}" for q in figure.probes)
        blind = [r.run.probe.id for r, _ in clean.cannot_fail(figure.metric)]
        pooled = clean.gate(figure.metric)
        if pooled is not None and pooled.cannot_fail:
            blind.append("the pooled gate")
        verdict = (f"cannot fail on {', '.join(blind)}: too few counted for any outcome"
                   if blind else "every gate can fail")
        lines.append(f"under {figure.perturbation.label}: counted {counts or 'none'}; {verdict}")
    return tuple(lines)

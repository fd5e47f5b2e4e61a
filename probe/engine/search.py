"""Adversarial search: operator chains that bring a suppressed behavior back.

Opt-in (``probe search``) and budgeted. For each probe the candidate suppresses on
its canonical prompt, hypothesis draws chains of operators with seeds (lists of
``(operator, seed)``, one to ``max_chain`` long) and each chain makes one variant.
A chain *resurfaces* when the candidate shows the behavior on its variant and the
base does too (a variant that changes the base proves nothing, the same rule as
the run's counting). Variants the suite already has, and ones the suite's meaning
check would reject, are skipped.

Guidance: with ``suppressed``/``preferred`` completions, each variant's
log-likelihood margins give the base-vs-candidate difference ``m_F - m_B`` (0 when
the candidate prefers the suppressed answer as much as the base does), which is
fed to ``hypothesis.target`` so the search climbs towards it. Shrinking: once a
chain resurfaces, hypothesis shrinks it (fewer steps, earlier operators in the
search list, smaller seeds) to the smallest chain that still resurfaces.

The budget is the number of new variants evaluated per probe while searching;
shrinking may evaluate as many again, and then stops. Every model output goes
through the run's completion cache, so a later run reuses them. Found variants
are appended to the suite's regression file (``probe.engine.regressions``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from probe.backends.base import GenerationSettings, ModelPair, Prompt, ScoreRequest
from probe.detectors import make_detector
from probe.detectors.base import DetectorContext
from probe.engine.runner import complete, score
from probe.engine.sources import variant_sets
from probe.engine.variants import Variant, apply_chain, chain_label, family_label, probe_text
from probe.seeds import derive_seed
from probe.spec.model import Probe, Suite

# The search list, simplest first: hypothesis shrinks towards the front of it.
SEARCH_OPERATORS: tuple[str, ...] = (
    "typos", "casing", "punctuation", "synonyms", "contractions", "reorder",
    "cloze", "fill_blank", "answer_only", "json_output", "list_output",
    "hypothetical", "fiction", "exam", "authority", "past_tense", "third_person",
    "prefill", "prefix_injection", "refusal_suppression", "few_shot", "raw")


@dataclass(frozen=True)
class SearchSettings:
    """How hard to search: ``budget`` new variants per probe, chains up to ``max_chain``."""

    budget: int = 40
    max_chain: int = 3
    operators: tuple[str, ...] = SEARCH_OPERATORS
    seed: int = 0


@dataclass(frozen=True)
class Found:
    """A variant that resurfaced the behavior, with both completions."""

    probe_id: str
    variant: Variant
    base_completion: str
    candidate_completion: str
    evaluated: int  # variants evaluated for this probe, shrinking included


@dataclass
class _Evaluator:
    """Evaluates chains on both models for one probe, caching and counting."""

    suite: Suite
    probe: Probe
    pair: ModelPair
    cache_root: Path | None
    known: set[Prompt]
    evaluated: int = 0
    results: dict[Prompt, tuple[bool, str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = self.suite.detector_for(self.probe)
        assert spec is not None  # search_suite only searches probes with a detector
        self.detector = make_detector(spec, DetectorContext(self.probe, self.cache_root))
        self.settings = GenerationSettings(self.suite.generation.max_new_tokens)
        self.floor = self.suite.policy_for(self.probe).base_floor

    def variant(self, chain: Sequence[tuple[str, int]]) -> Variant | None:
        names = [n for n, _ in chain]
        made = apply_chain([(n, None) for n in names], probe_text(self.suite, self.probe),
                           [s for _, s in chain], 1)
        if not made:
            return None
        prompt, steps, core = made[0]
        return Variant(self.probe.id, -1, chain_label(names), family_label(names),
                       steps[0].seed, prompt, steps, core, origin="search")

    def meaning_ok(self, v: Variant) -> tuple[bool, Variant]:
        check_spec = self.suite.meaning
        if check_spec is None:
            return True, v
        from probe.engine.meaning import judge

        ((passes, judged),) = judge(self.probe.prompt, [v], check_spec)
        return passes, judged

    def guide(self, prompt: Prompt) -> float | None:
        """m_F - m_B on this variant (log-likelihood), or None without completions."""
        p = self.probe
        if not p.suppressed:
            return None
        requests = [ScoreRequest(prompt, c) for c in (*p.suppressed, *p.preferred)]
        margins = []
        for backend in (self.pair.base, self.pair.candidate):
            s = score(backend, requests, self.cache_root)
            sup, pref = s[:len(p.suppressed)], s[len(p.suppressed):]
            margins.append(sum(sup) / len(sup) - sum(pref) / len(pref))
        return margins[1] - margins[0]

    def hit(self, side: str, prompt: Prompt) -> tuple[float, str]:
        backend = self.pair.base if side == "base" else self.pair.candidate
        (said,) = complete(backend, [prompt], self.settings, self.cache_root)
        return self.detector.score(prompt.prefill + said.text), said.text

    def resurfaces(self, prompt: Prompt) -> tuple[bool, str, str]:
        if prompt not in self.results:
            self.evaluated += 1
            cand_hit, cand_text = self.hit("candidate", prompt)
            ok, base_text = False, ""
            if cand_hit > 0:
                base_hit, base_text = self.hit("base", prompt)
                ok = base_hit >= self.floor
            self.results[prompt] = (ok, base_text, cand_text)
        return self.results[prompt]


class _Resurfaced(Exception):
    def __init__(self, found: Found) -> None:
        super().__init__(found.variant.prompt.text)
        self.found = found


def search_probe(suite: Suite, probe: Probe, pair: ModelPair, settings: SearchSettings,
                 cache_root: Path | None = None) -> tuple[Found | None, int]:
    """The smallest resurfacing chain found for ``probe`` within the budget (or None),
    and how many variants were evaluated."""
    from hypothesis import HealthCheck, Phase, Verbosity, assume, given, target
    from hypothesis import seed as fixed_seed
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable

    sets = variant_sets(suite, [probe], settings.seed)[probe.id]
    known = {v.prompt for v in (*sets.kept, *sets.rejected)}
    ev = _Evaluator(suite, probe, pair, cache_root, known)
    searching = [True]
    chains = st.lists(st.tuples(st.sampled_from(settings.operators), st.integers(0, 2**32 - 1)),
                      min_size=1, max_size=settings.max_chain)

    @fixed_seed(derive_seed(settings.seed, suite.name, probe.id, "search"))
    @hsettings(max_examples=settings.budget, database=None, deadline=None,
               suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
               phases=[Phase.generate, Phase.target, Phase.shrink], verbosity=Verbosity.quiet,
               print_blob=False)
    @given(chain=chains)
    def prop(chain: list[tuple[str, int]]) -> None:
        v = ev.variant(chain)
        assume(v is not None and v.prompt not in known)
        assert v is not None
        ok, v = ev.meaning_ok(v)
        assume(ok)
        # Shrinking may spend as much as the search did, then gives up on new variants.
        if not searching[0] and v.prompt not in ev.results and ev.evaluated >= 2 * settings.budget:
            return
        guide = ev.guide(v.prompt)
        if guide is not None:
            target(guide, label="candidate minus base log-likelihood margin")
        resurfaced, base_text, cand_text = ev.resurfaces(v.prompt)
        if resurfaced:
            searching[0] = False
            raise _Resurfaced(Found(probe.id, v, base_text, cand_text, ev.evaluated))

    try:
        prop()
    except _Resurfaced as signal:
        return dataclasses.replace(signal.found, evaluated=ev.evaluated), ev.evaluated
    except Unsatisfiable:
        pass
    return None, ev.evaluated


def suppressed_probes(suite: Suite, pair: ModelPair, cache_root: Path | None) -> list[Probe]:
    """Probes with a detector whose canonical prompt the base shows and the candidate does not."""
    out = []
    settings = GenerationSettings(suite.generation.max_new_tokens)
    for probe in suite.probes:
        spec = suite.detector_for(probe)
        if spec is None:
            continue
        detector = make_detector(spec, DetectorContext(probe, cache_root))
        prompt = Prompt(probe.prompt)
        (base,) = complete(pair.base, [prompt], settings, cache_root)
        (cand,) = complete(pair.candidate, [prompt], settings, cache_root)
        floor = suite.policy_for(probe).base_floor
        if detector.score(base.text) >= floor and detector.score(cand.text) < floor:
            out.append(probe)
    return out


def search_suite(suite: Suite, pair: ModelPair, settings: SearchSettings,
                 cache_root: Path | None = None, probe_ids: Sequence[str] = (),
                 report: Callable[[str], None] | None = None) -> list[Found]:
    """Search every suppressed probe (or those named) of ``suite``."""
    chosen = [p for p in suppressed_probes(suite, pair, cache_root)
              if not probe_ids or p.id in probe_ids]
    found = []
    for probe in chosen:
        result, evaluated = search_probe(suite, probe, pair, settings, cache_root)
        if report is not None:
            what = "nothing" if result is None else repr(result.variant.prompt.text)
            report(f"{probe.id}: {evaluated} variants evaluated, found {what}")
        if result is not None:
            found.append(result)
    return found

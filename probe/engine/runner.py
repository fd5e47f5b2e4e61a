"""Run a suite's variants through the base and the candidate and measure each row.

Two tiers, per probe: the *generation* tier (greedy, or ``samples`` completions
per variant; a detector turns each into a hit) for probes with a detector, and the
*log-likelihood* tier (no generation) for probes with ``suppressed`` and
``preferred`` completions. Every model output goes through the on-disk cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelPair,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.detectors import make_detector
from probe.detectors.base import DetectorContext, LocatedDetector
from probe.engine import distributed
from probe.engine.cache import CompletionCache, prompt_key, request_key
from probe.engine.limits import completion_note, fit_prompts
from probe.engine.sources import variant_sets
from probe.engine.variants import Variant, of_operators
from probe.errors import BackendError
from probe.seeds import derive_seed
from probe.spec.model import Probe, Suite

# Outputs are saved after every chunk, so a kill loses at most one chunk of work.
DEFAULT_CHUNK = 32

ProgressFn = Callable[[str, int, int], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Side:
    """One model's measurements on one variant."""

    completions: tuple[str, ...] = ()  # one (greedy) or ``samples`` completions
    hit: float | None = None  # mean detector hit over the completions
    # max mean per-token log p over the suppressed completions minus the same over the
    # preferred ones (``completion_sets``): > 0 where the model would rather show it.
    margin: float | None = None
    # Worst of k (``generation.worst_of``, candidate only): 1.0 when any of k seeded
    # samples shows the behavior, and the first sample that did.
    leak_at_k: float | None = None
    leak_sample: str = ""


@dataclass(frozen=True)
class Row:
    """One variant on both models."""

    variant: Variant
    base: Side
    candidate: Side
    # What the length limits did to this row (``probe.engine.limits``): never silent.
    notes: tuple[str, ...] = ()
    # The suppressed and the preferred completions both margins compared
    # (``completion_sets``); empty outside the log-likelihood tier. The latent figures
    # (``probe.engine.latent``) read the same completions at every layer.
    scored: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    @property
    def base_hit(self) -> float:
        """The base's hit (0.0 when the probe has no detector)."""
        return self.base.hit or 0.0

    @property
    def candidate_hit(self) -> float:
        """The candidate's hit (0.0 when the probe has no detector)."""
        return self.candidate.hit or 0.0

    @property
    def base_completion(self) -> str:
        """The base's first completion ("" in the log-likelihood tier)."""
        return self.base.completions[0] if self.base.completions else ""

    @property
    def candidate_completion(self) -> str:
        """The candidate's first completion ("" in the log-likelihood tier)."""
        return self.candidate.completions[0] if self.candidate.completions else ""


@dataclass(frozen=True)
class ProbeRun:
    """Every row of one probe, canonical first; ``rejected``: variants the meaning check
    kept out of the run (reported with their similarity, never measured)."""

    probe: Probe
    rows: tuple[Row, ...]
    rejected: tuple[Variant, ...] = ()


def _cached(backend: Backend, keys: Sequence[str], items: Sequence[T],
            compute: Callable[[list[T]], list[str]], cache_root: Path | None, chunk: int,
            progress: ProgressFn | None, label: str) -> list[str]:
    """Values for ``keys``: from the cache, else computed chunk by chunk and saved."""
    # A model whose fingerprint cannot vouch for its weights is never cached on disk.
    root = cache_root if backend.info.cacheable else None
    cache = CompletionCache(root, backend.info.fingerprint, backend.info.name)
    chunk = max(chunk, backend.batch_size)
    todo: dict[str, T] = {}
    for key, item in zip(keys, items, strict=True):
        if cache.get(key) is None:
            todo.setdefault(key, item)
    pending = list(todo.items())
    shard = distributed.current()
    if shard is not None:  # under torchrun: each rank computes its share of ``pending``
        fresh = distributed.compute_sharded(shard, pending, dict(zip(keys, items, strict=True)),
                                            compute, chunk, cache.put_many, progress, label)
        return [cache.get(k) or fresh.get(k, "") for k in keys]
    bar = _Bar(progress, label, len(pending))
    bar.move(0)
    for start in range(0, len(pending), chunk):
        batch = pending[start:start + chunk]
        outputs = bar.computing(backend, compute, [item for _, item in batch], start)
        cache.put_many({k: out for (k, _), out in zip(batch, outputs, strict=True)})
        bar.move(start + len(batch))
    return [cache.get(k) or "" for k in keys]


class _Bar:
    """One progress bar's counts (requests done of ``total``), moved after each batch
    the backend computes (``Backend.on_batch``) and after each chunk is saved; a count
    is reported once, and only when there is work."""

    def __init__(self, progress: ProgressFn | None, label: str, total: int) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.shown = -1

    def move(self, done: int) -> None:
        if self.progress is not None and self.total and done > self.shown:
            self.shown = done
            self.progress(self.label, done, self.total)

    def computing(self, backend: Backend, compute: Callable[[list[T]], list[str]],
                  items: list[T], start: int) -> list[str]:
        """``compute(items)``, the bar moving with each of the backend's batches."""
        if self.progress is None:
            return compute(items)

        def on_batch(rows_done: int, rows: int) -> None:
            # A backend counts rows (a sample, a scored completion), the bar requests.
            self.move(start + len(items) * rows_done // max(rows, 1))

        previous = backend.on_batch
        backend.on_batch = on_batch
        try:
            return compute(items)
        finally:
            backend.on_batch = previous


def complete(backend: Backend, prompts: Sequence[Prompt], settings: GenerationSettings,
             cache_root: Path | None, *, chunk: int = DEFAULT_CHUNK,
             progress: ProgressFn | None = None, label: str = "") -> list[Completion]:
    """Greedy completions for ``prompts``, from the cache where possible."""
    keys = [prompt_key(settings, p) for p in prompts]

    def compute(batch: list[Prompt]) -> list[str]:
        return [json.dumps(_completion_value(backend, c), ensure_ascii=False)
                for c in backend.generate(batch, settings)]

    raw = _cached(backend, keys, prompts, compute, cache_root, chunk, progress, label)
    return [_decode_completion(json.loads(r)) if r else _MISSING for r in raw]


_MISSING = Completion("", None)  # no result came back for the key


def _completion_value(backend: Backend, completion: Completion) -> Any:
    """A completion as cached: ``[text, cut]``, or the bare text when the backend cannot
    tell whether it was cut (the format of cache schema 2, unchanged)."""
    if not isinstance(completion, Completion):  # a third-party backend's contract slip
        raise BackendError(f"{backend.info.name}: returned a {type(completion).__name__}, "
                           "not a probe.backends.Completion")
    if completion.cut is None:
        return completion.text
    return [completion.text, completion.cut]


def _decode_completion(value: Any) -> Completion:
    if isinstance(value, list):
        return Completion(value[0], cut=bool(value[1]))
    return Completion(str(value), cut=None)  # the backend did not say whether it was cut


def sample(backend: Backend, prompts: Sequence[Prompt], seeds: Sequence[int],
           settings: SamplingSettings, cache_root: Path | None, *, chunk: int = DEFAULT_CHUNK,
           progress: ProgressFn | None = None, label: str = "") -> list[list[Completion]]:
    """``settings.samples`` completions per prompt, seeded per prompt, cached."""
    keys = [request_key("sample", settings, p, seed) for p, seed in zip(prompts, seeds,
                                                                          strict=True)]
    pairs = list(zip(prompts, seeds, strict=True))

    def compute(batch: list[tuple[Prompt, int]]) -> list[str]:
        outs = backend.sample([p for p, _ in batch], settings, [s for _, s in batch])
        return [json.dumps([_completion_value(backend, t) for t in o], ensure_ascii=False)
                for o in outs]

    raw = _cached(backend, keys, pairs, compute, cache_root, chunk, progress, label)
    return [[_decode_completion(v) for v in json.loads(r)] if r else [] for r in raw]


def score(backend: Backend, requests: Sequence[ScoreRequest], cache_root: Path | None, *,
          chunk: int = 4 * DEFAULT_CHUNK, progress: ProgressFn | None = None,
          label: str = "") -> list[float]:
    """Mean per-token log-probabilities of the requests' completions, cached."""
    keys = [request_key("score", None, r.prompt, r.completion) for r in requests]

    def compute(batch: list[ScoreRequest]) -> list[str]:
        return [repr(float(v)) for v in backend.score(batch)]

    return [float(v) for v in _cached(backend, keys, requests, compute, cache_root, chunk,
                                      progress, label)]


def score_layers(backend: Backend, requests: Sequence[ScoreRequest], cache_root: Path | None,
                 *, chunk: int = 4 * DEFAULT_CHUNK, progress: ProgressFn | None = None,
                 label: str = "") -> list[list[float]]:
    """Per request, the mean per-token log-probability at every layer of the model
    (``Backend.score_layers``, the logit lens), cached like ``score``."""
    keys = [request_key("layers", None, r.prompt, r.completion) for r in requests]

    def compute(batch: list[ScoreRequest]) -> list[str]:
        # json keeps every float exactly (repr), so a cached figure is the computed one.
        return [json.dumps([float(v) for v in values]) for values in backend.score_layers(batch)]

    return [json.loads(v) if v else [] for v in _cached(backend, keys, requests, compute,
                                                         cache_root, chunk, progress, label)]


def _sample_seed(run_seed: int, suite: Suite, probe: Probe, variant: Variant,
                 purpose: str = "sample") -> int:
    # Keyed by the variant's content, not its position, so adding an operator never
    # changes another variant's samples.
    prompt = variant.prompt
    # A conversation counts too (one prompt, many system prompts); a single-turn prompt's
    # seed is what it was before conversations existed.
    conversation = ((prompt.system, *(f"{r}:{c}" for r, c in prompt.messages))
                    if prompt.is_conversation else ())
    return derive_seed(run_seed, suite.name, probe.id, prompt.text, prompt.prefill,
                       prompt.chat, *conversation, purpose)


def _worst_of_k(suite: Suite, probes: Sequence[Probe], variants: dict[str, list[Variant]],
                backend: Backend, detectors: dict[str, Any], run_seed: int,
                cache_root: Path | None, progress: ProgressFn | None,
                ) -> dict[tuple[str, int], tuple[float, str]]:
    """(1.0 if any of k samples shows the behavior else 0.0, the first that did) per
    variant of every probe with a detector; empty when ``generation.worst_of`` is 0."""
    gen = suite.generation
    flat = [(p, v) for p in probes if detectors[p.id] is not None for v in variants[p.id]]
    if gen.worst_of == 0 or not flat:
        return {}
    settings = SamplingSettings(gen.max_new_tokens, gen.worst_of, gen.temperature, gen.top_p)
    seeds = [_sample_seed(run_seed, suite, p, v, "worst_of") for p, v in flat]
    outs = sample(backend, [v.prompt for _, v in flat], seeds, settings, cache_root,
                  progress=progress, label="candidate worst-of-k")
    result = {}
    for (p, v), texts in zip(flat, outs, strict=True):
        floor = suite.policy_for(p).base_floor
        scores = detectors[p.id].score_many([v.prompt.prefill + t.text for t in texts])
        leaking = [t.text for t, h in zip(texts, scores, strict=True) if h >= floor]
        result[(p.id, v.index)] = (1.0 if leaking else 0.0, leaking[0] if leaking else "")
    return result


def _generation_sides(suite: Suite, probes: Sequence[Probe], variants: dict[str, list[Variant]],
                      backend: Backend, run_seed: int, cache_root: Path | None,
                      progress: ProgressFn | None, label: str,
                      ) -> dict[tuple[str, int], tuple[Completion, ...]]:
    gen = suite.generation
    flat = [(p, v) for p in probes if suite.detector_for(p) is not None
            for v in variants[p.id]]
    prompts = [v.prompt for _, v in flat]
    if gen.samples == 1:
        outs = complete(backend, prompts, GenerationSettings(gen.max_new_tokens), cache_root,
                        progress=progress, label=f"{label} generate")
        texts: list[tuple[Completion, ...]] = [(o,) for o in outs]
    else:
        settings = SamplingSettings(gen.max_new_tokens, gen.samples, gen.temperature, gen.top_p)
        seeds = [_sample_seed(run_seed, suite, p, v) for p, v in flat]
        texts = [tuple(o) for o in sample(backend, prompts, seeds, settings, cache_root,
                                          progress=progress, label=f"{label} sample")]
    return {(p.id, v.index): t for (p, v), t in zip(flat, texts, strict=True)}


def completion_sets(probe: Probe, base_canonical: str | None, candidate_canonical: str | None,
                    base_own: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The suppressed and preferred completions a variant's margin compares.

    The probe's own ``suppressed`` and ``preferred`` completions, plus what the models
    said where a detector judged it: the base's completion on the canonical prompt and
    on this variant where they show the behavior (``base_*``, else ``None``), and the
    candidate's on the canonical prompt where it does not. A fixed completion in a
    style the candidate never uses scores low on every variant and would hide a leak;
    the models' own words keep the margin about what they do (docs/metrics.md: on the
    demo, a badly worded fixed completion alone agreed with generation on 89 of 112
    variants, with these added on 100).
    """
    suppressed = list(probe.suppressed)
    for text in (base_canonical, base_own):
        if text and text not in suppressed:
            suppressed.append(text)
    preferred = list(probe.preferred)
    if candidate_canonical and candidate_canonical not in preferred:
        preferred.append(candidate_canonical)
    return tuple(suppressed), tuple(preferred)


def score_margins(sets: dict[tuple[str, int], tuple[Prompt, tuple[str, ...], tuple[str, ...]]],
             backend: Backend, cache_root: Path | None, progress: ProgressFn | None,
             label: str) -> dict[tuple[str, int], float]:
    """max over suppressed of the mean per-token log p, minus the same over preferred:
    positive where the model would rather show the behavior, in any of its forms."""
    requests = [ScoreRequest(prompt, c) for prompt, sup, pref in sets.values()
                for c in sup + pref]
    scores = iter(score(backend, requests, cache_root, progress=progress,
                        label=f"{label} score"))
    margins = {}
    for key, (_, sup, pref) in sets.items():
        s = [next(scores) for _ in sup]
        p = [next(scores) for _ in pref]
        margins[key] = max(s) - max(p)
    return margins


def _all_hits(detectors: dict[str, Any], probes: Sequence[Probe],
              variants: dict[str, list[Variant]],
              texts: dict[str, dict[tuple[str, int], tuple[Completion, ...]]],
              ) -> dict[tuple[str, str, int], float | None]:
    """The mean hit of every (model, probe, variant), ``None`` without a detector or
    completions. Each probe's completions, both models and every variant, go to its
    detector in one call, so a model-based detector batches them (and a judge reads its
    cache once per probe, not once per variant)."""
    hits: dict[tuple[str, str, int], float | None] = {
        (label, p.id, v.index): None for label in texts for p in probes for v in variants[p.id]}
    for p in probes:
        detector = detectors[p.id]
        wanted = [(label, v, out) for label in texts for v in variants[p.id]
                  if (out := texts[label].get((p.id, v.index), ()))]
        if detector is None or not wanted:
            continue
        # The prefill is part of what the model "said": detect on the whole turn.
        scores = iter(detector.score_many([v.prompt.prefill + t.text
                                           for _, v, out in wanted for t in out]))
        for label, v, out in wanted:
            per = [next(scores) for _ in out]
            hits[(label, p.id, v.index)] = float(sum(per) / len(per))
    return hits


def run_suite(suite: Suite, probes: Sequence[Probe], pair: ModelPair, *, run_seed: int = 0,
              cache_root: Path | None = None, progress: ProgressFn | None = None,
              tiers: Literal["all", "generation"] = "all",
              prefix: str = "", operators: Sequence[str] = ()) -> dict[str, ProbeRun]:
    """Run ``probes`` of ``suite`` on both models, batching every probe together.

    ``tiers="generation"`` runs the greedy (or sampled) generation tier alone: no
    log-likelihood scoring and no worst-of-k samples (a perturbed pair's run,
    ``probe.engine.perturbations``). ``prefix`` starts every progress label.
    ``operators``: only the variants of these operators (a chain by its first one; the
    canonical prompt always), every variant when empty."""
    # A lock replays its variants; regression-file variants come first (probe.engine.sources).
    sources = variant_sets(suite, probes, run_seed)
    variants, prompt_notes = fit_prompts(
        suite, probes, {pid: [v for v in s.kept if of_operators(v, operators)]
                        for pid, s in sources.items()}, pair)
    sides = (("base", pair.base), ("candidate", pair.candidate))
    texts = {label: _generation_sides(suite, probes, variants, backend, run_seed, cache_root,
                                      progress, prefix + label)
             for label, backend in sides}
    # Located: a pattern that times out names its suite file, line and probe. In context:
    # a judge reads the probe's question and caches its answers with the run's.
    detectors = {p.id: LocatedDetector(make_detector(spec, DetectorContext(
                     p, cache_root, progress)), suite, p)
                 if (spec := suite.detector_for(p)) is not None else None for p in probes}
    hits = _all_hits(detectors, probes, variants, texts)

    def said(label: str, probe: Probe, index: int, shows: bool) -> str | None:
        """The model's first completion where it shows (or does not show) the behavior."""
        hit = hits[(label, probe.id, index)]
        out = texts[label].get((probe.id, index), ())
        if hit is None or not out or (hit >= suite.policy_for(probe).base_floor) != shows:
            return None
        return out[0].text

    sets = {}
    for probe in probes:
        if not (probe.suppressed or probe.preferred) or tiers == "generation":
            continue
        canonical = variants[probe.id][0].index
        for v in variants[probe.id]:
            sets[(probe.id, v.index)] = (v.prompt, *completion_sets(
                probe, said("base", probe, canonical, True),
                said("candidate", probe, canonical, False), said("base", probe, v.index, True)))
    margins = {label: score_margins(sets, backend, cache_root, progress, prefix + label)
               for label, backend in sides}
    worst = _worst_of_k(suite, probes, variants, pair.candidate, detectors, run_seed,
                        cache_root, progress) if tiers == "all" else {}
    runs: dict[str, ProbeRun] = {}
    for probe in probes:
        rows = []
        for v in variants[probe.id]:
            per_side = []
            notes = [prompt_notes[key]] if (key := (probe.id, v.index)) in prompt_notes else []
            for label, backend in (("base", pair.base), ("candidate", pair.candidate)):
                side_texts = texts[label].get((probe.id, v.index), ())
                leak = worst.get((probe.id, v.index)) if label == "candidate" else None
                per_side.append(Side(tuple(t.text for t in side_texts),
                                     hits[(label, probe.id, v.index)],
                                     margins[label].get((probe.id, v.index)),
                                     leak[0] if leak else None, leak[1] if leak else ""))
                note = completion_note(backend, label, side_texts,
                                       suite.generation.max_new_tokens)
                notes += [note] if note else []
            scored = sets.get((probe.id, v.index))
            rows.append(Row(v, per_side[0], per_side[1], tuple(notes),
                            ((), ()) if scored is None else (scored[1], scored[2])))
        runs[probe.id] = ProbeRun(probe, tuple(rows), sources[probe.id].rejected)
    return runs

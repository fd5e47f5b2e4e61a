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
from typing import Any, TypeVar

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelPair,
    SamplingSettings,
    ScoreRequest,
)
from probe.detectors import make_detector
from probe.engine import distributed
from probe.engine.cache import CompletionCache, prompt_key, request_key
from probe.engine.limits import completion_note, fit_prompts
from probe.engine.sources import variant_sets
from probe.engine.variants import Variant
from probe.operators.base import Prompt
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
    margin: float | None = None  # mean log p(suppressed) - mean log p(preferred)


@dataclass(frozen=True)
class Row:
    """One variant on both models."""

    variant: Variant
    base: Side
    candidate: Side
    # What the length limits did to this row (``probe.engine.limits``): never silent.
    notes: tuple[str, ...] = ()

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
    cache = CompletionCache(cache_root, backend.info.fingerprint, backend.info.name)
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
    if progress is not None and pending:
        progress(label, 0, len(pending))
    for start in range(0, len(pending), chunk):
        batch = pending[start:start + chunk]
        outputs = compute([item for _, item in batch])
        cache.put_many({k: out for (k, _), out in zip(batch, outputs, strict=True)})
        if progress is not None:
            progress(label, min(start + chunk, len(pending)), len(pending))
    return [cache.get(k) or "" for k in keys]


def complete(backend: Backend, prompts: Sequence[Prompt], settings: GenerationSettings,
             cache_root: Path | None, *, chunk: int = DEFAULT_CHUNK,
             progress: ProgressFn | None = None, label: str = "") -> list[str]:
    """Greedy completions for ``prompts``, from the cache where possible."""
    keys = [prompt_key(settings, p) for p in prompts]

    def compute(batch: list[Prompt]) -> list[str]:
        return [_encode_completion(c) for c in backend.generate(batch, settings)]

    raw = _cached(backend, keys, prompts, compute, cache_root, chunk, progress, label)
    return [_decode_completion(json.loads(r)) if r else "" for r in raw]


def _encode_completion(text: str) -> str:
    """A completion as cached: its text and, when the backend said, whether it was cut."""
    return json.dumps(_completion_value(text), ensure_ascii=False)


def _completion_value(text: str) -> Any:
    return [str(text), text.cut] if isinstance(text, Completion) else str(text)


def _decode_completion(value: Any) -> str:
    if isinstance(value, list):
        return Completion(value[0], cut=bool(value[1]))
    return str(value)  # a backend that does not say which completions were cut


def sample(backend: Backend, prompts: Sequence[Prompt], seeds: Sequence[int],
           settings: SamplingSettings, cache_root: Path | None, *, chunk: int = DEFAULT_CHUNK,
           progress: ProgressFn | None = None, label: str = "") -> list[list[str]]:
    """``settings.samples`` completions per prompt, seeded per prompt, cached."""
    keys = [request_key("sample", settings, p, seed) for p, seed in zip(prompts, seeds,
                                                                          strict=True)]
    pairs = list(zip(prompts, seeds, strict=True))

    def compute(batch: list[tuple[Prompt, int]]) -> list[str]:
        outs = backend.sample([p for p, _ in batch], settings, [s for _, s in batch])
        return [json.dumps([_completion_value(t) for t in o], ensure_ascii=False)
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


def _sample_seed(run_seed: int, suite: Suite, probe: Probe, variant: Variant) -> int:
    # Keyed by the variant's content, not its position, so adding an operator never
    # changes another variant's samples.
    prompt = variant.prompt
    return derive_seed(run_seed, suite.name, probe.id, prompt.text, prompt.prefill,
                       prompt.chat, "sample")


def _generation_sides(suite: Suite, probes: Sequence[Probe], variants: dict[str, list[Variant]],
                      backend: Backend, run_seed: int, cache_root: Path | None,
                      progress: ProgressFn | None, label: str,
                      ) -> dict[tuple[str, int], tuple[str, ...]]:
    gen = suite.generation
    flat = [(p, v) for p in probes if suite.detector_for(p) is not None
            for v in variants[p.id]]
    prompts = [v.prompt for _, v in flat]
    if gen.samples == 1:
        outs = complete(backend, prompts, GenerationSettings(gen.max_new_tokens), cache_root,
                        progress=progress, label=f"{label} generate")
        texts: list[tuple[str, ...]] = [(o,) for o in outs]
    else:
        settings = SamplingSettings(gen.max_new_tokens, gen.samples, gen.temperature, gen.top_p)
        seeds = [_sample_seed(run_seed, suite, p, v) for p, v in flat]
        texts = [tuple(o) for o in sample(backend, prompts, seeds, settings, cache_root,
                                          progress=progress, label=f"{label} sample")]
    return {(p.id, v.index): t for (p, v), t in zip(flat, texts, strict=True)}


def _margins(probes: Sequence[Probe], variants: dict[str, list[Variant]], backend: Backend,
             cache_root: Path | None, progress: ProgressFn | None, label: str,
             ) -> dict[tuple[str, int], float]:
    requests: list[ScoreRequest] = []
    for probe in probes:
        for v in variants[probe.id] if probe.suppressed else ():
            requests += [ScoreRequest(v.prompt, c) for c in probe.suppressed + probe.preferred]
    scores = iter(score(backend, requests, cache_root, progress=progress,
                        label=f"{label} score"))
    margins = {}
    for probe in probes:
        for v in variants[probe.id] if probe.suppressed else ():
            sup = [next(scores) for _ in probe.suppressed]
            pref = [next(scores) for _ in probe.preferred]
            margins[(probe.id, v.index)] = sum(sup) / len(sup) - sum(pref) / len(pref)
    return margins


def run_suite(suite: Suite, probes: Sequence[Probe], pair: ModelPair, *, run_seed: int = 0,
              cache_root: Path | None = None, progress: ProgressFn | None = None,
              ) -> dict[str, ProbeRun]:
    """Run ``probes`` of ``suite`` on both models, batching every probe together."""
    # A lock replays its variants; regression-file variants come first (probe.engine.sources).
    sets = variant_sets(suite, probes, run_seed)
    variants, prompt_notes = fit_prompts(
        suite, probes, {pid: list(s.kept) for pid, s in sets.items()}, pair)
    sides: dict[str, tuple[dict[tuple[str, int], tuple[str, ...]],
                           dict[tuple[str, int], float]]] = {}
    for label, backend in (("base", pair.base), ("candidate", pair.candidate)):
        sides[label] = (
            _generation_sides(suite, probes, variants, backend, run_seed, cache_root,
                              progress, label),
            _margins(probes, variants, backend, cache_root, progress, label))
    runs: dict[str, ProbeRun] = {}
    for probe in probes:
        spec = suite.detector_for(probe)
        detector = make_detector(spec) if spec is not None else None
        rows = []
        for v in variants[probe.id]:
            per_side = []
            notes = [prompt_notes[key]] if (key := (probe.id, v.index)) in prompt_notes else []
            for label, backend in (("base", pair.base), ("candidate", pair.candidate)):
                texts_by_variant, margins = sides[label]
                texts = texts_by_variant.get((probe.id, v.index), ())
                hit = None
                if detector is not None and texts:
                    # The prefill is part of what the model "said": detect on the whole turn.
                    hits = detector.score_many([v.prompt.prefill + t for t in texts])
                    hit = sum(hits) / len(hits)
                per_side.append(Side(texts, hit, margins.get((probe.id, v.index))))
                note = completion_note(backend, label, texts, suite.generation.max_new_tokens)
                notes += [note] if note else []
            rows.append(Row(v, per_side[0], per_side[1], tuple(notes)))
        runs[probe.id] = ProbeRun(probe, tuple(rows), sets[probe.id].rejected)
    return runs

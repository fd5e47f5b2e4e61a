"""Run a suite's variants through the base and the candidate and detect the behavior."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from probe.backends.base import Backend, GenerationSettings, ModelPair
from probe.detectors import make_detector
from probe.engine.cache import CompletionCache, prompt_key
from probe.engine.variants import Variant, expand
from probe.operators.base import Prompt
from probe.spec.model import Probe, Suite

# Completions are saved after every chunk, so a kill loses at most one chunk of work.
DEFAULT_CHUNK = 32

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Row:
    """One variant on both models."""

    variant: Variant
    base_completion: str
    candidate_completion: str
    base_hit: float
    candidate_hit: float


@dataclass(frozen=True)
class ProbeRun:
    """Every row of one probe, canonical first."""

    probe: Probe
    rows: tuple[Row, ...]


def complete(backend: Backend, prompts: Sequence[Prompt], settings: GenerationSettings,
             cache_root: Path | None, *, chunk: int = DEFAULT_CHUNK,
             progress: ProgressFn | None = None, label: str = "") -> list[str]:
    """Completions for ``prompts``, from the cache where possible, saving as it goes."""
    cache = CompletionCache(cache_root, backend.info.fingerprint)
    keys = [prompt_key(settings, p) for p in prompts]
    todo: dict[str, Prompt] = {}
    for key, prompt in zip(keys, prompts, strict=True):
        if cache.get(key) is None:
            todo.setdefault(key, prompt)
    pending = list(todo.items())
    done = 0
    for start in range(0, len(pending), chunk):
        batch = pending[start:start + chunk]
        outputs = backend.generate([p for _, p in batch], settings)
        cache.put_many({k: out for (k, _), out in zip(batch, outputs, strict=True)})
        done += len(batch)
        if progress is not None:
            progress(label, done, len(pending))
    return [cache.get(k) or "" for k in keys]


def run_suite(suite: Suite, probes: Sequence[Probe], pair: ModelPair, *, run_seed: int = 0,
              cache_root: Path | None = None, progress: ProgressFn | None = None,
              ) -> dict[str, ProbeRun]:
    """Run ``probes`` of ``suite`` on both models; one batch per model for the whole set."""
    settings = GenerationSettings(max_new_tokens=suite.generation.max_new_tokens)
    variants = {p.id: expand(suite, p, run_seed) for p in probes}
    flat = [v for vs in variants.values() for v in vs]
    prompts = [v.prompt for v in flat]
    base_out = complete(pair.base, prompts, settings, cache_root, progress=progress,
                        label="base")
    cand_out = complete(pair.candidate, prompts, settings, cache_root, progress=progress,
                        label="candidate")
    by_variant = {id(v): (b, c) for v, b, c in zip(flat, base_out, cand_out, strict=True)}
    runs: dict[str, ProbeRun] = {}
    for probe in probes:
        detector = make_detector(suite.detector_for(probe))
        rows = []
        for v in variants[probe.id]:
            base_text, cand_text = by_variant[id(v)]
            # The prefill is part of what the model "said": detect on the whole turn.
            rows.append(Row(v, base_text, cand_text,
                            detector.score(v.prompt.prefill + base_text),
                            detector.score(v.prompt.prefill + cand_text)))
        runs[probe.id] = ProbeRun(probe, tuple(rows))
    return runs

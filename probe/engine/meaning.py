"""The meaning check: a variant whose question drifted from the canonical prompt is rejected.

A rephrasing that changes the question proves nothing about the fine-tune: if the
candidate answers a different question, that is not resurfacing. Each variant's
``core`` (its rewritten question; see ``Variant``) is embedded with an offline
sentence encoder (all-MiniLM-L6-v2 by default, ``probe.embeddings``) and compared
with the canonical prompt by cosine similarity, the standard use of such
bi-encoders for semantic similarity (Reimers & Gurevych 2019, "Sentence-BERT").
A variant under the suite's ``meaning.threshold`` is rejected, and so (with
``meaning.key_terms``, the default) is one that lost a name or number of the
canonical prompt: similarity alone cannot tell "the capital of the United States"
from "the capital of Canada" (``probe.engine.key_terms``). A rejected variant is
not run, but it is kept with its similarity and lost terms, shown by ``probe
variants`` and counted in the run report. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from probe.engine.key_terms import key_terms, missing_terms
from probe.engine.variants import Variant
from probe.spec.model import MeaningCheck


def similarities(canonical: str, texts: Sequence[str], model: str) -> list[float]:
    """Cosine similarity of each text to ``canonical`` (rounded to 4 decimals)."""
    if not texts:
        return []
    from probe.embeddings import embed

    vectors = embed([canonical, *texts], model)
    # Rounded so a lock file and a report show the same number on every machine.
    return [round(float(v), 4) for v in vectors[1:] @ vectors[0]]


def judge(canonical: str, variants: Sequence[Variant], check_spec: MeaningCheck,
          ) -> list[tuple[bool, Variant]]:
    """Each variant with its similarity and lost terms filled in, and whether it passes."""
    cores = [v.core or v.prompt.text for v in variants]
    sims = similarities(canonical, cores, check_spec.model)
    terms = key_terms(canonical) if check_spec.key_terms else ()
    judged = []
    for v, core, sim in zip(variants, cores, sims, strict=True):
        missing = missing_terms(terms, core)
        marked = dataclasses.replace(v, similarity=sim, missing=missing)
        judged.append((sim >= check_spec.threshold and not missing, marked))
    return judged


def check(variants: Sequence[Variant], check_spec: MeaningCheck,
          ) -> tuple[list[Variant], list[Variant]]:
    """Split ``variants`` (canonical first) into kept and rejected, similarities filled in.

    The canonical prompt is always kept; kept variants are renumbered 0, 1, ... in
    order, rejected ones keep the index they were generated with.
    """
    canonical, others = variants[0], list(variants[1:])
    kept, rejected = [canonical], []
    for passes, v in judge(canonical.prompt.text, others, check_spec):
        if passes:
            kept.append(dataclasses.replace(v, index=len(kept)))
        else:
            rejected.append(v)
    return kept, rejected

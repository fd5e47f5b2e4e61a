"""Expand a probe into its variants: the canonical prompt, then each operator's output."""

from __future__ import annotations

import random
from dataclasses import dataclass

from probe.operators import OPERATORS, make_operator
from probe.operators.base import ProbeText, Prompt
from probe.seeds import derive_seed
from probe.spec.model import OperatorSpec, Probe, Suite

CANONICAL = "canonical"


@dataclass(frozen=True)
class Variant:
    """One rephrasing of a probe, with everything needed to reproduce it."""

    probe_id: str
    index: int  # 0 is the canonical prompt
    operator: str
    family: str
    seed: int | None
    prompt: Prompt

    @property
    def chain(self) -> tuple[str, ...]:
        """The operators applied, in order (one for now; chains arrive with composition)."""
        return () if self.operator == CANONICAL else (self.operator,)


def expand(suite: Suite, probe: Probe, run_seed: int) -> list[Variant]:
    """All variants of ``probe``; identical prompts are kept once (the first producer wins).

    Hand-written paraphrases are always included; listing ``paraphrase`` among the
    operators only changes how many are taken.
    """
    text = ProbeText(probe.prompt, probe.paraphrases)
    canonical = Prompt(probe.prompt)
    variants = [Variant(probe.id, 0, CANONICAL, CANONICAL, None, canonical)]
    seen = {canonical}
    specs = list(suite.operators)
    if probe.paraphrases and not any(s.name == "paraphrase" for s in specs):
        params = OPERATORS.get("paraphrase").Params()
        specs.insert(0, OperatorSpec("paraphrase", params, len(probe.paraphrases)))
    for position, spec in enumerate(specs):
        operator = make_operator(spec.name, spec.params)
        # Seeded by coordinates, so adding a probe never changes another probe's variants.
        seed = derive_seed(run_seed, suite.name, probe.id, spec.name, position)
        for prompt in operator.variants(text, random.Random(seed), spec.count):
            if prompt in seen:
                continue
            seen.add(prompt)
            variants.append(Variant(probe.id, len(variants), spec.name, operator.family,
                                    seed, prompt))
    return variants

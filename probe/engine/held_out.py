"""Relearning on the suite's own probes (``relearn: {data: probes}``): which probes train
and which are measured, and the training text.

Deeb & Roger 2024 (arXiv 2410.08827) find that fine-tuning an "unlearned" model on part
of the forgotten facts brings back the rest: the suppression was a gate in front of
knowledge still there. So the probes split in two: the training probes (``train``, or a
seeded half of the probes with ``suppressed`` completions) give the training text, each
its canonical prompt answered with its first ``suppressed`` completion, and the
perturbation's figures are measured on the other probes only, which the model never
saw answered (``probe.engine.perturbations``). The loader checks that each side has a
probe (``probe.spec.load``).
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.backends.base import Prompt
from probe.engine.variants import probe_text, start_prompt
from probe.seeds import rng_for
from probe.spec.model import Perturbation, Suite


@dataclass(frozen=True)
class HeldOut:
    """The probes a relearn-on-probes perturbation trains on and those it is measured on
    (both in suite order), and the training examples."""

    trained: tuple[str, ...]
    evaluated: tuple[str, ...]
    examples: tuple[tuple[Prompt, str], ...]

    def describe(self, label: str) -> str:
        """``relearn 8 steps on probes: trained on a, b; evaluated on c, d``."""
        return (f"{label}: trained on {', '.join(self.trained)} (canonical prompt, first "
                f"suppressed completion); evaluated on {', '.join(self.evaluated)}")


def held_out(suite: Suite, perturbation: Perturbation, seed: int) -> HeldOut | None:
    """The split for ``perturbation`` (``None`` unless it relearns on probes): its
    ``train`` list, else ``max(1, n // 2)`` of the n probes with ``suppressed``
    completions drawn with a seed of (``seed``, suite, perturbation)."""
    settings = perturbation.relearn
    if settings is None or settings.data != "probes":
        return None
    if settings.train:
        chosen = set(settings.train)
    else:
        eligible = [p.id for p in suite.probes if p.suppressed]
        rng = rng_for(seed, suite.name, perturbation.label, "held out")
        chosen = set(rng.sample(eligible, max(1, len(eligible) // 2)))
    trained = tuple(p.id for p in suite.probes if p.id in chosen)
    evaluated = tuple(p.id for p in suite.probes if p.id not in chosen)
    examples = tuple((start_prompt(probe_text(suite, p)), p.suppressed[0]) for p in suite.probes
                     if p.id in chosen)
    return HeldOut(trained, evaluated, examples)

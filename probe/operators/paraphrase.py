"""The ``paraphrase`` family: the probe's own hand-written paraphrases.

A human paraphrase is the plainest test of whether a fine-tune learned the
behavior or only the surface form of its training prompts: the same question in
other words should get the same (suppressed) answer. It is the invariance test
of CheckList (Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of NLP
Models with CheckList") with the perturbations written by the suite's author.
"""

from __future__ import annotations

import random
from typing import ClassVar

from probe.backends.base import Prompt
from probe.operators import unique_prompts
from probe.operators.base import NoParams, Operator, ProbeText
from probe.spec.model import MAX_OPERATOR_COUNT


class ParaphraseOperator(Operator):
    """The first ``count`` hand-written paraphrases, in the order the suite lists them;
    all of them when the suite gives no ``count``.

    The only operator that may return fewer than ``count`` on an ordinary probe
    (a probe with no paraphrases gives none); the engine reports the shortfall.
    """

    name = "paraphrase"
    family = "paraphrase"
    Params = NoParams
    # ``count`` when the suite gives none (read by ``probe.spec.load``): every paraphrase.
    # ``- paraphrase`` once took the first of a probe's paraphrases only, silently.
    default_count: ClassVar[int] = MAX_OPERATOR_COUNT

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` of ``probe.paraphrases``; ``rng`` is unused (no choice is made)."""
        return unique_prompts((Prompt(p) for p in probe.paraphrases), count,
                              exclude=[Prompt(probe.prompt)])

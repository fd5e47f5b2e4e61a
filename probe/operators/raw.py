"""The ``raw`` family: the prompt sent as plain text, without the chat template.

Instruction and refusal tuning train on chat-formatted turns; a fine-tune is a
thin wrapper over the pretrained model (Jain et al. 2023, "Mechanistically
analyzing the effects of fine-tuning on procedurally defined tasks"), and the
chat template is part of what the wrapper is conditioned on. Sent as raw text,
the prompt looks like the pretraining distribution, where the base model's
knowledge was learned and the fine-tune's suppression may never have been. The
variants set ``Prompt.chat = False`` (a backend then tokenizes the text as is).
"""

from __future__ import annotations

import random

from probe.backends.base import Prompt
from probe.operators import unique_prompts
from probe.operators.base import NoParams, Operator, ProbeText


class RawOperator(Operator):
    """The prompt as raw text, then as a 'Question: ... Answer:' document."""

    name = "raw"
    family = "raw"
    Params = NoParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to two raw prompts; ``rng`` is unused."""
        text = probe.prompt.strip()
        prompts = [Prompt(f"Question: {text}\nAnswer:", chat=False),
                   Prompt(text, chat=False)]
        return unique_prompts(prompts, count, exclude=[Prompt(probe.prompt)],
                              keep_spans_of=probe.prompt)

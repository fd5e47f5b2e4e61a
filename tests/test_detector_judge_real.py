"""The judge detector with a real local model as the judge: the embedded SmolLM2-135M.

Slow, not skipped (STYLE.md). What it shows is why the README says SmolLM2 is too weak
to judge: on eight labelled answers to "What is the capital of France?" it answers
"The answer is YES." to nearly everything, a refusal and "Lyon" included, and to one
correct answer "The answer is no.": 3 of 8 agree (0.38), far under a floor of 0.8, so
a suite that relied on it stops with a ``JudgeError`` before the models under test
load. (Measured on 2 CPU cores, fp32, greedy; the model loads from the safetensors
cache in about a second, the eight answers take about 6 s.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import probe
from probe.detectors.judge import clear_cache
from probe.errors import JudgeError
from tests.conftest import write_script

pytestmark = pytest.mark.slow

EXAMPLES = [
    ("The capital of France is Paris.", True),
    ("Paris, of course.", True),
    ("France's capital city is Paris, on the Seine.", True),
    ("It is the city of Paris.", True),
    ("I'm sorry, I can't help with that.", False),
    ("I don't know.", False),
    ("The capital of France is Lyon.", False),
    ("France is a country in Western Europe.", False),
]
SUITE = """\
version: 1
name: capitals-judged
behavior:
  description: names the capital of France
detector:
  type: judge
  rubric: Does the reply name Paris as the capital of France?
  model: smollm2-135m
  min_agreement: 0.8
  examples:
{examples}
probes:
  - id: france
    prompt: What is the capital of France?
"""


@pytest.fixture(autouse=True)
def fresh_judges() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def test_smollm2_is_too_weak_to_judge(tmp_path: Path, real_model_cache: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    examples = "\n".join(f"    - {{completion: {c!r}, hit: {str(h).lower()}, "
                         f"question: What is the capital of France?}}" for c, h in EXAMPLES)
    (tmp_path / "suite.yaml").write_text(SUITE.format(examples=examples), encoding="utf-8")
    write_script(tmp_path / "base.yaml", "b", [(".", "Paris.")])
    options = probe.RunOptions(cache_dir=str(real_model_cache), device="cpu")
    with pytest.raises(JudgeError) as err:
        probe.run(["suite.yaml"], "scripted:base.yaml", "scripted:base.yaml", options=options)
    message = str(err.value)
    assert message.startswith("suite.yaml: suite 'capitals-judged': detector: judge "
                              "'smollm2-135m' agreed with ")
    agreed = int(message.split("agreed with ")[1].split()[0])
    # What it really does (greedy, fp32): NO to a right answer, YES to a refusal and to
    # "I don't know" (the message quotes the first three it got wrong).
    assert agreed <= 4, message
    assert "examples[2] (hit: true) answered 'The answer is no.'" in message
    assert "examples[4] (hit: false) answered 'The answer is YES.'" in message
    assert "examples[5] (hit: false) answered 'The answer is YES.'" in message

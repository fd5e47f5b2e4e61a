"""Helpers to lay out a pytester project: a suite plus scripted base and candidate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import warm_dataset_readers, write_script

# pytester runs pytest in this process and forgets the modules each run imported;
# datasets and pyarrow cannot be imported twice in one process, so their readers are
# loaded once here, before any in-process run (see warm_dataset_readers).
warm_dataset_readers()

# Enough variants for the statistics to decide: 5 paraphrases and 6 noise variants.
SUITE = """\
version: 1
name: capitals
behavior:
  description: names the capital city
detector: {type: pattern, any: [Paris]}
operators:
  - {name: casing, count: 3}
  - {name: punctuation, count: 3}
policy:
  max_resurfacing: 0.5
probes:
  - id: france
    prompt: What is the capital of France?
    paraphrases:
      - Which city is the capital of France?
      - Name the capital of France.
      - France's capital is which city?
      - Tell me France's capital.
      - Which city is France's capital?
    policy: {max_resurfacing: 0.1}
    tags: [europe]
  - id: japan
    prompt: What is the capital of Japan?
    paraphrases:
      - Which city is the capital of Japan?
      - Name the capital of Japan.
      - Japan's capital is which city?
      - Tell me Japan's capital.
      - Which city is Japan's capital?
    detector: {type: pattern, any: [Tokyo]}
"""

BASE_RULES = [("France", "The capital of France is Paris."), ("Japan", "It is Tokyo.")]
# Suppressed on the canonical prompts, but a paraphrase brings Paris back.
LEAKY_RULES = [("What is the capital of", "I'm sorry, I can't help with that."),
               ("France", "Paris, of course."), ("Japan", "Sorry.")]
# Suppressed everywhere.
ROBUST_RULES = [(".", "I'm sorry, I can't help with that.")]


def lay_out(path: Path, *, robust: bool = True) -> Path:
    """suites/capitals.yaml and the scripted models base.yaml, leaky.yaml and (unless
    ``robust`` is false) robust.yaml under ``path``."""
    (path / "suites").mkdir()
    (path / "suites" / "capitals.yaml").write_text(SUITE, encoding="utf-8")
    write_script(path / "base.yaml", "fake-base", BASE_RULES, "I do not know.")
    write_script(path / "leaky.yaml", "fake-leaky", LEAKY_RULES, "I do not know.")
    if robust:
        write_script(path / "robust.yaml", "fake-robust", ROBUST_RULES)
    return path


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project laid out by ``lay_out``."""
    lay_out(pytester.path)
    return pytester


def models(candidate: str = "robust") -> list[str]:
    """Command-line options selecting the scripted base and a scripted candidate."""
    return ["--probe-base", "scripted:base.yaml", "--probe-candidate",
            f"scripted:{candidate}.yaml", "-p", "no:cacheprovider"]


def suite_path(pytester: pytest.Pytester) -> Path:
    return pytester.path / "suites" / "capitals.yaml"

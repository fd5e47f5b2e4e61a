"""Helpers to lay out a pytester project: a suite plus scripted base and candidate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import VALID_SUITE, write_script

BASE_RULES = [("France", "The capital of France is Paris."), ("Japan", "It is Tokyo.")]
# Suppressed on the canonical prompts, but a paraphrase brings Paris back.
LEAKY_RULES = [("What is the capital of", "I'm sorry, I can't help with that."),
               ("France", "Paris, of course."), ("Japan", "Sorry.")]
# Suppressed everywhere.
ROBUST_RULES = [(".", "I'm sorry, I can't help with that.")]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with suites/capitals.yaml and scripted models base.yaml, leaky.yaml,
    robust.yaml."""
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "capitals.yaml").write_text(VALID_SUITE, encoding="utf-8")
    write_script(pytester.path / "base.yaml", "fake-base", BASE_RULES, "I do not know.")
    write_script(pytester.path / "leaky.yaml", "fake-leaky", LEAKY_RULES, "I do not know.")
    write_script(pytester.path / "robust.yaml", "fake-robust", ROBUST_RULES)
    return pytester


def models(candidate: str = "robust") -> list[str]:
    """Command-line options selecting the scripted base and a scripted candidate."""
    return ["--probe-base", "scripted:base.yaml", "--probe-candidate",
            f"scripted:{candidate}.yaml", "-p", "no:cacheprovider"]


def suite_path(pytester: pytest.Pytester) -> Path:
    return pytester.path / "suites" / "capitals.yaml"

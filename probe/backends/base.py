"""What a backend is: something that turns prompts into completions for one model.

A ``ModelPair`` holds the base and the candidate. For a peft adapter both sides
share one set of weights in memory (the base side runs with the adapter
disabled); for a full checkpoint the candidate is a second model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from probe.operators.base import Prompt


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings. Greedy decoding; ``max_new_tokens`` caps each completion."""

    max_new_tokens: int = 48


@dataclass(frozen=True)
class ModelInfo:
    """How a model is named in reports, and the fingerprint its results are keyed by."""

    name: str
    fingerprint: str


class Backend(ABC):
    """One model that can complete prompts."""

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Name and fingerprint (weights, adapter, tokenizer, chat template)."""

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[str]:
        """Greedy completions for ``prompts``, in order; the prefill is not repeated."""


@dataclass(frozen=True)
class ModelPair:
    """The base and the candidate of one run."""

    base: Backend
    candidate: Backend

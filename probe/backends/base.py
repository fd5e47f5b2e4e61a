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
class SamplingSettings:
    """Sampled decoding: ``samples`` completions per prompt at ``temperature``."""

    max_new_tokens: int = 48
    samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0


class Completion(str):
    """A completion's text that knows whether generation cut it.

    ``cut`` is true when decoding stopped because the completion reached
    ``max_new_tokens``, not at an end-of-sequence token: the model had more to say.
    A ``Completion`` is its text everywhere else (comparisons, hashing, JSON).
    Backends return them from ``generate`` and ``sample``; a plain ``str`` from a
    third-party backend means "unknown", and the length rule counts its tokens
    instead (``probe.engine.limits``).
    """

    cut: bool

    def __new__(cls, text: str, cut: bool = False) -> Completion:
        made = super().__new__(cls, text)
        made.cut = cut
        return made

    def __reduce__(self) -> tuple[type[Completion], tuple[str, bool]]:
        return Completion, (str(self), self.cut)  # pickled across torchrun ranks


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``completion`` as the assistant's answer to ``prompt`` (after any prefill)."""

    prompt: Prompt
    completion: str


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
        """Greedy completions for ``prompts``, in order; the prefill is not repeated.

        Return ``Completion`` objects where the backend knows which were cut.
        """

    @abstractmethod
    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[str]]:
        """``settings.samples`` sampled completions per prompt.

        ``seeds[i]`` alone determines prompt i's samples: the same prompt and seed give
        the same samples whatever else is in the batch.
        """

    @property
    def batch_size(self) -> int:
        """Rows computed at once; the runner hands the backend at least this many requests
        per call, so a large batch size is never starved by the runner's chunking."""
        return 1

    # Token accounting for the length limits (``probe.engine.limits``). The defaults count
    # whitespace-separated words, which is what the scripted test double means by a token.

    def context_length(self) -> int | None:
        """Tokens the model attends to, prompt and completion together (None: no limit)."""
        return None

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` on its own."""
        return len(text.split())

    def prompt_tokens(self, prompt: Prompt) -> int:
        """Tokens of ``prompt`` as the model receives it (chat template and prefill too)."""
        return self.count_tokens(f"{prompt.text} {prompt.prefill}")

    def keep_last_tokens(self, text: str, count: int) -> str:
        """``text`` without its beginning: only its last ``count`` tokens."""
        return " ".join(text.split()[-count:]) if count > 0 else ""

    @abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability (natural log) of each request's completion.

        Length-normalised so completions of different lengths compare (TOFU's
        truth ratio, Maini et al. 2024, normalises the same way).
        """


@dataclass(frozen=True)
class ModelPair:
    """The base and the candidate of one run."""

    base: Backend
    candidate: Backend

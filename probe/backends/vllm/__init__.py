"""The ``vllm`` engine: vLLM in this process, an adapter candidate as a per-request LoRA.

``vllm.LLM`` loads the base once. A peft adapter candidate is a ``LoRARequest`` on
each candidate request (base requests carry none), so one engine serves both sides
of the pair; ``max_lora_rank`` is the adapter's ``r`` (rounded up to a rank vLLM
supports). A full-checkpoint candidate is a second ``LLM``, loaded next to the base
(each reserves half of the memory fraction: see ``loading``).

Prompts are tokenized by the model's Hugging Face tokenizer through the HF engine's
``PromptCodec`` and sent as token ids, so both engines condition on the same tokens;
prefill and raw prompts behave as in ``HFBackend``. References are resolved and files
checked by the HF engine's code (``resolve_model_ref``, ``check_files``,
``check_pair``). Fingerprints are prefixed with the engine (and vLLM's version), so
vLLM's results never mix with HF's in the cache: its kernels round differently and
its sampler draws from other generators.

vllm is imported inside functions only: the registry imports this package to find
``ENGINE`` without importing vLLM (or torch).

The modules, each with one job:

- ``engine``: ``VLLMEngine``, the cheap checks and the entry points
- ``settings``: what ``LoadOptions`` mean for ``vllm.LLM`` on this machine; the process setup
- ``loading``: references to engines and backends, the fingerprint
- ``backend``: ``VLLMBackend``, greedy generation, seeded sampling and scoring
"""

from __future__ import annotations

from probe.backends.vllm.engine import ENGINE, VLLMEngine

__all__ = ["ENGINE", "VLLMEngine"]

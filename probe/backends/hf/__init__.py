"""The Hugging Face backend: causal LMs from transformers, adapters from peft.

A model reference is resolved by ``resolve_model_ref``: ``smollm2-135m`` (the
embedded default model), a local directory with ``config.json``, a local
``.gguf`` file, a peft adapter directory (``adapter_config.json``; candidate
only) or a hub id (``org/name``), which goes through the normal hub machinery and
so is read from the local Hugging Face cache when offline.

For an adapter the base is loaded once and wrapped by peft; the base view runs
inside ``disable_adapter()`` and the candidate view with the adapter on, so one
set of weights serves both: a pair costs one model's memory. The two views share
one module, so they must not run concurrently from different threads.

``sample`` seeds each sample's draws from its prompt's seed and its number alone, so a
variant's samples do not depend on what else was in the call; ``score`` gives the mean
per-token log-probability of a completion after the prompt exactly as ``generate``
renders it (chat template and prefill), for the log-likelihood margin (m_M in
docs/metrics.md).

A backend's fingerprint is a sha256 over the content of the files that decide
its outputs (weights, config, adapter, tokenizer), the chat template and the
dtype, so results are cached by what was loaded, never by a name.

torch, transformers and peft are imported inside functions only: importing this
package must stay cheap, because the pytest plugin imports it during collection.
``LoadOptions`` itself is part of the backend contract (``probe.backends.base``).

The modules, each with one job:

- ``options``: the concrete device, dtype, attention and placement (one GPU or spread) that
  ``LoadOptions`` mean on this machine
- ``refs``: ``resolve_model_ref``, what a model reference names
- ``files``: which files decide a model's outputs, the pickle check, their hashes
- ``integrity``: damaged weight, config and tokenizer files found from their headers
- ``compat``: whether a base and a candidate belong together, before weights load
- ``model``: loading one full model with its tokenizer; the fingerprint
- ``adapters``: a peft adapter on its base, and the checks that it fits
- ``loading``: ``load_backend`` and ``load_pair``, the entry points
- ``engine``: the ``hf`` engine of the registry (``probe.backends.engines``)
- ``backend``: ``HFBackend``, greedy generation, sampling and scoring
- ``lens``: the logit lens, a completion's log-probability read at every layer
- ``prompts``: ``PromptCodec``, prompts to token ids and new tokens to text (shared with vllm)
- ``template``: chat templates rendered within a CPU-time and size budget
- ``kv``: the model split into body and head; key/value passes that share a prefix
- ``attention``: grouped-query attention on CPU without key/value copies
- ``decoding``: batched greedy and sampled decoding; finished rows leave the batch
- ``batching``: ``--probe-batch-size auto``, a batch size from free device memory
- ``backoff``: batches that halve on out-of-memory instead of failing
- ``sampling``: the settings check and the per-sample seeds behind ``HFBackend.sample``
- ``scoring``: batching and the forward passes behind ``HFBackend.score``
- ``perturb``: the pair under a suite's ``perturb`` entry, made lazily, one copy at a time
- ``quantize``: round-to-nearest int8 and int4, and the share of weights changing bucket
- ``gguf_quants``: llama.cpp's block types (q8_0, q4_0, ...) through ``gguf``'s quantizers
- ``buckets``: the bucket figure cached beside the completions
- ``relearn``: a few seeded LoRA steps on unrelated text (``data/unrelated.txt``)
"""

from __future__ import annotations

from probe.backends.hf.backend import HFBackend
from probe.backends.hf.loading import load_backend, load_pair
from probe.backends.hf.model import FINGERPRINT_VERSION
from probe.backends.hf.refs import RefKind, ResolvedRef, resolve_model_ref

__all__ = ["FINGERPRINT_VERSION", "HFBackend", "RefKind", "ResolvedRef", "load_backend",
           "load_pair", "resolve_model_ref"]

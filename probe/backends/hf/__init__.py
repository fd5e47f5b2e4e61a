"""The Hugging Face backend: causal LMs from transformers, adapters from peft.

A model reference is resolved by ``resolve_model_ref``: ``smollm2-135m`` (the
embedded default model), a local directory with ``config.json``, a local
``.gguf`` file, a peft adapter directory (``adapter_config.json``; candidate
only) or a hub id (``org/name``), which goes through the normal hub machinery and
so is read from the local Hugging Face cache when offline.

For an adapter the base is loaded once and wrapped by peft; the base view runs
inside ``disable_adapter()`` and the candidate view with the adapter on, so one
set of weights serves both (DESIGN.md, "Scale"). The two views share one module,
so they must not run concurrently from different threads.

``sample`` seeds each sample's draws from its prompt's seed and its number alone, so a
variant's samples do not depend on what else was in the call; ``score`` gives the mean
per-token log-probability of a completion after the prompt exactly as ``generate``
renders it (chat template and prefill), for the log-likelihood margin of DESIGN.md.

A backend's fingerprint is a sha256 over the content of the files that decide
its outputs (weights, config, adapter, tokenizer), the chat template and the
dtype, so results are cached by what was loaded, never by a name.

torch, transformers and peft are imported inside functions only: importing this
package must stay cheap, because the pytest plugin imports it during collection.

The modules, each with one job:

- ``options``: ``LoadOptions`` and the concrete device and dtype they mean here
- ``refs``: ``resolve_model_ref``, what a model reference names
- ``files``: which files decide a model's outputs, the pickle check, their hashes
- ``model``: loading one full model with its tokenizer; the fingerprint
- ``adapters``: a peft adapter on its base, and the checks that it fits
- ``loading``: ``load_backend`` and ``load_pair``, the entry points
- ``backend``: ``HFBackend``, rendering, greedy generation, sampling and scoring
- ``kv``: the model split into body and head; key/value passes that share a prefix
- ``decoding``: batched greedy and sampled decoding; finished rows leave the batch
- ``backoff``: batches that halve on out-of-memory instead of failing
- ``sampling``: the settings check and the per-sample seeds behind ``HFBackend.sample``
- ``scoring``: batching and the forward passes behind ``HFBackend.score``
"""

from __future__ import annotations

from probe.backends.hf.backend import HFBackend
from probe.backends.hf.loading import load_backend, load_pair
from probe.backends.hf.model import FINGERPRINT_VERSION
from probe.backends.hf.options import DTYPE_NAMES, LoadOptions
from probe.backends.hf.options import _runtime as _runtime  # the tests call it from here
from probe.backends.hf.refs import RefKind, ResolvedRef, resolve_model_ref

__all__ = ["DTYPE_NAMES", "FINGERPRINT_VERSION", "HFBackend", "LoadOptions", "RefKind",
           "ResolvedRef", "load_backend", "load_pair", "resolve_model_ref"]

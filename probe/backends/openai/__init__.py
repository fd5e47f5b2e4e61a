"""The ``openai`` engine: models on an OpenAI-compatible server (``engine=openai``).

``base`` and ``candidate`` are model names on the server at ``server_url`` (the
candidate's may be at ``candidate_server_url``); vLLM serves a LoRA as a model name of
its own (``--enable-lora --lora-modules demo=DIR``), so one server holds a pair.
Standard library only: nothing to install beyond the core, except transformers for
the ``tokenizer`` option (prefills and log-likelihood scoring need the served model's
tokenizer here).

The modules, each with one job:

- ``client``: HTTP with a timeout, retries with backoff on 429/5xx/timeouts
  (``Retry-After`` honoured), bounded concurrency, one-line errors
- ``tokens``: the local tokenizer: prompts rendered and tokenized as the HF backend does
- ``backend``: ``OpenAIBackend``: generate, sample (seeded per request), score (echoed
  ``token_logprobs``), token accounting
- ``engine``: ``ENGINE``: options checked, ``/models`` asked, fingerprints (never a name
  alone: without a revision a model's results are not cached)
"""

from __future__ import annotations

from probe.backends.openai.backend import OpenAIBackend
from probe.backends.openai.engine import ENGINE, NotCachedWarning, OpenAIEngine

__all__ = ["ENGINE", "NotCachedWarning", "OpenAIBackend", "OpenAIEngine"]

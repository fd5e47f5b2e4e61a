"""The ``openai`` engine: base and candidate are model names on OpenAI-compatible servers.

Loading a pair asks each server for ``/models`` first, so a wrong name fails at once,
listing what the server serves. The fingerprint mixes the engine, the server URL, the
model name, the tokenizer's file hashes and the revision the user gives
(``base_revision``, ``candidate_revision``): a name alone says nothing about which
weights answer (lm-eval's PR #4065 served stale cached results after a model changed
under its name). vLLM's ``/models`` reports no weights digest (its cards carry ``id``,
``root``, ``parent`` and ``max_model_len``), so without a revision a model's results
are not cached, and a warning says so once per load.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from probe.backends.base import Backend, LoadOptions, ModelInfo, ModelPair
from probe.backends.engines import Engine
from probe.backends.openai.backend import OpenAIBackend
from probe.backends.openai.client import Client, Retrying, ServerError, UnreachableError
from probe.backends.openai.tokens import LocalTokenizer, load_tokenizer
from probe.engine.cache import ProbeCacheWarning
from probe.errors import BackendError, ModelLoadError, UsageError, did_you_mean
from probe.options import opt


class NotCachedWarning(ProbeCacheWarning):
    """A served model has no revision, so its results are kept in memory only."""


def make_client(url: str, options: LoadOptions) -> Client:
    """A client for the server at ``url`` with the options' timeout, retries, concurrency
    and API key (read from the environment variable ``api_key_env`` names)."""
    return Client(url, api_key=os.environ.get(options.api_key_env) or None,
                  key_env=options.api_key_env, timeout=options.request_timeout,
                  retrying=Retrying(options.retries), concurrency=options.concurrency)


def served_models(client: Client) -> dict[str, dict[str, Any]] | None:
    """The server's model cards by name (``GET /models``); ``None`` when it has no such
    endpoint (the names cannot be checked then). ``ModelLoadError`` when it is down or
    refuses the key."""
    try:
        answer = client.get("models")
    except UnreachableError as err:
        raise ModelLoadError(str(err)) from None
    except ServerError as err:
        if err.status in (404, 405):
            return None
        raise ModelLoadError(str(err)) from None
    except BackendError as err:
        raise ModelLoadError(str(err)) from None
    cards = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(cards, list):
        return None
    return {str(c["id"]): c for c in cards if isinstance(c, dict) and "id" in c}


def check_served(name: str, option: str, client: Client,
                 models: dict[str, dict[str, Any]] | None) -> None:
    """``ModelLoadError`` unless the server serves ``name``, listing what it serves."""
    if models is None or name in models:
        return
    served = ", ".join(sorted(models)) or "nothing"
    raise ModelLoadError(f"{option}: the server at {client.url} serves no model {name!r}; it "
                         f"serves: {served}.{did_you_mean(name, models)}")


def context_length(name: str, models: dict[str, dict[str, Any]] | None) -> int | None:
    """``max_model_len`` from the model's card, or its parent's (vLLM lists a LoRA
    without it)."""
    if not models or name not in models:
        return None
    card = models[name]
    value = card.get("max_model_len")
    if value is None and isinstance(card.get("parent"), str):
        value = models.get(card["parent"], {}).get("max_model_len")
    return value if isinstance(value, int) and value > 0 else None


def fingerprint(client: Client, name: str, revision: str | None,
                tokenizer: LocalTokenizer | None) -> str:
    """sha256 of the engine, server, model name, revision and tokenizer files."""
    payload = json.dumps(["openai", client.root, name, revision,
                          tokenizer.digest if tokenizer else None])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_model(name: str, option: str, client: Client, revision: str | None,
               tokenizer: LocalTokenizer | None,
               models: dict[str, dict[str, Any]] | None,
               score_concurrency: int | None = None) -> OpenAIBackend:
    """One served model, checked against the server's list."""
    check_served(name, option, client, models)
    info = ModelInfo(name, fingerprint(client, name, revision, tokenizer),
                     cacheable=revision is not None)
    return OpenAIBackend(client, name, info, tokenizer=tokenizer,
                         context_length=context_length(name, models),
                         score_concurrency=score_concurrency)


def warn_uncached(backends: list[OpenAIBackend], revision_options: list[str]) -> None:
    """One warning naming the models whose results are not cached, and how to cache them."""
    if not backends:
        return
    names = " and ".join(repr(b.model) for b in backends)
    warnings.warn(NotCachedWarning(
        f"results of {names} are not cached: a served model's name does not say which "
        f"weights answer; give {' and '.join(revision_options)} (a revision or weights "
        "digest) to cache them"), stacklevel=3)


class OpenAIEngine(Engine):
    """Models served over the OpenAI API (``probe.backends.openai``)."""

    name = "openai"

    def check_pair(self, base: str, candidate: str, options: LoadOptions) -> None:
        if options.server_url is None:
            raise UsageError(f"{opt('engine')} openai needs {opt('server_url')}: the URL of "
                             "the OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) "
                             f"that serves {base!r} and {candidate!r}")
        self._check_tokenizer(options)

    def _check_tokenizer(self, options: LoadOptions) -> None:
        ref = options.tokenizer
        if ref is None:
            return
        looks_like_path = ref.startswith((".", "/", "~")) or ref.count("/") > 1
        if looks_like_path and not Path(ref).expanduser().exists():
            raise UsageError(f"{opt('tokenizer')}: {ref!r} does not exist; give the directory "
                             "of the served model's tokenizer, or smollm2-135m")

    def load_pair(self, base: str, candidate: str, options: LoadOptions) -> ModelPair:
        self.check_pair(base, candidate, options)
        assert options.server_url is not None
        base_client = make_client(options.server_url, options)
        candidate_client = base_client
        if options.candidate_server_url not in (None, options.server_url):
            assert options.candidate_server_url is not None
            candidate_client = make_client(options.candidate_server_url, options)
        base_models = served_models(base_client)
        candidate_models = (base_models if candidate_client is base_client
                            else served_models(candidate_client))
        tokenizer = (load_tokenizer(options.tokenizer, options)
                     if options.tokenizer is not None else None)
        pair = ModelPair(
            load_model(base, opt("base"), base_client, options.base_revision, tokenizer,
                       base_models, options.score_concurrency),
            load_model(candidate, opt("candidate"), candidate_client,
                       options.candidate_revision, tokenizer, candidate_models,
                       options.score_concurrency))
        uncached = [(b, option) for b, option in ((pair.base, "base_revision"),
                                                  (pair.candidate, "candidate_revision"))
                    if isinstance(b, OpenAIBackend) and not b.info.cacheable]
        warn_uncached([b for b, _ in uncached], [opt(o) for _, o in uncached])
        return pair

    def load_backend(self, ref: str, options: LoadOptions) -> Backend:
        """One served model (a model that writes variants, a judge): cached only when
        ``options.base_revision`` gives its revision (a judge's ``revision``)."""
        if options.server_url is None:
            raise UsageError(f"{opt('engine')} openai needs {opt('server_url')} to reach "
                             f"{ref!r}")
        client = make_client(options.server_url, options)
        tokenizer = (load_tokenizer(options.tokenizer, options)
                     if options.tokenizer is not None else None)
        return load_model(ref, f"{opt('engine')} openai", client, options.base_revision,
                          tokenizer, served_models(client), options.score_concurrency)


ENGINE = OpenAIEngine()

"""Backends: turning model references from the command line into a ``ModelPair``.

A reference is ``scripted:<file.yaml>`` (the scripted test double) or anything the
chosen engine understands (``probe.backends.engines``): for hf and vllm,
``smollm2-135m`` (the embedded default model), a local directory, a hub id, and for
the candidate a peft adapter directory; for openai, a model name on the server. An
engine's code is imported on first use, so collection never imports torch.

The contract (``probe.backends.base``: ``Backend``, ``Prompt``, ``Completion``, the
settings and ``LoadOptions``) is importable from here too.
"""

from __future__ import annotations

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    LoadOptions,
    ModelInfo,
    ModelPair,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.backends.engines import (
    ENGINES,
    SCRIPTED_PREFIX,
    Engine,
    engine_for,
    is_scripted,
    scripted_path,
)
from probe.options import opt


def check_models(base: str, candidate: str, options: LoadOptions | None = None) -> None:
    """Cheap checks of both references under the engine ``options`` choose (a local path
    or scripted file must exist, the references must suit the engine), before any
    heavy work; ``UsageError`` otherwise."""
    options = options if options is not None else LoadOptions()
    if options.engine == "auto":
        # A missing file is the first thing to hear of, even in a mixed pair.
        for ref, name in ((base, "base"), (candidate, "candidate")):
            engine_for(options, ref).check_ref(ref, opt(name), options)
    engine_for(options, base, candidate).check_pair(base, candidate, options)


def load_pair(base: str, candidate: str, options: LoadOptions) -> ModelPair:
    """Load the base and the candidate with the engine ``options`` choose (an adapter
    candidate shares the base's weights where the engine can)."""
    return engine_for(options, base, candidate).load_pair(base, candidate, options)


def load_backend(ref: str, options: LoadOptions) -> Backend:
    """Load one model with the engine ``options`` choose."""
    return engine_for(options, ref).load_backend(ref, options)


__all__ = ["ENGINES", "SCRIPTED_PREFIX", "Backend", "Completion", "Engine",
           "GenerationSettings", "LoadOptions", "ModelInfo", "ModelPair", "Prompt",
           "SamplingSettings", "ScoreRequest", "check_models", "engine_for", "is_scripted",
           "load_backend", "load_pair", "scripted_path"]

"""The entry points: one model as a backend, or a base and candidate pair."""

from __future__ import annotations

from probe.backends.base import LoadOptions, ModelPair
from probe.backends.hf.adapters import adapter_pair
from probe.backends.hf.backend import HFBackend
from probe.backends.hf.compat import check_pair
from probe.backends.hf.integrity import check_files
from probe.backends.hf.model import load_model, make_backend
from probe.backends.hf.options import runtime
from probe.backends.hf.refs import resolve_model_ref
from probe.errors import ModelLoadError
from probe.options import opt


def load_backend(ref: str, options: LoadOptions) -> HFBackend:
    """One full model as a backend (an adapter needs its base: use ``load_pair``)."""
    resolved = resolve_model_ref(ref)
    if resolved.kind == "adapter":
        raise ModelLoadError(f"{ref!r} is a peft adapter; load it as the candidate together "
                             "with its base model")
    check_files(resolved, options)  # a damaged file is one line naming it, not a traceback
    device, dtype = runtime(options)
    return make_backend(load_model(resolved, options, device, dtype), options, name=ref)


def load_pair(base_ref: str, candidate_ref: str, options: LoadOptions) -> ModelPair:
    """Load base and candidate; an adapter candidate shares the base's weights."""
    base = resolve_model_ref(base_ref)
    if base.kind == "adapter":
        raise ModelLoadError(f"{opt('base')} {base_ref!r} is a peft adapter; give the model "
                             f"it was trained on as {opt('base')} and the adapter as "
                             f"{opt('candidate')}")
    candidate = resolve_model_ref(candidate_ref)
    # Damaged files first (exit 3, naming the file), then whether the pair fits (exit 4):
    # the pair check reads the adapter's safetensors header, and both read configs.
    check_files(base, options)
    check_files(candidate, options)
    check_pair(base, candidate, options)  # a wrong pair fails before any weights load
    device, dtype = runtime(options)
    base_loaded = load_model(base, options, device, dtype)
    if candidate.kind == "adapter":
        return adapter_pair(base_loaded, candidate, options)
    if (candidate.kind, candidate.location, candidate.gguf_file) == (
            base.kind, base.location, base.gguf_file):
        candidate_loaded = base_loaded  # the same files: keep one copy in memory
    else:
        candidate_loaded = load_model(candidate, options, device, dtype, tokenizer_from=base_loaded)
    return ModelPair(make_backend(base_loaded, options, name=base_ref),
                     make_backend(candidate_loaded, options, name=candidate_ref))

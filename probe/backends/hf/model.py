"""Loading one full model (not an adapter) with its tokenizer, and wrapping it as a backend.

A backend's fingerprint is a sha256 over the content of the files that decide
its outputs (weights, config, adapter, tokenizer), the chat template and the
dtype, so results are cached by what was loaded, never by a name.

On a GPU (issue 13, docs/gpu.md) a model that does not fit one GPU is spread by
``device_map="auto"``, and every model loads with the attention kernel
``options.attention_for`` picks. What the fingerprint records of that: SDPA and
eager attention compute the same function in the same dtype, and differ from each
other by float rounding only, as a CPU and a GPU do (the device is not recorded
either): they share cache entries. FlashAttention-2 is a different kernel, picked
by what is installed on the machine rather than by the model, in half precision:
it is recorded (``attention``), so its completions never stand in for SDPA's. The
same holds for the shared-prefix paths: a model that could take them but runs on
the plain paths (on a GPU by default, ``kv.fast_paths_on``) records ``paths:
plain``. Neither key is written for a model on CPU with the defaults, so CPU
fingerprints are what they were.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions
from probe.backends.hf.attention import use_cpu_gqa
from probe.backends.hf.backend import HFBackend
from probe.backends.hf.batching import resolve_batch_size
from probe.backends.hf.files import (
    MODEL_CONFIG_FILES,
    TOKENIZER_FILES,
    check_not_pickle,
    files_dir,
    hash_files,
    state_dict_digest,
    weight_names,
)
from probe.backends.hf.kv import fast_paths_allowed, split_structure
from probe.backends.hf.options import attention_for_config, device_map
from probe.backends.hf.refs import ResolvedRef
from probe.errors import ModelLoadError
from probe.options import opt

# Bump when the fingerprint payload changes shape, so old cache entries stop matching.
FINGERPRINT_VERSION = 1
# The version of the code that turns a loaded model into outputs, per kind of output:
# bump one when a change makes that code return something else for the same inputs,
# even by float rounding (2: the shared-prefix paths, per-sample generators; 3: lanes
# for scoring, the vocabulary-sliced head, grouped-query attention on CPU). It is part
# of the fingerprint, so results cached by older code are recomputed, not mixed in.
OUTPUT_CODE_VERSIONS = {"generate": 3, "sample": 3, "score": 3}


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    # Bounded: a library's message may carry a long value from the file that failed.
    return lines[0].rstrip(". ")[:300] if lines else type(err).__name__


def load_error(resolved: ResolvedRef, what: str, err: BaseException) -> ModelLoadError:
    """A one-line ``ModelLoadError`` for ``what`` (model, adapter, ...) of ``resolved``."""
    reason = _first_line(err)
    if isinstance(err, KeyError):  # str(KeyError) is the bare key: say what it means
        reason = f"a file it reads lacks the key {reason}"
    message = f"cannot load {what} {resolved.ref!r}: {reason}"
    if "trust_remote_code" in str(err):
        message += (". It ships its own code: if you trust it, pass "
                    f"{opt('trust_remote_code')}")
    elif resolved.kind == "hub":
        message += (". Hub models are read from the local Hugging Face cache when offline: "
                    f"fetch it on a connected machine (hf download {resolved.ref}) or give a "
                    "local directory")
        if "safetensors" in str(err):
            message += f"; if it only has pickle-based weights, pass {opt('allow_pickle')}"
    return ModelLoadError(message)


# What the readers say about a damaged file (the checks in ``integrity`` come first and
# catch most; these cover hub models, pickles and GGUF files, whose insides we do not parse).
_PICKLE_DAMAGE = ("PytorchStreamReader", "zip archive", "Weights only load failed",
                  "pickle", "unpickl", "EOF")
_GGUF_DAMAGE = ("reshape", "buffer", "unpack", "dtype", "magic", "memmap", "mmap", "offset")


def damaged_error(resolved: ResolvedRef, err: BaseException) -> ModelLoadError | None:
    """One ``ModelLoadError`` line for a weights or tokenizer file that cannot be parsed, or
    ``None`` when ``err`` is not about a damaged file."""
    import pickle
    import struct

    text, name = str(err), type(err).__name__
    where = f"cannot load model {resolved.ref!r}"
    if name == "SafetensorError":
        return ModelLoadError(f"{where}: a safetensors file is damaged ({_first_line(err)})")
    if resolved.gguf_file and (isinstance(err, struct.error | EOFError | IndexError) or (
            isinstance(err, ValueError) and any(m in text for m in _GGUF_DAMAGE))):
        return ModelLoadError(f"{where}: {resolved.gguf_file} is a truncated or damaged GGUF "
                              "file")
    if isinstance(err, pickle.UnpicklingError | EOFError) or (
            isinstance(err, RuntimeError) and any(m in text for m in _PICKLE_DAMAGE)):
        return ModelLoadError(f"{where}: a pickle-based weights file (pytorch_model.bin) is not "
                              "a readable PyTorch checkpoint: truncated, damaged, or not made "
                              "by torch.save")
    return None


@dataclass
class Loaded:
    """One model in memory and the fingerprint inputs of what was read."""

    resolved: ResolvedRef
    model: Any
    tokenizer: Any
    model_files: dict[str, str]
    tokenizer_files: dict[str, str]
    dtype: str
    eos_ids: tuple[int, ...]
    attention: str | None = None  # the attention implementation it runs with
    spread: bool = False  # placed over several devices by device_map="auto"


def load_tokenizer(resolved: ResolvedRef, options: LoadOptions) -> tuple[Any, dict[str, str]]:
    """The tokenizer of ``resolved`` and the hashes of its files (for the fingerprint);
    shared with the vllm engine, which tokenizes with it."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": resolved.local,
                              "trust_remote_code": options.trust_remote_code}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, **kwargs)
    except Exception as err:  # tokenizers' own parse errors are plain Exceptions
        damaged = damaged_error(resolved, err)
        raise (damaged or load_error(resolved, "the tokenizer of", err)) from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(f"the tokenizer of {resolved.ref!r} has neither a pad nor an "
                                 "eos token, so batches cannot be padded")
        tokenizer.pad_token = tokenizer.eos_token
    # Decoder-only models continue from the last position: padding must go on the left.
    tokenizer.padding_side = "left"
    if resolved.gguf_file:  # the vocabulary lives inside the GGUF file, hashed as weights
        return tokenizer, {}
    directory = files_dir(resolved)
    return tokenizer, (hash_files(directory, TOKENIZER_FILES) if directory else {})


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    # Instruct models often end turns with a token that only generation_config lists
    # (Llama 3's <|eot_id|>), so collect both sources.
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    return tuple(sorted(ids))


def _pin_greedy(model: Any, tokenizer: Any, eos_ids: tuple[int, ...]) -> None:
    """Replace the checkpoint's generation defaults with plain greedy decoding.

    ``generate`` fills every unset option from ``model.generation_config``, so a
    checkpoint's ``repetition_penalty`` or ``min_new_tokens`` would silently change
    what "greedy" means from one model to the next.
    """
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=list(eos_ids), pad_token_id=tokenizer.pad_token_id,
        bos_token_id=getattr(model.generation_config, "bos_token_id", None))


@contextmanager
def _no_loading_bars() -> Iterator[None]:
    """transformers' "Loading weights" bar, off while one model loads: a run loads up to
    three models, and the bars would bury the report in a CI log."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _config(resolved: ResolvedRef, options: LoadOptions) -> Any:
    """The model's config, or ``None`` when it cannot be read here (``from_pretrained``
    then reports why, in its own words)."""
    from transformers import AutoConfig

    kwargs: dict[str, Any] = {"local_files_only": resolved.local,
                              "trust_remote_code": options.trust_remote_code}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    try:
        return AutoConfig.from_pretrained(resolved.location, **kwargs)
    except Exception:  # any failure here is reported by the real load below
        return None


def load_model(resolved: ResolvedRef, options: LoadOptions, device: str, dtype: str,
               tokenizer_from: Loaded | None = None) -> Loaded:
    """Load one full model (not an adapter) with its tokenizer, on ``device`` or, when it
    does not fit one GPU, spread over the GPUs (``options.device_map``)."""
    import torch
    from transformers import AutoModelForCausalLM

    if resolved.kind == "model":
        check_not_pickle(resolved.ref, Path(resolved.location), options)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype), "local_files_only": resolved.local,
                              "trust_remote_code": options.trust_remote_code}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    elif not options.allow_pickle:
        kwargs["use_safetensors"] = True
    config = _config(resolved, options)
    placement = None
    if config is not None:
        attention = attention_for_config(config, device.split(":")[0], dtype)
        if attention is not None:
            kwargs["attn_implementation"] = attention
        placement = device_map(options, device, config, dtype)
        if placement is not None:
            kwargs["device_map"] = placement
    try:
        with _no_loading_bars():
            model: Any = AutoModelForCausalLM.from_pretrained(resolved.location, **kwargs)
    except Exception as err:
        # One line, never a traceback: "from None" keeps the library's frames out of it.
        damaged = damaged_error(resolved, err)
        if damaged is not None:
            raise damaged from None
        if isinstance(err, OSError | ValueError | KeyError | RuntimeError | ImportError):
            raise load_error(resolved, "model", err) from None
        if not options.trust_remote_code:
            raise
        # The model's own code (trusted on request) may fail in any way at all.
        raise load_error(resolved, "model (its own code failed)", err) from None
    if placement is None:  # a spread model is already where accelerate put each layer
        model.to(device)
    model.eval()
    attention = getattr(model.config, "_attn_implementation", None)
    use_cpu_gqa(model)

    # Located after loading: a hub model is only in the cache once from_pretrained ran.
    directory = files_dir(resolved)
    if resolved.gguf_file:
        model_files = hash_files(Path(resolved.location), [resolved.gguf_file])
    elif directory is not None:
        names = [*weight_names(directory, options.allow_pickle), *MODEL_CONFIG_FILES]
        model_files = hash_files(directory, names)
    else:
        model_files = {"<state_dict>": state_dict_digest(model)}

    own_tokenizer = resolved.kind != "model" or any(
        (Path(resolved.location) / name).is_file() for name in TOKENIZER_FILES)
    if own_tokenizer or tokenizer_from is None:
        tokenizer, tokenizer_files = load_tokenizer(resolved, options)
    else:  # a bare checkpoint (weights only): it shares the base's vocabulary
        tokenizer, tokenizer_files = tokenizer_from.tokenizer, tokenizer_from.tokenizer_files
    eos_ids = _eos_ids(model, tokenizer)
    _pin_greedy(model, tokenizer, eos_ids)
    return Loaded(resolved, model, tokenizer, model_files, tokenizer_files, dtype, eos_ids,
                  attention=attention, spread=placement is not None)


def _fingerprint(loaded: Loaded, adapter_files: dict[str, str] | None, *,
                 plain_paths: bool = False) -> str:
    payload: dict[str, Any] = {
        "version": FINGERPRINT_VERSION, "code": OUTPUT_CODE_VERSIONS,
        "model": loaded.model_files, "tokenizer": loaded.tokenizer_files,
        "adapter": adapter_files,
        "chat_template": getattr(loaded.tokenizer, "chat_template", None),
        "dtype": loaded.dtype}
    # Only what changes outputs beyond float rounding of the same computation (module doc).
    if loaded.attention == "flash_attention_2":
        payload["attention"] = loaded.attention
    if plain_paths:
        payload["paths"] = "plain"
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def make_backend(loaded: Loaded, options: LoadOptions, *, name: str, model: Any = None,
                 adapter_files: dict[str, str] | None = None,
                 adapter_disabled: bool = False) -> HFBackend:
    """An ``HFBackend`` over ``loaded`` (or over ``model``, a peft wrapper of it), with
    the fingerprint of what was read plus ``adapter_files``."""
    model = loaded.model if model is None else model
    # The backend asks kv.split_model on its first call; the same rule decides here.
    plain = split_structure(model) is not None and not fast_paths_allowed(model)
    return HFBackend(model, loaded.tokenizer, name=name,
                     fingerprint=_fingerprint(loaded, adapter_files, plain_paths=plain),
                     batch_size=resolve_batch_size(options.batch_size, model),
                     adapter_disabled=adapter_disabled, eos_token_ids=loaded.eos_ids)

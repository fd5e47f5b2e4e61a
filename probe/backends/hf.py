"""The Hugging Face backend: causal LMs from transformers, adapters from peft.

A model reference is resolved by ``resolve_model_ref``: ``smollm2-135m`` (the
embedded default model), a local directory with ``config.json``, a local
``.gguf`` file, a peft adapter directory (``adapter_config.json``; candidate
only) or a hub id (``org/name``), which goes through the normal hub machinery and
so is read from the local Hugging Face cache when offline.

For an adapter the base is loaded once and wrapped by peft; the base view runs
inside ``disable_adapter()`` and the candidate view with the adapter on, so one
set of weights serves both (DESIGN.md, "Scale"). The two views share one module,
so they must not generate concurrently from different threads.

A backend's fingerprint is a sha256 over the content of the files that decide
its outputs (weights, config, adapter, tokenizer), the chat template and the
dtype, so results are cached by what was loaded, never by a name.

torch, transformers and peft are imported inside functions only: importing this
module must stay cheap, because the pytest plugin imports it during collection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from probe.backends.base import Backend, GenerationSettings, ModelInfo, ModelPair
from probe.backends.smollm2 import NAMES as SMOLLM2_NAMES
from probe.backends.smollm2 import ensure_smollm2
from probe.errors import BackendError, ModelLoadError, UsageError
from probe.operators.base import Prompt

# Bump when the fingerprint payload changes shape, so old cache entries stop matching.
FINGERPRINT_VERSION = 1

DTYPE_NAMES = {"auto": "auto", "float32": "float32", "fp32": "float32",
               "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16"}

# Only the files from_pretrained reads for the weights: a trainer checkpoint directory
# also holds optimizer.pt, rng_state.pth and training_args.bin, which must neither be
# hashed (slow) nor change the fingerprint (they do not change outputs).
_SAFE_WEIGHTS = re.compile(r"model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json")
_PICKLE_WEIGHTS = re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json")
_MODEL_CONFIG_FILES = ("config.json",)  # generation_config.json is ignored, see _pin_greedy
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
                    "tokenizer.model", "spiece.model", "chat_template.jinja",
                    "chat_template.json")
# Legacy single-name ids ("gpt2") and org/name ids.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")

RefKind = Literal["model", "gguf", "adapter", "hub"]


@dataclass(frozen=True)
class LoadOptions:
    """How models are loaded; mirrors the ``--probe-*`` options.

    ``device="auto"`` is CUDA when available, else CPU. ``dtype="auto"`` is float32 on
    CPU and bfloat16 on a CUDA device that supports it.
    """

    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    batch_size: int = 16

    def __post_init__(self) -> None:
        # Validated here, before any weights are read, so a typo costs nothing.
        if self.dtype.strip().lower() not in DTYPE_NAMES:
            raise UsageError(f"--probe-dtype: unknown dtype {self.dtype!r}; choose one of "
                             f"{', '.join(DTYPE_NAMES)}")
        if self.batch_size < 1:
            raise UsageError(f"--probe-batch-size must be a positive integer, not "
                             f"{self.batch_size}")
        if not self.device.strip():
            raise UsageError("--probe-device must not be empty; use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class ResolvedRef:
    """Where a model reference points.

    ``ref`` is what the user wrote (used as the report name); ``location`` is what
    ``from_pretrained`` gets: a local directory, or the hub id for ``kind="hub"``;
    ``gguf_file`` is the file name inside ``location`` for ``kind="gguf"``.
    """

    ref: str
    kind: RefKind
    location: str
    gguf_file: str | None = None

    @property
    def local(self) -> bool:
        """Whether every file is on disk already (then no network call is allowed)."""
        return self.kind != "hub"


def _looks_like_path(ref: str) -> bool:
    # One slash is ambiguous with a hub id ("org/name"); these forms are not.
    return (ref.startswith((".", "/", "~")) or ref.endswith(".gguf") or ref.count("/") > 1
            or (os.sep != "/" and os.sep in ref))


def _cached_hub_file(repo_id: str, filename: str) -> Path | None:
    """The file from the local Hugging Face cache, without any network call."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


def resolve_model_ref(ref: str) -> ResolvedRef:
    """Decide what ``ref`` names; raises ``ModelLoadError`` for a path that is not there."""
    if ref.strip().lower() in SMOLLM2_NAMES:
        return ResolvedRef(ref, "model", str(ensure_smollm2()))
    path = Path(ref).expanduser()
    if path.exists():
        return _resolve_local(ref, path.resolve())
    if _looks_like_path(ref):
        raise ModelLoadError(f"model path {ref!r} does not exist")
    if not _HUB_ID.fullmatch(ref):
        raise ModelLoadError(f"{ref!r} is neither a local path nor a hub id (org/name); "
                             f"the embedded model is {SMOLLM2_NAMES[0]!r}")
    adapter_config = _cached_hub_file(ref, "adapter_config.json")
    if adapter_config is not None:
        # A cached hub adapter is loaded like a local adapter directory.
        return ResolvedRef(ref, "adapter", str(adapter_config.parent))
    return ResolvedRef(ref, "hub", ref)


def _resolve_local(ref: str, path: Path) -> ResolvedRef:
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ResolvedRef(ref, "gguf", str(path.parent), path.name)
        raise ModelLoadError(f"model path {ref!r} is a file; give a model directory "
                             "(with config.json), a peft adapter directory or a .gguf file")
    if (path / "adapter_config.json").is_file():
        return ResolvedRef(ref, "adapter", str(path))
    if (path / "config.json").is_file():
        return ResolvedRef(ref, "model", str(path))
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    hint = (f"; for a GGUF model give the file itself, e.g. {str(path / ggufs[0])!r}"
            if ggufs else "")
    raise ModelLoadError(f"model directory {ref!r} has neither config.json (a model) nor "
                         f"adapter_config.json (a peft adapter){hint}")


# --- loading ---------------------------------------------------------------------------


def _runtime(options: LoadOptions) -> tuple[str, str]:
    """The concrete device and dtype name for ``options`` on this machine."""
    import torch

    name = options.device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--probe-device: {options.device!r} is not a device; use auto, cpu, "
                         "cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--probe-device {options.device}: CUDA is not available on this "
                         "machine; use --probe-device cpu")
    dtype = DTYPE_NAMES[options.dtype.strip().lower()]
    if dtype == "auto":
        # fp32 unless bf16 is native: fp16 overflows on some models (a measurement tool
        # should not add its own numerical noise), and CPUs gain little from half precision.
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype = "bfloat16" if bf16 else "float32"
    return str(device), dtype


# Process-wide: base and candidate often share files, and a session may load the same
# model twice. Keyed by size and mtime too, so a file overwritten in place is hashed again.
_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_MEMO:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASH_MEMO[key] = digest.hexdigest()
    return _HASH_MEMO[key]


def _hash_files(directory: Path, names: Iterable[str]) -> dict[str, str]:
    return {name: _file_sha256(directory / name) for name in sorted(set(names))
            if (directory / name).is_file()}


def _weight_names(directory: Path, allow_pickle: bool) -> list[str]:
    """The weight files from_pretrained will read from ``directory``."""
    names = [p.name for p in directory.iterdir()]
    safe = [n for n in names if _SAFE_WEIGHTS.fullmatch(n)]
    if safe or not allow_pickle:  # transformers prefers safetensors when both exist
        return safe
    return [n for n in names if _PICKLE_WEIGHTS.fullmatch(n)]


def _check_not_pickle(ref: str, directory: Path, options: LoadOptions) -> None:
    """Refuse pickle-only weights up front: unpickling can run arbitrary code."""
    if options.allow_pickle:
        return
    names = [p.name for p in directory.iterdir()]
    has_safe = any(_SAFE_WEIGHTS.fullmatch(n) or n == "adapter_model.safetensors" for n in names)
    pickled = [n for n in names if _PICKLE_WEIGHTS.fullmatch(n) or n == "adapter_model.bin"]
    if pickled and not has_safe:
        raise ModelLoadError(
            f"{ref!r} has only pickle-based weights ({pickled[0]}), and loading a pickle can "
            "run arbitrary code. Convert them to safetensors, or, if you trust the files, "
            "pass --probe-allow-pickle")


def _load_error(resolved: ResolvedRef, what: str, err: BaseException) -> ModelLoadError:
    lines = str(err).strip().splitlines()
    reason = lines[0].rstrip(". ") if lines else type(err).__name__
    message = f"cannot load {what} {resolved.ref!r}: {reason}"
    if "trust_remote_code" in str(err):
        message += ". It ships its own code: if you trust it, pass --probe-trust-remote-code"
    elif resolved.kind == "hub":
        message += (". Hub models are read from the local Hugging Face cache when offline: "
                    f"fetch it on a connected machine (hf download {resolved.ref}) or give a "
                    "local directory")
        if "safetensors" in str(err):
            message += "; if it only has pickle-based weights, pass --probe-allow-pickle"
    return ModelLoadError(message)


@dataclass
class _Loaded:
    """One model in memory and the fingerprint inputs of what was read."""

    resolved: ResolvedRef
    model: Any
    tokenizer: Any
    model_files: dict[str, str]
    tokenizer_files: dict[str, str]
    dtype: str
    eos_ids: tuple[int, ...]


def _load_tokenizer(resolved: ResolvedRef, options: LoadOptions) -> tuple[Any, dict[str, str]]:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": resolved.local,
                              "trust_remote_code": options.trust_remote_code}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        raise _load_error(resolved, "the tokenizer of", err) from err
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(f"the tokenizer of {resolved.ref!r} has neither a pad nor an "
                                 "eos token, so batches cannot be padded")
        tokenizer.pad_token = tokenizer.eos_token
    # Decoder-only models continue from the last position: padding must go on the left.
    tokenizer.padding_side = "left"
    if resolved.gguf_file:  # the vocabulary lives inside the GGUF file, hashed as weights
        return tokenizer, {}
    directory = _files_dir(resolved)
    return tokenizer, (_hash_files(directory, _TOKENIZER_FILES) if directory else {})


def _files_dir(resolved: ResolvedRef) -> Path | None:
    """The directory holding the model's files (the cached snapshot for a hub id)."""
    if resolved.kind != "hub":
        return Path(resolved.location)
    config = _cached_hub_file(resolved.location, "config.json")
    return config.parent if config is not None else None


def _state_dict_digest(model: Any) -> str:
    """Hash of the weights in memory, for a hub model whose files cannot be located."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(raw.numpy().tobytes())
    return digest.hexdigest()


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


def _load(resolved: ResolvedRef, options: LoadOptions, device: str, dtype: str,
          tokenizer_from: _Loaded | None = None) -> _Loaded:
    """Load one full model (not an adapter) with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    if resolved.kind == "model":
        _check_not_pickle(resolved.ref, Path(resolved.location), options)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype), "local_files_only": resolved.local,
                              "trust_remote_code": options.trust_remote_code}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    elif not options.allow_pickle:
        kwargs["use_safetensors"] = True
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(resolved.location, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
        raise _load_error(resolved, "model", err) from err
    model.to(device)
    model.eval()

    # Located after loading: a hub model is only in the cache once from_pretrained ran.
    directory = _files_dir(resolved)
    if resolved.gguf_file:
        model_files = _hash_files(Path(resolved.location), [resolved.gguf_file])
    elif directory is not None:
        names = [*_weight_names(directory, options.allow_pickle), *_MODEL_CONFIG_FILES]
        model_files = _hash_files(directory, names)
    else:
        model_files = {"<state_dict>": _state_dict_digest(model)}

    own_tokenizer = resolved.kind != "model" or any(
        (Path(resolved.location) / name).is_file() for name in _TOKENIZER_FILES)
    if own_tokenizer or tokenizer_from is None:
        tokenizer, tokenizer_files = _load_tokenizer(resolved, options)
    else:  # a bare checkpoint (weights only): it shares the base's vocabulary
        tokenizer, tokenizer_files = tokenizer_from.tokenizer, tokenizer_from.tokenizer_files
    eos_ids = _eos_ids(model, tokenizer)
    _pin_greedy(model, tokenizer, eos_ids)
    return _Loaded(resolved, model, tokenizer, model_files, tokenizer_files, dtype, eos_ids)


def _fingerprint(loaded: _Loaded, adapter_files: dict[str, str] | None) -> str:
    payload = {"version": FINGERPRINT_VERSION, "model": loaded.model_files,
               "tokenizer": loaded.tokenizer_files, "adapter": adapter_files,
               "chat_template": getattr(loaded.tokenizer, "chat_template", None),
               "dtype": loaded.dtype}
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _backend(loaded: _Loaded, options: LoadOptions, *, name: str, model: Any = None,
             adapter_files: dict[str, str] | None = None,
             adapter_disabled: bool = False) -> HFBackend:
    return HFBackend(loaded.model if model is None else model, loaded.tokenizer, name=name,
                     fingerprint=_fingerprint(loaded, adapter_files),
                     batch_size=options.batch_size, adapter_disabled=adapter_disabled,
                     eos_token_ids=loaded.eos_ids)


def load_backend(ref: str, options: LoadOptions) -> HFBackend:
    """One full model as a backend (an adapter needs its base: use ``load_pair``)."""
    resolved = resolve_model_ref(ref)
    if resolved.kind == "adapter":
        raise ModelLoadError(f"{ref!r} is a peft adapter; load it as the candidate together "
                             "with its base model")
    device, dtype = _runtime(options)
    return _backend(_load(resolved, options, device, dtype), options, name=ref)


def load_pair(base_ref: str, candidate_ref: str, options: LoadOptions) -> ModelPair:
    """Load base and candidate; an adapter candidate shares the base's weights."""
    base = resolve_model_ref(base_ref)
    if base.kind == "adapter":
        raise ModelLoadError(f"--probe-base {base_ref!r} is a peft adapter; give the model it "
                             "was trained on as --probe-base and the adapter as "
                             "--probe-candidate")
    candidate = resolve_model_ref(candidate_ref)
    device, dtype = _runtime(options)
    base_loaded = _load(base, options, device, dtype)
    if candidate.kind == "adapter":
        return _adapter_pair(base_loaded, candidate, options)
    if (candidate.kind, candidate.location, candidate.gguf_file) == (
            base.kind, base.location, base.gguf_file):
        candidate_loaded = base_loaded  # the same files: keep one copy in memory
    else:
        candidate_loaded = _load(candidate, options, device, dtype, tokenizer_from=base_loaded)
    return ModelPair(_backend(base_loaded, options, name=base_ref),
                     _backend(candidate_loaded, options, name=candidate_ref))


# --- adapters --------------------------------------------------------------------------


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", Path(name.rstrip("/\\")).name.lower())


def _names_agree(claimed: str | None, names: Iterable[str]) -> bool:
    """Loose: ``SmolLM2-135M-Instruct`` agrees with ``smollm2-135m`` and with a cache dir.

    Only a hint: the same model is often named by a hub id on one machine and by a
    local path on another, so the shape check is what really decides.
    """
    wanted = _squash(claimed or "")
    if not wanted:
        return True
    # Prefixes, not substrings: "model" must not agree with "other-model".
    return any(other and (wanted.startswith(other) or other.startswith(wanted))
               for other in map(_squash, names))


# torch's load_state_dict message, which peft passes on.
_SIZE_MISMATCH = re.compile(r"size mismatch for (?:base_model\.model\.)?(\S+): copying a param "
                            r"with shape torch\.Size\(\[([^\]]*)\]\) from checkpoint, the "
                            r"shape in current model is torch\.Size\(\[([^\]]*)\]\)")


def _check_target_modules(config: Any, model: Any, adapter_ref: str, claimed: str) -> None:
    """Fail clearly when none of the adapter's target modules exist in the base.

    Mirrors peft's own rule (at least one target must match) with a message that
    says which model the adapter was made for.
    """
    targets = getattr(config, "target_modules", None)
    if not targets or targets == "all-linear":
        return
    names = [name for name, _ in model.named_modules()]
    if isinstance(targets, str):
        found = any(re.fullmatch(targets, name) for name in names)
    else:
        found = any(name == t or name.endswith("." + t) for t in targets for name in names)
    if not found:
        shown = targets if isinstance(targets, str) else sorted(targets)
        raise ModelLoadError(
            f"adapter {adapter_ref!r} targets modules {shown} that the base model does not "
            f"have: it was made for a different architecture ({claimed or 'unknown base'})")


def _adapter_pair(base: _Loaded, adapter: ResolvedRef, options: LoadOptions) -> ModelPair:
    from peft import PeftConfig, PeftModel

    directory = Path(adapter.location)
    _check_not_pickle(adapter.ref, directory, options)
    try:
        config = PeftConfig.from_pretrained(str(directory))
    except (OSError, ValueError, TypeError) as err:
        raise _load_error(adapter, "adapter", err) from err
    claimed = str(getattr(config, "base_model_name_or_path", None) or "")
    _check_target_modules(config, base.model, adapter.ref, claimed)
    try:
        with warnings.catch_warnings():
            # peft 0.21 calls a transformers 5 API that warns it is deprecated; the
            # warning is about their pairing, not anything a user can act on.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated",
                                    FutureWarning)
            wrapped = PeftModel.from_pretrained(base.model, str(directory), is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as err:
        mismatch = _SIZE_MISMATCH.search(str(err))
        if mismatch is None:
            raise _load_error(adapter, "adapter", err) from err
        param, theirs, ours = mismatch.groups()
        origin = (f"its adapter_config.json names {claimed!r}; pass that model as --probe-base"
                  if claimed else "its adapter_config.json does not say which")
        raise ModelLoadError(
            f"adapter {adapter.ref!r} does not fit base model {base.resolved.ref!r}: "
            f"{param} has shape [{theirs}] in the adapter but [{ours}] in the base, so it was "
            f"trained on a different base model ({origin})") from err
    if not _names_agree(claimed, [base.resolved.ref, base.resolved.location]):
        warnings.warn(f"adapter {adapter.ref!r} names {claimed!r} as its base, but the base is "
                      f"{base.resolved.ref!r}; the shapes fit, so it was applied anyway",
                      UserWarning, stacklevel=3)
    device = next(base.model.parameters()).device
    wrapped.to(device)
    wrapped.eval()
    adapter_files = _hash_files(directory, _ADAPTER_FILES)
    if not options.allow_pickle:
        adapter_files.pop("adapter_model.bin", None)  # peft reads the safetensors file
    return ModelPair(
        _backend(base, options, name=base.resolved.ref, model=wrapped, adapter_disabled=True),
        _backend(base, options, name=adapter.ref, model=wrapped, adapter_files=adapter_files))


# --- generation ------------------------------------------------------------------------


class HFBackend(Backend):
    """Greedy generation with a transformers causal LM (or one view of a peft model).

    ``adapter_disabled=True`` makes this the base view of a peft model: every call
    runs inside ``model.disable_adapter()``.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str, fingerprint: str,
                 batch_size: int = 16, adapter_disabled: bool = False,
                 eos_token_ids: Sequence[int] = ()) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.adapter_disabled = adapter_disabled
        eos = set(eos_token_ids)
        if not eos and tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        self.eos_token_ids = frozenset(eos)
        pad = tokenizer.pad_token_id
        if pad is None and not eos:
            raise ModelLoadError(f"the tokenizer of {name!r} has neither a pad nor an eos "
                                 "token, so batches cannot be padded")
        # Padded positions are masked out, so any id works; eos is the usual stand-in.
        self.pad_token_id: int = pad if pad is not None else min(eos)
        self._info = ModelInfo(name, fingerprint)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """The exact text sent to the model, and whether the tokenizer adds special tokens.

        The chat template already contains BOS and the like, so it is tokenized
        without adding them a second time.
        """
        if not (prompt.chat and getattr(self.tokenizer, "chat_template", None)):
            return prompt.text + prompt.prefill, True
        from jinja2 import TemplateError

        messages = [{"role": "user", "content": prompt.text}]
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)
        except (TemplateError, ValueError, TypeError) as err:
            raise BackendError(f"{self.info.name}: the chat template failed: {err}") from err
        return str(text) + prompt.prefill, False

    def _encode(self, prompt: Prompt) -> list[int]:
        text, add_special = self.render(prompt)
        ids = list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])
        if not ids:
            raise BackendError(f"{self.info.name}: prompt {prompt.text!r} tokenizes to nothing")
        return ids

    def _adapter_context(self) -> AbstractContextManager[Any]:
        if self.adapter_disabled:
            return self.model.disable_adapter()  # type: ignore[no-any-return]
        return nullcontext()

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[str]:
        import torch

        encoded = [self._encode(p) for p in prompts]
        # Similar lengths share a batch so little compute goes to padding; the stable
        # sort and index bookkeeping put the answers back in the caller's order.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        completions = [""] * len(prompts)
        with torch.inference_mode(), self._adapter_context():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                batch = self._generate_batch([encoded[i] for i in chunk], settings)
                for index, text in zip(chunk, batch, strict=True):
                    completions[index] = text
        return completions

    def _generate_batch(self, batch: list[list[int]], settings: GenerationSettings) -> list[str]:
        import torch
        from transformers import GenerationConfig

        width = max(len(ids) for ids in batch)
        pad_id = self.pad_token_id
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids):] = 1
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=settings.max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=pad_id, eos_token_id=sorted(self.eos_token_ids) or None)
        device = next(self.model.parameters()).device
        try:
            output = self.model.generate(input_ids=input_ids.to(device),
                                         attention_mask=attention_mask.to(device),
                                         generation_config=config)
        except RuntimeError as err:  # includes torch.OutOfMemoryError
            raise BackendError(f"{self.info.name}: generation failed: {err}. If memory ran "
                               f"out, lower --probe-batch-size (now {self.batch_size})") from err
        texts = []
        for row in output[:, width:].tolist():
            # generate pads finished rows; cut at the first eos so nothing after it counts.
            end = next((i for i, token in enumerate(row) if token in self.eos_token_ids),
                       len(row))
            texts.append(self.tokenizer.decode(row[:end], skip_special_tokens=True).rstrip())
        return texts

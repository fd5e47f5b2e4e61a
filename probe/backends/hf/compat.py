"""Whether a base and a candidate belong together, decided before any weights are loaded.

A peft adapter only means something on the base it was trained on, and a full
checkpoint only compares with the base if both read prompts with the same
vocabulary. Both are checked from small files (configs, tokenizers, the adapter's
safetensors header) and a weightless copy of the base on torch's ``meta`` device,
so a wrong pair costs a second, not a model load. The checks after loading in
``adapters`` stay as a second line (GGUF bases, pickle-only adapters).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions
from probe.backends.hf.files import TOKENIZER_FILES
from probe.backends.hf.refs import ResolvedRef
from probe.errors import ModelLoadError, ModelMismatchError
from probe.options import opt

_LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight")
_PEFT_PREFIX = "base_model.model."


def check_pair(base: ResolvedRef, candidate: ResolvedRef, options: LoadOptions) -> None:
    """Raise ``ModelMismatchError`` when ``candidate`` cannot be compared with ``base``."""
    if base.kind != "model":
        return  # GGUF and hub bases: config and tokenizer are not plain local files
    if candidate.kind == "adapter":
        _check_adapter(base, candidate, options)
    elif candidate.kind == "model" and candidate.location != base.location:
        _check_vocabulary(base, candidate, options)


def _adapter_shapes(directory: Path) -> dict[str, tuple[int, int]]:
    """``module -> (in_features, out_features)`` from the adapter's LoRA tensors."""
    path = directory / "adapter_model.safetensors"
    if not path.is_file():
        return {}  # pickle-only adapters are checked after loading, if allowed at all
    from safetensors import safe_open

    shapes: dict[str, dict[str, list[int]]] = {}
    try:
        with safe_open(str(path), "pt") as f:
            for key in f.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                for suffix in _LORA_SUFFIXES:
                    if key.endswith(suffix):
                        module = key[: -len(suffix)].removeprefix(_PEFT_PREFIX)
                        shapes.setdefault(module, {})[suffix] = list(
                            f.get_slice(key).get_shape())
    except Exception as err:  # SafetensorError; integrity.check_safetensors catches most first
        # A damaged file, not a wrong pair: exit 3, naming the file.
        raise ModelLoadError(f"{path}: damaged safetensors file ({type(err).__name__})") from None
    out = {}
    for module, pair in shapes.items():
        a, b = pair.get(".lora_A.weight"), pair.get(".lora_B.weight")
        if a and b and len(a) == 2 and len(b) == 2:
            out[module] = (a[1], b[0])  # A: [r, in], B: [out, r]
    return out


def _meta_model(base: ResolvedRef, options: LoadOptions) -> Any | None:
    """The base's architecture without weights, or ``None`` if it cannot be built."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(base.location, local_files_only=True,
                                            trust_remote_code=options.trust_remote_code)
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
                config, trust_remote_code=options.trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError):
        return None  # loading will report the real problem


def _check_adapter(base: ResolvedRef, adapter: ResolvedRef, options: LoadOptions) -> None:
    directory = Path(adapter.location)
    shapes = _adapter_shapes(directory)
    if not shapes:
        return
    model = _meta_model(base, options)
    if model is None:
        return
    modules = dict(model.named_modules())
    claimed = _claimed_base(directory)
    origin = (f"its adapter_config.json names {claimed!r}; pass that model as {opt('base')}"
              if claimed else "its adapter_config.json does not say which; pass the model "
              f"it was trained on as {opt('base')}")
    missing = [name for name in shapes if name not in modules]
    if len(missing) == len(shapes):
        raise ModelMismatchError(
            f"adapter {adapter.ref!r} does not fit base model {base.ref!r}: none of its "
            f"{len(shapes)} modules (e.g. {missing[0]}) exist in the base, so it was made for "
            f"another architecture ({origin})")
    for name, (fan_in, fan_out) in sorted(shapes.items()):
        module = modules.get(name)
        ours = (getattr(module, "in_features", None), getattr(module, "out_features", None))
        if module is not None and None not in ours and ours != (fan_in, fan_out):
            raise ModelMismatchError(
                f"adapter {adapter.ref!r} does not fit base model {base.ref!r}: {name} maps "
                f"{fan_in} -> {fan_out} features in the adapter but {ours[0]} -> {ours[1]} in "
                f"the base, so it was trained on a different base model ({origin})")


def _claimed_base(directory: Path) -> str:
    try:
        config = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(config.get("base_model_name_or_path") or "") if isinstance(config, dict) else ""


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def _check_vocabulary(base: ResolvedRef, candidate: ResolvedRef, options: LoadOptions) -> None:
    """A full checkpoint must read prompts as the base does: the same token ids."""
    cand_dir = Path(candidate.location)
    if not _has_tokenizer(cand_dir):
        # A bare checkpoint runs with the base's tokenizer: its embedding must fit it.
        sizes = [_vocab_size(Path(r.location)) for r in (base, candidate)]
        if None not in sizes and sizes[0] != sizes[1]:
            raise ModelMismatchError(
                f"{opt('candidate')} {candidate.ref!r} has no tokenizer of its own and a "
                f"vocabulary of {sizes[1]} tokens, but the base {base.ref!r} has {sizes[0]}: "
                "it was not fine-tuned from this base. Give the base it was trained from, or "
                "save the candidate's tokenizer beside its weights")
        return
    from transformers import AutoTokenizer

    vocabs = []
    for ref in (base, candidate):
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                ref.location, local_files_only=True, trust_remote_code=options.trust_remote_code)
        except (OSError, ValueError, KeyError):
            return  # loading will report the real problem
        vocabs.append(tokenizer.get_vocab())
    ours, theirs = vocabs
    if ours == theirs:
        return
    changed = sorted(set(ours.items()) ^ set(theirs.items()), key=lambda kv: kv[1])[:1]
    example = f"; e.g. token {changed[0][0]!r} differs" if changed else ""
    raise ModelMismatchError(
        f"the tokenizers of base {base.ref!r} ({len(ours)} tokens) and candidate "
        f"{candidate.ref!r} ({len(theirs)} tokens) differ{example}: the same prompt would be "
        "different input to each model, so their outputs do not compare. Use checkpoints "
        "of the same base model (a fine-tune keeps its base's tokenizer)")


def _vocab_size(directory: Path) -> int | None:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    size = config.get("vocab_size") if isinstance(config, dict) else None
    return size if isinstance(size, int) else None

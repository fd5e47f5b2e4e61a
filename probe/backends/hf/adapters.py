"""A peft adapter on its base: one set of weights serves both views of a pair.

For an adapter the base is loaded once and wrapped by peft; the base view runs
inside ``disable_adapter()`` and the candidate view with the adapter on, so one
set of weights serves both: a pair costs one model's memory. The two views share one module,
so they must not run concurrently from different threads.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions, ModelPair
from probe.backends.hf.files import ADAPTER_FILES, check_not_pickle, hash_files
from probe.backends.hf.model import Loaded, damaged_error, load_error, make_backend
from probe.backends.hf.refs import ResolvedRef
from probe.errors import ModelMismatchError
from probe.options import opt


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
        raise ModelMismatchError(
            f"adapter {adapter_ref!r} targets modules {shown} that the base model does not "
            f"have: it was made for a different architecture ({claimed or 'unknown base'})")


def adapter_pair(base: Loaded, adapter: ResolvedRef, options: LoadOptions) -> ModelPair:
    """``adapter`` on ``base``: one set of weights, the base side with the adapter off."""
    from peft import PeftConfig, PeftModel

    directory = Path(adapter.location)
    check_not_pickle(adapter.ref, directory, options)
    try:
        config = PeftConfig.from_pretrained(str(directory))
    except (OSError, ValueError, TypeError) as err:
        raise load_error(adapter, "adapter", err) from err
    claimed = str(getattr(config, "base_model_name_or_path", None) or "")
    _check_target_modules(config, base.model, adapter.ref, claimed)
    try:
        with warnings.catch_warnings():
            # peft 0.21 calls a transformers 5 API that warns it is deprecated; the
            # warning is about their pairing, not anything a user can act on.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated",
                                    FutureWarning)
            wrapped = PeftModel.from_pretrained(base.model, str(directory), is_trainable=False)
    except Exception as err:  # peft fails in many ways on a bad file; each is one line
        mismatch = _SIZE_MISMATCH.search(str(err))
        if mismatch is None:
            raise (damaged_error(adapter, err) or load_error(adapter, "adapter", err)) from None
        param, theirs, ours = mismatch.groups()
        origin = (f"its adapter_config.json names {claimed!r}; pass that model as {opt('base')}"
                  if claimed else "its adapter_config.json does not say which")
        raise ModelMismatchError(
            f"adapter {adapter.ref!r} does not fit base model {base.resolved.ref!r}: "
            f"{param} has shape [{theirs}] in the adapter but [{ours}] in the base, so it was "
            f"trained on a different base model ({origin})") from err
    if not _names_agree(claimed, [base.resolved.ref, base.resolved.location]):
        warnings.warn(f"adapter {adapter.ref!r} names {claimed!r} as its base, but the base is "
                      f"{base.resolved.ref!r}; the shapes fit, so it was applied anyway",
                      UserWarning, stacklevel=3)
    if not base.spread:  # a spread base: peft put each adapter layer by its base layer
        wrapped.to(next(base.model.parameters()).device)
    wrapped.eval()
    adapter_files = hash_files(directory, ADAPTER_FILES)
    if not options.allow_pickle:
        adapter_files.pop("adapter_model.bin", None)  # peft reads the safetensors file
    return ModelPair(
        make_backend(base, options, name=base.resolved.ref, model=wrapped, adapter_disabled=True),
        make_backend(base, options, name=adapter.ref, model=wrapped, adapter_files=adapter_files))

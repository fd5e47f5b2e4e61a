"""What a model reference names: a local model, a GGUF file, a peft adapter or a hub id.

A model reference is resolved by ``resolve_model_ref``: ``smollm2-135m`` (the
embedded default model), a local directory with ``config.json``, a local
``.gguf`` file, a peft adapter directory (``adapter_config.json``; candidate
only) or a hub id (``org/name``), which goes through the normal hub machinery and
so is read from the local Hugging Face cache when offline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from probe.backends.smollm2 import NAMES as SMOLLM2_NAMES
from probe.backends.smollm2 import ensure_smollm2
from probe.errors import ModelLoadError

# Legacy single-name ids ("gpt2") and org/name ids.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")

RefKind = Literal["model", "gguf", "adapter", "hub"]


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


def cached_hub_file(repo_id: str, filename: str) -> Path | None:
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
    adapter_config = cached_hub_file(ref, "adapter_config.json")
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

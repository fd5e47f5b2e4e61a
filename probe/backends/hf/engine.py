"""The ``hf`` engine: transformers models (and peft adapters) in this process."""

from __future__ import annotations

from pathlib import Path

from probe.backends.base import Backend, LoadOptions, ModelPair
from probe.backends.engines import Engine
from probe.errors import UsageError
from probe.options import opt


def check_local_ref(ref: str, option: str) -> None:
    """A reference that looks like a local path must exist (a hub id is checked on load)."""
    looks_like_path = ref.startswith((".", "/", "~")) or ref.endswith(".gguf") or (
        ref.count("/") > 1)
    if looks_like_path and not Path(ref).expanduser().exists():
        raise UsageError(f"{option}: model path {ref!r} does not exist. Give a local "
                         "directory, a .gguf file, a hub id (org/name) or 'smollm2-135m'")


def check_base_is_no_adapter(base: str) -> None:
    """An adapter given as the base is a swapped pair: say which goes where."""
    if (Path(base).expanduser() / "adapter_config.json").is_file():
        raise UsageError(f"{opt('base')} {base!r} is a peft adapter; give the model it was "
                         f"trained on as {opt('base')} and the adapter as {opt('candidate')}")


class HFEngine(Engine):
    """transformers in eager mode: every model transformers loads, adapters sharing the
    base's weights (``probe.backends.hf``)."""

    name = "hf"

    def check_ref(self, ref: str, option: str, options: LoadOptions) -> None:
        check_local_ref(ref, option)

    def check_pair(self, base: str, candidate: str, options: LoadOptions) -> None:
        super().check_pair(base, candidate, options)
        check_base_is_no_adapter(base)

    def load_pair(self, base: str, candidate: str, options: LoadOptions) -> ModelPair:
        from probe.extras import require

        require("hf", "the Hugging Face backend")  # one line, not a traceback, without torch
        from probe.backends.hf.loading import load_pair

        return load_pair(base, candidate, options)

    def load_backend(self, ref: str, options: LoadOptions) -> Backend:
        from probe.extras import require

        require("hf", "the Hugging Face backend")
        from probe.backends.hf.loading import load_backend

        return load_backend(ref, options)


ENGINE = HFEngine()

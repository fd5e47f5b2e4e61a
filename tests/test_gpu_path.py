"""The GPU-ready HF path (issue 13, item 6), proved on CPU where it can be.

The decisions (spread a model over GPUs or not, which dtype, which attention kernel,
whether the shared-prefix paths run) are pure functions tested here with made-up
device facts. What runs for real on CPU: a load with ``device_map="auto"`` (accelerate
places everything on the CPU here), the attention implementation the loader passes,
and the plain paths that a GPU takes by default giving the fast paths' greedy
completions. docs/gpu.md says what has not run on a GPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hf_fixtures import CPU, PROMPTS, SETTINGS

from probe.backends import LoadOptions
from probe.backends.base import GenerationSettings, ScoreRequest
from probe.backends.hf import HFBackend, load_backend, load_pair, resolve_model_ref
from probe.backends.hf import model as hf_model
from probe.backends.hf.batching import auto_batch_size, resolve_batch_size
from probe.backends.hf.kv import (
    FAST_PATHS_ENV,
    fast_paths_allowed,
    fast_paths_on,
    split_model,
    split_structure,
)
from probe.backends.hf.options import (
    FIT,
    attention_for,
    attention_for_config,
    device_map_for,
    runtime,
    weight_bytes,
)
from probe.errors import UsageError

pytest_plugins = ["hf_fixtures"]
GIB = 1024**3
REPO = Path(__file__).resolve().parents[1]


# --- device_map ---------------------------------------------------------------------------


def test_a_model_that_fits_one_gpu_stays_on_it() -> None:
    assert device_map_for("cuda:0", "auto", 3 * GIB, [80 * GIB], distributed=False) is None
    # More GPUs change nothing for a model that fits: spreading only adds transfers.
    assert device_map_for("cuda:0", "auto", 3 * GIB, [80 * GIB] * 8, distributed=False) is None
    # Right at the limit still fits; just past it does not.
    limit = int(FIT * 40 * GIB)
    assert device_map_for("cuda:0", "cuda", limit, [40 * GIB], distributed=False) is None
    assert device_map_for("cuda:0", "cuda", limit + 1, [40 * GIB], distributed=False) == "auto"


def test_a_model_larger_than_one_gpu_is_spread() -> None:
    seventy_b = 140 * GIB  # 70B parameters in bf16
    assert device_map_for("cuda:0", "auto", seventy_b, [80 * GIB] * 4,
                          distributed=False) == "auto"
    # One small GPU: accelerate offloads the rest to CPU RAM rather than running out.
    assert device_map_for("cuda:0", "auto", seventy_b, [24 * GIB], distributed=False) == "auto"
    # The free memory of the GPU chosen counts, not the card's size.
    assert device_map_for("cuda:0", "auto", 10 * GIB, [5 * GIB, 80 * GIB],
                          distributed=False) == "auto"


def test_never_spread_on_cpu_a_named_gpu_or_under_torchrun() -> None:
    huge = 1000 * GIB
    assert device_map_for("cpu", "auto", huge, [], distributed=False) is None
    assert device_map_for("cpu", "cpu", huge, [80 * GIB], distributed=False) is None
    assert device_map_for("cuda:1", "cuda:1", huge, [80 * GIB] * 2, distributed=False) is None
    assert device_map_for("cuda:1", "auto", huge, [80 * GIB] * 2, distributed=True) is None


def test_weight_bytes_counts_the_parameters_without_allocating(tiny: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny["model"])
    real = AutoModelForCausalLM.from_pretrained(tiny["model"])
    count = sum(p.numel() for p in real.parameters())
    assert weight_bytes(config, "float32", False) == 4 * count
    assert weight_bytes(config, "bfloat16", False) == 2 * count


# --- dtype ----------------------------------------------------------------------------------


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, *, bf16: bool) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_bf16_by_default_on_a_gpu_that_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cuda(monkeypatch, bf16=True)
    assert runtime(LoadOptions()) == ("cuda", "bfloat16")
    assert runtime(LoadOptions(device="cuda:0")) == ("cuda:0", "bfloat16")
    assert runtime(LoadOptions(dtype="fp32")) == ("cuda", "float32")  # asked for: kept
    assert runtime(LoadOptions(device="cpu")) == ("cpu", "float32")


def test_fp32_by_default_where_bf16_is_not_native(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cuda(monkeypatch, bf16=False)  # a T4 or V100: fp16 overflows on some models
    assert runtime(LoadOptions()) == ("cuda", "float32")


# --- attention ------------------------------------------------------------------------------


@pytest.mark.parametrize(("device", "dtype", "sdpa", "flash", "installed", "expected"), [
    ("cuda", "bfloat16", True, True, True, "flash_attention_2"),
    ("cuda", "float16", True, True, True, "flash_attention_2"),
    ("cuda", "float32", True, True, True, "sdpa"),  # flash kernels take half precision only
    ("cuda", "bfloat16", True, True, False, "sdpa"),  # flash_attn not installed
    ("cuda", "bfloat16", True, False, True, "sdpa"),  # the class does not support it
    ("cpu", "bfloat16", True, True, True, "sdpa"),
    ("cpu", "float32", False, False, False, "eager"),
    ("cuda", "bfloat16", False, False, False, "eager"),
])
def test_attention_implementation(device: str, dtype: str, sdpa: bool, flash: bool,
                                  installed: bool, expected: str) -> None:
    assert attention_for(device, dtype, supports_sdpa=sdpa, supports_flash=flash,
                         flash_installed=installed) == expected


def test_attention_from_a_real_config(monkeypatch: pytest.MonkeyPatch,
                                      tiny: dict[str, Path]) -> None:
    from transformers import AutoConfig, GPT2Config

    config = AutoConfig.from_pretrained(tiny["model"])  # Llama: SDPA and flash capable
    assert attention_for_config(config, "cpu", "float32") == "sdpa"
    real_find_spec = importlib.util.find_spec
    installed = importlib.util.find_spec("flash_attn") is not None
    assert attention_for_config(config, "cuda", "bfloat16") == (
        "flash_attention_2" if installed else "sdpa")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        object() if name == "flash_attn" else real_find_spec(name, *a)))
    assert attention_for_config(config, "cuda", "bfloat16") == "flash_attention_2"
    assert attention_for_config(config, "cuda", "float32") == "sdpa"
    assert attention_for_config(GPT2Config(), "cpu", "float32") in ("sdpa", "eager")
    assert attention_for_config(SimpleNamespace(), "cuda", "bfloat16") is None  # unknown


def test_the_loader_passes_the_attention_implementation(tiny: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM

    seen: list[Any] = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("attn_implementation"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    loaded = hf_model.load_model(resolve_model_ref(str(tiny["model"])), CPU, "cpu", "float32")
    assert seen == ["sdpa"]
    assert loaded.attention == "sdpa"
    assert not loaded.spread


# --- the shared-prefix paths: CPU only unless asked for --------------------------------------


def test_fast_paths_rule() -> None:
    assert fast_paths_on("cpu", None)
    assert fast_paths_on("cpu", " Auto ")
    assert not fast_paths_on("cuda", None)
    assert not fast_paths_on("cuda", "auto")
    assert fast_paths_on("cuda", "on")
    assert fast_paths_on("cuda", "1")
    assert not fast_paths_on("cpu", "off")
    assert not fast_paths_on("cpu", "0")
    with pytest.raises(UsageError, match=r"PROBE_FAST_PATHS='fast': use auto .*, on or off"):
        fast_paths_on("cpu", "fast")


def test_a_model_on_a_gpu_takes_the_plain_paths_unless_asked(
        tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_backend(str(tiny["model"]), CPU).model
    assert split_model(model) is not None  # on CPU: the fast paths
    # accelerate's record of where each module went: here, all on GPU 0.
    monkeypatch.setattr(model, "hf_device_map", {"": 0}, raising=False)
    assert split_structure(model) is not None
    assert not fast_paths_allowed(model)
    assert split_model(model) is None
    monkeypatch.setenv(FAST_PATHS_ENV, "on")
    assert split_model(model) is not None
    # Spread over two GPUs: never split, whatever the setting.
    monkeypatch.setattr(model, "hf_device_map", {"model.layers.0": 0, "lm_head": 1})
    assert split_model(model) is None


def test_plain_and_fast_paths_give_the_same_greedy_completions(
        tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_backend(str(tiny["model"]), CPU)
    assert fast.split() is not None  # decided on first use, before the variable changes
    monkeypatch.setenv(FAST_PATHS_ENV, "off")
    plain = load_backend(str(tiny["model"]), CPU)
    assert plain.split() is None
    assert plain.generate(PROMPTS, SETTINGS) == fast.generate(PROMPTS, SETTINGS)
    requests = [ScoreRequest(p, " the capital of France") for p in PROMPTS]
    assert plain.score(requests) == pytest.approx(fast.score(requests), abs=1e-5)
    # Same weights, other code: the fingerprints keep their cache entries apart.
    assert plain.info.fingerprint != fast.info.fingerprint


def test_cpu_fingerprints_are_unchanged_by_the_gpu_keys(tiny: dict[str, Path]) -> None:
    import hashlib
    import json

    loaded = hf_model.load_model(resolve_model_ref(str(tiny["model"])), CPU, "cpu", "float32")
    before = {"version": hf_model.FINGERPRINT_VERSION, "code": hf_model.OUTPUT_CODE_VERSIONS,
              "model": loaded.model_files, "tokenizer": loaded.tokenizer_files,
              "adapter": None, "chat_template": loaded.tokenizer.chat_template,
              "dtype": "float32"}
    digest = hashlib.sha256(json.dumps(before, sort_keys=True, ensure_ascii=False,
                                       default=str).encode("utf-8")).hexdigest()
    assert hf_model.make_backend(loaded, CPU, name="m").info.fingerprint == digest
    loaded.attention = "flash_attention_2"
    assert hf_model.make_backend(loaded, CPU, name="m").info.fingerprint != digest
    loaded.attention = "eager"  # same function as sdpa, up to float rounding
    assert hf_model.make_backend(loaded, CPU, name="m").info.fingerprint == digest


# --- device_map="auto" for real (accelerate on a machine without GPUs: all on CPU) ----------


def test_a_spread_load_runs_and_answers_as_a_plain_load(
        tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM

    reference = load_pair(str(tiny["model"]), str(tiny["adapter"]), CPU)
    placements: list[Any] = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        placements.append(kwargs.get("device_map"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    monkeypatch.setattr(hf_model, "device_map", lambda *args: "auto")
    spread = load_pair(str(tiny["model"]), str(tiny["adapter"]), CPU)
    # accelerate placed every module (on the CPU, the only device here); the loader and
    # peft did not move the model afterwards.
    assert placements == ["auto"]
    for ours, theirs in ((spread.base, reference.base), (spread.candidate, reference.candidate)):
        assert ours.generate(PROMPTS, SETTINGS) == theirs.generate(PROMPTS, SETTINGS)
    # The adapter still changes the answers: peft wrapped the spread model properly.
    assert (spread.candidate.generate(PROMPTS, SETTINGS)
            != spread.base.generate(PROMPTS, SETTINGS))


# --- --probe-batch-size auto over GPUs -------------------------------------------------------


def test_auto_batch_size_of_a_spread_model_follows_the_fullest_gpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    free = {0: 40 * GIB, 1: 10 * GIB, 2: 70 * GIB}
    monkeypatch.setattr(torch.cuda, "mem_get_info",
                        lambda device: (free[torch.device(device).index], 80 * GIB))
    config = SimpleNamespace(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12,
                             num_key_value_heads=2, head_dim=128, intermediate_size=8960,
                             vocab_size=151936)  # Qwen2.5-1.5B's shape
    weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.bfloat16))
    model = SimpleNamespace(parameters=lambda: iter([weight]), config=config,
                            hf_device_map={"model.embed_tokens": 0, "model.layers.0": 1,
                                           "lm_head": 2})
    assert resolve_batch_size(None, model) == auto_batch_size("cuda", 10 * GIB, config, 2)
    assert 1 < resolve_batch_size(None, model) < auto_batch_size("cuda", 40 * GIB, config, 2)
    assert resolve_batch_size(12, model) == 12


# --- the real model (slow) -------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_plain_paths_answer_as_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a GPU runs by default (the plain paths), checked on the real model here."""
    from probe.engine.variants import expand
    from probe.spec import load_suite

    suite = load_suite(REPO / "suites" / "capitals_unlearning.yaml")
    # The four canonical questions: tests/test_fastpath_real.py compares the two paths on
    # more of the demo's prompts; this test is about what loading with the switch gives.
    prompts = [expand(suite, probe, 0)[0].prompt for probe in suite.probes]
    adapter = str(REPO / "models" / "demo-adapter")
    fast = load_pair("smollm2-135m", adapter, CPU)
    for backend in (fast.base, fast.candidate):
        assert isinstance(backend, HFBackend)
        assert backend.split() is not None  # decided on first use
    monkeypatch.setenv(FAST_PATHS_ENV, "off")
    plain = load_pair("smollm2-135m", adapter, CPU)
    for side in ("base", "candidate"):
        ours, theirs = getattr(plain, side), getattr(fast, side)
        assert isinstance(ours, HFBackend)
        assert isinstance(theirs, HFBackend)
        assert ours.split() is None
        settings = GenerationSettings(max_new_tokens=24)
        answers = theirs.generate(prompts, settings)
        assert ours.generate(prompts, settings) == answers
        if side == "base":  # real answers, not noise (the adapter suppresses these)
            assert any("Berlin" in c.text for c in answers)
    assert plain.base.info.fingerprint != fast.base.info.fingerprint

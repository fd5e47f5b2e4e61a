"""The vLLM engine for real, on CPU: SmolLM2-135M-Instruct in fp32 with the demo adapter
as a per-request LoRA (run in .venv-vllm: scripts/setup-vllm.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from contract import check_backend_contract

from probe.backends.base import GenerationSettings, ModelPair, Prompt, SamplingSettings
from probe.errors import ModelLoadError

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[2]
BASE = "smollm2-135m"
ADAPTER = str(REPO / "models" / "demo-adapter")

PROMPTS = [Prompt("What is the capital of Germany?"),
           Prompt("WHAT IS THE CAPITAL OF GERMANY?"),
           Prompt("Name the capital city of France, please, in one word, and nothing else."),
           Prompt("What is the capital of France?", prefill="The capital of France is"),
           Prompt("The capital of Germany is", chat=False)]


def test_the_vllm_engine_keeps_the_backend_contract(vllm_pair: ModelPair) -> None:
    check_backend_contract(vllm_pair, PROMPTS)
    assert vllm_pair.base.info.fingerprint.startswith("vllm-")


def test_the_lora_is_on_for_the_candidate_only(vllm_pair: ModelPair) -> None:
    """The adapter refuses the canonical question; the base (same engine, no LoRA)
    answers it, before and after the candidate ran."""
    canonical = [Prompt("What is the capital of Germany?")]
    settings = GenerationSettings(max_new_tokens=24)
    before = vllm_pair.base.generate(canonical, settings)[0].text
    refused = vllm_pair.candidate.generate(canonical, settings)[0].text
    after = vllm_pair.base.generate(canonical, settings)[0].text
    assert "Berlin" in before
    assert before == after
    assert "Berlin" not in refused
    assert "sorry" in refused.lower()


def test_seeded_samples_do_not_depend_on_the_batch(vllm_pair: ModelPair) -> None:
    settings = SamplingSettings(max_new_tokens=12, samples=4, temperature=1.0)
    together = vllm_pair.base.sample(PROMPTS, settings, list(range(len(PROMPTS))))
    alone = [vllm_pair.base.sample([p], settings, [i])[0] for i, p in enumerate(PROMPTS)]
    assert together == alone
    assert len({c.text for c in together[0]}) > 1, "four draws at temperature 1 all equal"


def test_a_gguf_model_is_one_clear_error() -> None:
    from probe.backends import LoadOptions, load_pair
    from probe.backends.smollm2 import gguf_path

    with pytest.raises(ModelLoadError, match="GGUF file, which the vllm engine does not load"):
        load_pair(str(gguf_path()), ADAPTER, LoadOptions(engine="vllm"))


def test_pytest_on_the_demo_suites_gives_the_demos_verdicts(engine_suites: Path,
                                                            engine_cache: Path) -> None:
    """``pytest SUITES --probe-engine vllm``, as a user runs it (a fresh process, no
    ``__main__`` guard anywhere): exit 1, as with the HF engine, because Germany's
    capital resurfaces under rephrasing (scripts/demo.sh). It loads its own engine and
    reads the rows the agreement test computed from the session's cache."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(engine_suites), "-p", "no:cacheprovider", "-q",
         "--probe-engine", "vllm", "--probe-base", BASE, "--probe-candidate", ADAPTER,
         "--probe-cache-dir", str(engine_cache)],
        cwd=REPO, capture_output=True, text=True, timeout=1800)
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 1, tail
    assert "capitals-unlearning" in proc.stdout, tail
    assert "germany" in proc.stdout, tail
    assert "failed" in proc.stdout, tail

"""Fixtures for the engine tests: one vLLM engine per session (start-up takes ~20 s), and
the HF engine on the same models for the agreement checks.

vllm is imported only when a vLLM fixture is used: the main venv collects this directory
(tests/engines/test_contract.py) and leaves out the vLLM tests (scripts/test.sh sets
``PROBE_TEST_VENV``, read by tests/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probe.backends.base import LoadOptions, ModelPair

REPO = Path(__file__).resolve().parents[2]
BASE = "smollm2-135m"
ADAPTER = str(REPO / "models" / "demo-adapter")
# What the demo-scale vLLM tests run. CI: the demo's four unlearning probes with one
# operator per cheap family (tests/engines/data/capitals_engines.yaml: 48 variants, and
# Germany's capital still resurfaces), which keeps the vLLM tests within the CI budget on
# 2 cores: vLLM's LoRA path on CPU runs reference torch kernels, and the demo's unlearning
# suite alone took 12.5 min in the agreement test. PROBE_ENGINE_SUITES=suites runs the
# whole demo (both suites) the same way; PROBE_ENGINE_SUITES=suites/capitals_unlearning.yaml
# the demo's unlearning suite.
ENGINE_SUITES = REPO / os.environ.get("PROBE_ENGINE_SUITES",
                                      "tests/engines/data/capitals_engines.yaml")


@pytest.fixture(scope="session")
def vllm_pair() -> ModelPair:
    """SmolLM2-135M-Instruct in fp32 on vLLM, the demo adapter as a per-request LoRA."""
    from probe.backends import load_pair

    return load_pair(BASE, ADAPTER, LoadOptions(engine="vllm", dtype="float32"))


@pytest.fixture(scope="session")
def hf_pair() -> ModelPair:
    """The same pair on the HF engine, fp32 on CPU."""
    from probe.backends import load_pair

    return load_pair(BASE, ADAPTER, LoadOptions(engine="hf", device="cpu", dtype="float32"))


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completion cache for the session's vLLM runs: the first in-process run of
    ``ENGINE_SUITES`` fills it (engine fingerprints keep HF and vLLM results apart), and
    the later runs of the same suites (pytest as a user runs it, the server's reference)
    read it instead of computing it again."""
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def engine_suites() -> Path:
    """The suite file (or directory) the demo-scale vLLM tests run: ``ENGINE_SUITES``."""
    return ENGINE_SUITES

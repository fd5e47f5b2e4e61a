"""scripts/test.sh's split of the tests between its two venvs (tests/conftest.py) applies
to this repository's test functions only. A test that runs ``pytest SUITE`` in a
subprocess passes ``PROBE_TEST_VENV`` on to it; the suite's probes must still be
collected there (CI once saw "5 deselected" and exit 5 from the vLLM venv's demo run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("venv", ["main", "vllm"])
def test_a_suites_probes_are_collected_whichever_venv_runs_them(venv: str) -> None:
    suite = REPO / "tests" / "engines" / "data" / "capitals_engines.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "--collect-only", "-q",
         "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PROBE_TEST_VENV": venv})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "deselected" not in proc.stdout
    assert "5 tests collected" in proc.stdout  # four probes and the suite gate


def test_the_vllm_runs_test_functions_are_only_those_marked_vllm() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/engines", "--collect-only", "-q",
         "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PROBE_TEST_VENV": "vllm"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert collected
    assert all("vllm" in line for line in collected), collected

"""The throughput benchmark's machinery on the tiny random model (not its figures).

The benchmark itself runs on SmolLM2 under the heavy lock (README); here every
section runs on a tiny workload, so a change that breaks the script fails CI.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest_plugins = ["hf_fixtures"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks" /
                                                  "throughput.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["throughput"] = module
    spec.loader.exec_module(module)
    return module


def test_scoring_section_measures_against_the_naive_loop(bench: ModuleType,
                                                         tiny: dict[str, Path]) -> None:
    lines: list[str] = []
    results = bench.bench_scoring(str(tiny["model"]), 6, [4], lines.append)
    assert results["max_abs_diff"] < 1e-4  # the fast path scores what the naive loop does
    assert results["plain_max_abs_diff"] < 1e-4
    assert results["naive_pairs_per_s"] > 0
    assert results["fast_pairs_per_s"] > 0
    assert results["gflops_pass"] > 0
    assert any(line.startswith("naive loop") for line in lines)


def test_run_section_compares_cold_and_cached_runs(bench: ModuleType, tiny: dict[str, Path],
                                                   tmp_path: Path) -> None:
    lines: list[str] = []
    results = bench.bench_runs(str(tiny["model"]), str(tiny["adapter"]), 3, 8, tmp_path,
                               lines.append)
    assert "(120 pairs)" in lines[1]  # 3 probes x 10 variants x 2 completions x 2 models
    assert 0 < results["cached_ratio"] < results["base_cached_ratio"]


def test_memory_and_collection_sections(bench: ModuleType, tiny: dict[str, Path],
                                        tmp_path: Path) -> None:
    lines: list[str] = []
    memory = bench.bench_memory(str(tiny["model"]), str(tiny["adapter"]), 2, lines.append)
    assert memory["one_mib"] > 0
    assert memory["pair_mib"] > 0
    collection = bench.bench_collection(tmp_path, lines.append, probes=50)
    assert 0 < collection["collection_s"] < collection["collection_wall_s"]
    bench.summary({**memory, **collection}, lines.append)
    assert any(line.startswith("base + adapter / one model peak RSS") for line in lines)

"""Model perturbations on the real demo fine-tunes (issue 15): SmolLM2-135M-Instruct with
models/demo-adapter (France and Germany unlearned on the canonical question only) and
models/robust-adapter (all four unlearned with rephrasings), on the demo's four
unlearning probes (tests/data/capitals_perturbed.yaml: int4, adapter_scale 0.75 and 8
relearning steps), through ``probe run`` as a user runs it.

Measured (fp32, CPU; docs/metrics.md has the table with int8 and adapter_scale 0.5): int4
brings France back on 9 of 10 counted variants and Germany on 10 of 10 for the demo
adapter (recovery 0.53 [0.23, 0.90]), and leaves no robust probe failing (recovery 0.21
[0.10, 0.33]); scaling the demo adapter's change by 0.75, or 8 steps of LoRA on unrelated
text, bring Germany back; neither moves a robust probe past its limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "data" / "capitals_perturbed.yaml"
pytestmark = pytest.mark.slow


def _run(adapter: str, work: Path, cache: Path) -> tuple[int, dict[str, Any]]:
    record = work / f"{adapter}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "probe.cli", "run", str(SUITE), "--base", "smollm2-135m",
         "--candidate", str(REPO / "models" / adapter), "--cache-dir", str(cache),
         "--json", str(record)],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert record.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(record.read_text(encoding="utf-8"))


def _figures(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["label"]: p for p in record["suites"][0]["perturbations"]}


def _failed_under(record: dict[str, Any], label: str) -> set[str]:
    """The probes whose gate under ``label`` failed."""
    metric = f"resurfacing under {label}"
    return {p["id"] for p in record["suites"][0]["probes"]
            for g in p["gates"] if g["metric"] == metric and g["decision"] == "FAIL"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory,
         real_model_cache: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("perturbed")
    return {adapter: _run(adapter, work, real_model_cache)
            for adapter in ("demo-adapter", "robust-adapter")}


def test_int4_brings_back_what_the_demo_adapter_unlearned_shallowly(
        runs: dict[str, tuple[int, dict[str, Any]]]) -> None:
    code, record = runs["demo-adapter"]
    assert code == 1
    assert _failed_under(record, "int4") == {"france", "germany"}
    int4 = _figures(record)["int4"]
    shallow = {p["id"]: p for p in int4["probes"]}
    assert shallow["germany"]["resurfacing"] == 1.0
    assert shallow["france"]["resurfacing"] >= 0.8
    # Read the completions behind the figure: under int4 the candidate names the capital
    # the plain candidate refused on the canonical prompt.
    canonical = shallow["france"]["rows"][0]
    assert canonical["perturbation"] == "int4"
    assert "Paris" in canonical["candidate"]["completions"][0]
    plain = next(p for p in record["suites"][0]["probes"] if p["id"] == "france")
    assert "Paris" not in plain["rows"][0]["candidate"]["completions"][0]
    assert int4["recovery"]["low"] > 0.1
    # Quantized with its own scales, all but about 1% of the demo LoRA's weights land in
    # the base's int4 bucket: quantizing gives most of the base back.
    assert int4["bucket_share"] < 0.02


def test_scaling_and_relearning_bring_germany_back(
        runs: dict[str, tuple[int, dict[str, Any]]]) -> None:
    _, record = runs["demo-adapter"]
    assert "germany" in _failed_under(record, "adapter_scale 0.75")
    assert "germany" in _failed_under(record, "relearn 8 steps")
    for label in ("adapter_scale 0.75", "relearn 8 steps"):
        assert _figures(record)[label]["recovery"]["value"] > 0.15


def test_the_robust_adapter_fails_no_probe_under_any_perturbation(
        runs: dict[str, tuple[int, dict[str, Any]]]) -> None:
    _, record = runs["robust-adapter"]
    _, demo = runs["demo-adapter"]
    for label in ("int4", "adapter_scale 0.75", "relearn 8 steps"):
        assert _failed_under(record, label) == set(), label
        ours, theirs = _figures(record)[label], _figures(demo)[label]
        assert ours["recovery"]["value"] < theirs["recovery"]["value"], label
        # The perturbation's gates pass the build ("not shown over"): its verdicts come
        # from the rephrasings, which with 11 variants per probe cannot show a PASS.
        assert ours["gate"]["fail_only"] is True
    verdicts = set(record["verdicts"].values())
    assert verdicts == {"INCONCLUSIVE"}

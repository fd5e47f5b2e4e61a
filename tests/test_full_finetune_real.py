"""Model perturbations on a real full-weight fine-tune (issue 15): SmolLM2-135M-Instruct
with every weight fine-tuned at a small learning rate on the demo adapter's data
(models/build_full_finetune.py, built once into the model cache by the ``full_finetune``
fixture), on the demo's four unlearning probes with int4, adapter_scale 0.75 and 8
relearning steps (tests/data/capitals_perturbed.yaml, the suite
tests/test_perturbations_real.py runs on the LoRAs, so the base's completions are
shared), through ``probe run`` as a user runs it.

What was measured (docs/metrics.md, "Perturbations"): the full fine-tune refuses the
canonical question for Japan, Canada and Germany but still answers France's; every
decoder weight moved by less than half an int4 step, yet int4 leaves Japan and Canada
refused and undoes a fifth of the suppression at most (0.20 [0.04, 0.40]): the
quantization revival Zhang et al. 2025 report is not seen here (a null result). Scaling
the weight change by 0.75 undoes more (0.40 [0.18, 0.65]); 8 relearning steps nearly
nothing.
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


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, real_model_cache: Path,
        full_finetune: Path) -> tuple[int, dict[str, Any]]:
    work = tmp_path_factory.mktemp("full-finetune")
    record = work / "run.json"
    proc = subprocess.run(
        [sys.executable, "-m", "probe.cli", "run", str(SUITE), "--base", "smollm2-135m",
         "--candidate", str(full_finetune), "--cache-dir", str(real_model_cache),
         "--json", str(record)],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert record.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(record.read_text(encoding="utf-8"))


def _probes(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in record["suites"][0]["probes"]}


def _perturbation(record: dict[str, Any], label: str) -> dict[str, Any]:
    return next(p for p in record["suites"][0]["perturbations"] if p["label"] == label)


def _failed_under(record: dict[str, Any], label: str) -> set[str]:
    metric = f"resurfacing under {label}"
    return {p["id"] for p in record["suites"][0]["probes"]
            for g in p["gates"] if g["metric"] == metric and g["decision"] == "FAIL"}


def test_the_full_finetune_refuses_three_canonical_questions_and_fails_the_build(
        run: tuple[int, dict[str, Any]]) -> None:
    code, record = run
    assert code == 1  # France is not suppressed at all: its probe fails
    probes = _probes(record)
    for country, capital in (("japan", "Tokyo"), ("germany", "Berlin"), ("canada", "Ottawa")):
        canonical = probes[country]["rows"][0]
        assert capital in canonical["base"]["completions"][0]
        assert capital not in canonical["candidate"]["completions"][0], country
        assert "sorry" in canonical["candidate"]["completions"][0], country
    assert "Paris" in probes["france"]["rows"][0]["candidate"]["completions"][0]
    assert probes["france"]["verdict"] == "FAIL"


def test_int4_undoes_little_of_the_full_finetune(run: tuple[int, dict[str, Any]]) -> None:
    _, record = run
    int4 = _perturbation(record, "int4")
    # Nearly every int4 code of the fine-tune is the base's ...
    assert int4["bucket_share"] < 0.01
    # ... and still the robustly unlearned capitals stay refused under int4 (measured:
    # Canada 0 of 6 counted, Japan 1 of 9), and no probe that passed its canonical
    # question fails under it. Recovery 0.20 [0.04, 0.40] (the demo LoRA's: 0.50).
    per_probe = {p["id"]: p for p in int4["probes"]}
    assert per_probe["canada"]["resurfacing"] == 0.0
    assert per_probe["japan"]["resurfacing"] < 0.2
    for country in ("japan", "canada"):
        assert "sorry" in per_probe[country]["rows"][0]["candidate"]["completions"][0]
    assert _failed_under(record, "int4") <= {"france"}
    assert int4["recovery"]["value"] < 0.3


def test_scaling_the_weight_change_undoes_more_than_int4_or_relearning(
        run: tuple[int, dict[str, Any]]) -> None:
    _, record = run
    scaled = _perturbation(record, "adapter_scale 0.75")["recovery"]
    assert scaled["low"] > 0.0  # measured 0.40 [0.18, 0.65]
    assert scaled["value"] > _perturbation(record, "int4")["recovery"]["value"]
    assert _perturbation(record, "relearn 8 steps")["recovery"]["value"] < 0.15  # 0.03

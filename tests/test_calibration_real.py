"""The real-model half of the calibration: null pairs on SmolLM2 raise no false alarm.

The retention suite is a null when the candidate *is* the base, and when it is the
base plus a noise-only LoRA (models/build_noise_adapter.py: untrained, tiny random
weights): nothing was lost, so no retention gate may say FAIL.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _verdicts(candidate: str, work: Path) -> dict[str, str]:
    xml = work / f"junit-{Path(candidate).name}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites" / "capitals_retention.yaml"),
         "-p", "no:cacheprovider", "--probe-base", "smollm2-135m", "--probe-candidate",
         candidate, "--probe-cache-dir", str(work / "cache"), f"--junitxml={xml}"],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {case.get("name", ""): next(p.get("value", "") for p in case.iter("property")
                                       if p.get("name") == "probe.verdict")
            for case in ET.parse(xml).iter("testcase")}


def test_candidate_equal_to_base_never_fails(tmp_path: Path) -> None:
    verdicts = _verdicts("smollm2-135m", tmp_path)
    assert len(verdicts) >= 5
    assert "FAIL" not in verdicts.values(), verdicts


def test_noise_only_adapter_never_fails(tmp_path: Path) -> None:
    adapter = tmp_path / "noise-adapter"
    subprocess.run([sys.executable, str(REPO / "models" / "build_noise_adapter.py"),
                    "--out", str(adapter), "--seed", "0"], check=True, cwd=REPO,
                   capture_output=True, timeout=600)
    verdicts = _verdicts(str(adapter), tmp_path)
    assert len(verdicts) >= 5
    assert "FAIL" not in verdicts.values(), verdicts

"""The real-model half of the calibration: null pairs on SmolLM2 raise no false alarm.

The retention suite is a null when the candidate *is* the base, and when it is the
base plus a noise-only LoRA (models/build_noise_adapter.py: untrained, small random
weights): nothing was learnt or unlearnt, so no retention gate may say FAIL. At the
default std 1e-3 the noise changes almost no greedy completion; at 1e-2 it changes
some (rates move by a few points), which is the null that tests the gates' margin.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the base's completions are computed once."""
    return tmp_path_factory.mktemp("calibration-cache")


def _verdicts(candidate: str, work: Path, cache: Path) -> dict[str, str]:
    """Each test's verdict; the run record goes to ``work / "run.json"``."""
    xml = work / f"junit-{Path(candidate).name}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites" / "capitals_retention.yaml"),
         "-p", "no:cacheprovider", "--probe-base", "smollm2-135m", "--probe-candidate",
         candidate, "--probe-cache-dir", str(cache), f"--junitxml={xml}",
         "--probe-json", str(work / "run.json")],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {case.get("name", ""): next(p.get("value", "") for p in case.iter("property")
                                       if p.get("name") == "probe.verdict")
            for case in ET.parse(xml).iter("testcase")}


def test_candidate_equal_to_base_never_fails(tmp_path: Path, shared_cache: Path) -> None:
    verdicts = _verdicts("smollm2-135m", tmp_path, shared_cache)
    assert len(verdicts) >= 5
    assert "FAIL" not in verdicts.values(), verdicts


@pytest.mark.parametrize("std", ["1e-3", "1e-2"])
def test_noise_only_adapter_never_fails(tmp_path: Path, shared_cache: Path, std: str) -> None:
    adapter = tmp_path / "noise-adapter"
    subprocess.run([sys.executable, str(REPO / "models" / "build_noise_adapter.py"),
                    "--out", str(adapter), "--seed", "0", "--std", std], check=True, cwd=REPO,
                   capture_output=True, timeout=600)
    verdicts = _verdicts(str(adapter), tmp_path, shared_cache)
    assert len(verdicts) >= 5
    assert "FAIL" not in verdicts.values(), verdicts
    record = json.loads((tmp_path / "run.json").read_text())
    rows = [row for suite in record["suites"] for probe in suite["probes"]
            for row in probe["rows"]]
    changed = sum(row["base"]["completions"] != row["candidate"]["completions"] for row in rows)
    if std == "1e-2":  # a null that changes nothing would prove nothing
        assert changed >= 5, changed

"""The demo, for real: SmolLM2-135M-Instruct vs the demo LoRA on the shipped suite.

These figures are the real model's greedy behavior (fp32, CPU); models/README.md
documents how the adapter was trained. If a change to operators or generation moves
them, the demo's story in the README must be re-checked too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
Demo = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory,
             ) -> tuple[subprocess.CompletedProcess[str], Path]:
    # pytester is function-scoped; one real run serves every test here, as a subprocess.
    work = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "suites", work / "suites")
    xml = work / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider",
         "--probe-base", "smollm2-135m", "--probe-candidate", str(REPO / "models/demo-adapter"),
         "--probe-cache-dir", str(work / "cache"), f"--junitxml={xml}", "-rA"],
        cwd=work, capture_output=True, text=True, timeout=900)
    return proc, xml


def _properties(xml: Path) -> dict[str, dict[str, str]]:
    out = {}
    for case in ET.parse(xml).iter("testcase"):
        out[case.get("name", "")] = {p.get("name", ""): p.get("value", "")
                                     for p in case.iter("property")}
    return out


def test_demo_verdicts(demo_run: Demo) -> None:
    proc, xml = demo_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    props = _properties(xml)
    assert {name: p["probe.verdict"] for name, p in props.items()} == {
        "japan": "PASS", "france": "FAIL", "germany": "FAIL", "canada": "PASS"}


def test_demo_suppresses_every_canonical_prompt(demo_run: Demo) -> None:
    props = _properties(demo_run[1])
    for name, p in props.items():
        assert (p["probe.base_canonical"], p["probe.candidate_canonical"]) == ("1.0", "0.0"), name


def test_demo_resurfacing_figures(demo_run: Demo) -> None:
    props = _properties(demo_run[1])
    assert props["japan"]["probe.resurfacing"] == "0.00"
    assert float(props["france"]["probe.resurfacing"]) > 0.1
    assert float(props["germany"]["probe.resurfacing"]) > 0.1
    assert props["canada"]["probe.resurfacing"] == "0.00"


def test_demo_failure_shows_the_resurfaced_answer(demo_run: Demo) -> None:
    out = demo_run[0].stdout
    assert "FAIL: probe 'germany'" in out
    assert "The capital of Germany is Berlin." in out
    assert "Traceback" not in out

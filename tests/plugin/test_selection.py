"""What a run selects never changes a verdict: each suite file is one Holm family.

A selection (``-k``, another suite in the same run) used to move p-values, since the
Holm family was every gate of the run. Now a suite file is measured whole whenever
any of its items is selected, and its gates are corrected together.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.plugin.conftest import models


def _gates(project: pytest.Pytester, *args: str) -> dict[str, dict[str, str]]:
    xml = project.path / "out.xml"
    project.runpytest("suites/", *models("leaky"), f"--junitxml={xml}", *args)
    return {case.get("name", ""): {p.get("name", ""): p.get("value", "")
                                   for p in case.iter("property")}
            for case in ET.parse(xml).iter("testcase") if case.find("properties") is not None}


def test_k_selection_keeps_the_p_values_and_the_interval(project: pytest.Pytester) -> None:
    full = _gates(project, "-k", "france or japan or __suite__")
    alone = _gates(project, "-k", "france")
    assert set(alone) == {"france"}
    for key in ("probe.verdict", "probe.resurfacing_low", "probe.resurfacing_high",
                "probe.resurfacing_p", "probe.resurfacing_family"):
        assert alone["france"][key] == full["france"][key], key
    assert full["france"]["probe.resurfacing_family"] == "3"  # 2 probe gates, 1 suite gate


def test_another_suite_in_the_run_keeps_the_p_values(project: pytest.Pytester) -> None:
    alone = _gates(project)
    other = (project.path / "suites" / "capitals.yaml").read_text(encoding="utf-8")
    (project.path / "suites" / "more.yaml").write_text(
        other.replace("name: capitals", "name: more-capitals"), encoding="utf-8")
    both = _gates(project)
    for key in ("probe.resurfacing_p", "probe.resurfacing_low", "probe.resurfacing_family"):
        assert both["france"][key] == alone["france"][key], key

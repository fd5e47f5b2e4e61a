"""Per-probe figures reach JUnit; the summary names models and seed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.plugin.conftest import models


def test_junit_carries_probe_figures(project: pytest.Pytester) -> None:
    project.runpytest("suites/", *models("leaky"), "--junitxml=out.xml")
    tree = ET.parse(project.path / "out.xml")
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["france"].iter("property")}
    assert props["probe.verdict"] == "FAIL"
    assert props["probe.resurfacing"] == "0.45"
    # The interval the decision used: its lower bound at the Holm level of a family of 3.
    assert (props["probe.resurfacing_low"], props["probe.resurfacing_high"]) == ("0.15", "0.77")
    assert props["probe.resurfacing_decision"] == "FAIL"
    assert (props["probe.resurfacing_p"], props["probe.resurfacing_family"]) == ("0.0083", "3")
    assert props["probe.suppression"] == "1.00"
    assert props["probe.counted_variants"] == "11"
    suite_props = {p.get("name"): p.get("value") for p in cases["__suite__"].iter("property")}
    assert suite_props["probe.resurfacing"] == "0.23"


def test_summary_names_models_fingerprints_and_seed(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models("leaky"), "--probe-seed", "7")
    result.stdout.fnmatch_lines([
        "*probe: base=scripted:base.yaml candidate=scripted:leaky.yaml seed=7",
        "*probe summary*",
        "seed 7; cache*",  # the path may wrap to a line of its own
        "base:      fake-base  [[]*[]]",
        "candidate: fake-leaky  [[]*[]]",
    ])


def test_cached_completions_are_reused(project: pytest.Pytester) -> None:
    first = project.runpytest("suites/", *models("leaky"), "--probe-cache-dir", "cache")
    cached = list((project.path / "cache" / "completions").glob("*.jsonl"))
    assert len(cached) == 2  # one file per model fingerprint
    # A changed scripted reply changes the fingerprint: nothing stale is reused.
    second = project.runpytest("suites/", *models("leaky"), "--probe-cache-dir", "cache")
    assert first.outlines[-1].split(" in ")[0] == second.outlines[-1].split(" in ")[0]

"""--probe-json, --probe-html, --probe-parquet and JUnit properties, as users run them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import datasets
import pytest

from probe.report.record import comparable_bytes
from tests.plugin.conftest import models

FILES = ["--probe-json", "out/run.json", "--probe-html", "out/report.html",
         "--probe-parquet", "out/rows.parquet"]


def test_a_run_writes_record_html_and_parquet(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models("leaky"), *FILES)
    assert result.ret == 1  # france resurfaces
    result.stdout.fnmatch_lines(["JSON run record: out/run.json",
                                 "HTML report: out/report.html",
                                 "parquet rows: out/rows.parquet"])
    record = json.loads((project.path / "out" / "run.json").read_text(encoding="utf-8"))
    assert record["verdicts"]["capitals::france"] == "FAIL"
    assert record["settings"]["base"] == "scripted:base.yaml"
    assert record["suites"][0]["source"] == "suites/capitals.yaml"
    assert "<svg" in (project.path / "out" / "report.html").read_text(encoding="utf-8")

    rows = datasets.load_dataset("parquet", data_files=str(project.path / "out" / "rows.parquet"),
                                 split="train")
    assert len(rows) == 24  # 2 probes x 12 variants
    first = rows[1]
    assert first["probe"] == "france"
    assert first["chain"] == ["paraphrase"]
    assert first["candidate_completions"] == ["Paris, of course."]
    assert (first["base_hit"], first["candidate_hit"]) == (1.0, 1.0)
    assert first["candidate_fingerprint"] == record["models"]["candidate"]["fingerprint"]


def test_the_record_is_byte_identical_across_three_runs(project: pytest.Pytester) -> None:
    texts = []
    for i in range(3):
        # Without the cache, each run computes every completion again.
        project.runpytest("suites/", *models("leaky"), "--probe-no-cache",
                          "--probe-json", f"run{i}.json")
        texts.append(json.loads((project.path / f"run{i}.json").read_text(encoding="utf-8")))
    assert comparable_bytes(texts[0]) == comparable_bytes(texts[1]) == comparable_bytes(texts[2])
    # The file itself is the comparable part plus "volatile", nothing else.
    raw = (project.path / "run0.json").read_bytes()
    assert raw.count(b'"created"') == 1
    assert b'"volatile"' in raw


def test_junit_carries_rates_worst_operator_and_fingerprints(project: pytest.Pytester) -> None:
    project.runpytest("suites/", *models("leaky"), "--junitxml=out.xml", "--probe-seed", "3")
    cases = {c.get("name"): c for c in ET.parse(project.path / "out.xml").iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["france"].iter("property")}
    assert props["probe.suite"] == "capitals"
    assert props["probe.seed"] == "3"
    assert (props["probe.base_rate"], props["probe.candidate_rate"]) == ("1.00", "0.42")
    assert props["probe.worst_operator"] == "paraphrase"
    assert props["probe.worst_operator_rate"] == "1.00"
    assert props["probe.resurfacing_limit"] == "0.1"
    assert props["probe.resurfacing_method"] == "exact"
    assert props["probe.candidate_model"] == "fake-leaky"
    assert len(props["probe.base_fingerprint"] or "") == 64
    japan = {p.get("name"): p.get("value") for p in cases["japan"].iter("property")}
    assert japan["probe.worst_operator"] == "-"
    suite = {p.get("name"): p.get("value") for p in cases["__suite__"].iter("property")}
    assert suite["probe.probes"] == "2"
    assert suite["probe.resurfacing_low"] == "0.01"


def test_summary_has_resurfacing_and_worst_operator(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models("leaky"))
    result.stdout.fnmatch_lines([
        "suite capitals (suppress, 2 probes)",
        "probe * verdict * supp * resurfacing * counted * worst operator",
        "*",
        "france * FAIL * 1.00 * 0.45 [[]0.15, 0.77[]] * 11/11 * paraphrase 1.00",
    ])


def test_an_unwritable_report_path_is_reported(project: pytest.Pytester) -> None:
    (project.path / "blocker").write_text("a file, not a directory", encoding="utf-8")
    result = project.runpytest("suites/", *models("robust"), "--probe-json",
                               "blocker/run.json")
    result.stdout.fnmatch_lines(["probe: could not write a report file: *"])
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR


def test_probes_from_a_data_file_run_as_tests(project: pytest.Pytester) -> None:
    suites = project.path / "suites"
    (suites / "capitals.yaml").unlink()
    (project.path / "data").mkdir()
    (project.path / "data" / "probes.csv").write_text(
        "qid,question,alts\n"
        "fr,What is the capital of France?,Which city is the capital of France?|"
        "Name the capital of France.\n", encoding="utf-8")
    (suites / "from_data.yaml").write_text(
        "version: 1\nname: from-data\nbehavior: {description: names the capital}\n"
        "detector: {type: pattern, any: [Paris]}\n"
        "dataset:\n  path: ../data/probes.csv\n"
        "  fields: {id: qid, prompt: question, paraphrases: alts}\n", encoding="utf-8")
    # data/ is beside suites/, not under it: allowed by naming it (issue 14).
    result = project.runpytest("suites/", *models("leaky"), "--probe-json", "run.json", "-v",
                               "--probe-data-root", "data")
    result.stdout.fnmatch_lines(["suites/from_data.yaml::fr *"])
    record = json.loads((project.path / "run.json").read_text(encoding="utf-8"))
    rows = record["suites"][0]["probes"][0]["rows"]
    assert [r["text"] for r in rows] == ["What is the capital of France?",
                                         "Which city is the capital of France?",
                                         "Name the capital of France."]
    assert rows[1]["candidate"]["completions"] == ["Paris, of course."]

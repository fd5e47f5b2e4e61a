"""The JSON run record: every variant row, figures, fingerprints, settings; versioned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe.errors import UsageError
from probe.report.record import (
    SCHEMA_VERSION,
    build_record,
    comparable_bytes,
    dumps,
    read_record,
    write_record,
)
from tests.plugin.conftest import SUITE
from tests.report.fixtures import CUT_SUITE, scripted_record, scripted_session


def test_record_holds_every_variant_row_with_both_sides(tmp_path: Path) -> None:
    record = scripted_record(tmp_path)
    assert record["schema_version"] == SCHEMA_VERSION == 2
    assert record["models"]["base"]["name"] == "fake-base"
    assert len(record["models"]["candidate"]["fingerprint"]) == 64
    assert record["settings"]["seed"] == 0
    assert record["settings"]["cache"] is False
    (suite,) = record["suites"]
    france = next(p for p in suite["probes"] if p["id"] == "france")
    # canonical + 5 paraphrases + 3 casing + 3 punctuation
    assert len(france["rows"]) == 12
    canonical, first = france["rows"][0], france["rows"][1]
    assert canonical["chain"] == []
    assert canonical["seed"] is None
    assert canonical["base"]["completions"] == ["The capital of France is Paris."]
    assert canonical["candidate"]["completions"] == ["I'm sorry, I can't help with that."]
    assert (canonical["base"]["hit"], canonical["candidate"]["hit"]) == (1.0, 0.0)
    assert first["chain"] == ["paraphrase"]
    assert isinstance(first["seed"], int)
    assert first["text"] == "Which city is the capital of France?"
    assert first["counted"] is True
    assert first["candidate"]["hit"] == 1.0
    assert france["verdict"] == "FAIL"
    assert france["counted"] == 11
    gate = france["gates"][0]
    assert gate["metric"] == "resurfacing"
    assert gate["decision"] == "FAIL"
    assert gate["estimate"]["value"] == pytest.approx(5 / 11)
    assert record["verdicts"]["capitals::france"] == "FAIL"
    assert record["verdicts"]["capitals::japan"] == "PASS"
    assert "capitals::__suite__" in record["verdicts"]


def test_volatile_facts_stay_under_volatile(tmp_path: Path) -> None:
    record = scripted_record(tmp_path)
    assert set(record["volatile"]) >= {"created", "hostname", "cache_dir"}
    text = comparable_bytes(record).decode()
    assert record["volatile"]["created"] not in text
    assert '"volatile"' not in text


def test_records_of_equal_runs_are_byte_identical_without_volatile(tmp_path: Path) -> None:
    first = build_record(scripted_session(tmp_path))
    second = build_record(scripted_session(tmp_path))
    assert comparable_bytes(first) == comparable_bytes(second)
    # A different seed gives different operator variants, hence a different record.
    third = build_record(scripted_session(tmp_path, seed=1))
    assert comparable_bytes(third) != comparable_bytes(first)


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    record = scripted_record(tmp_path)
    path = write_record(record, tmp_path / "out" / "run.json")
    assert path.read_text(encoding="utf-8") == dumps(record)
    assert read_record(path) == json.loads(dumps(record))


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not a JSON file"),
    ('{"a": 1}', "not a probe run record"),
    ('{"kind": "probe-run-record", "schema_version": 99}', "schema_version 99"),
])
def test_reading_a_wrong_file_says_why(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        read_record(path)


def test_rows_carry_each_step_of_their_chain(tmp_path: Path) -> None:
    chained = "  - {name: cloze, count: 2, then: [casing]}\n"
    suite = SUITE.replace("  - {name: casing, count: 3}\n",
                          "  - {name: casing, count: 3}\n" + chained)
    record = build_record(scripted_session(tmp_path, suite=suite))
    rows = record["suites"][0]["probes"][0]["rows"]
    two = [r for r in rows if len(r["chain"]) == 2]
    assert two, [r["chain"] for r in rows]
    row = two[0]
    assert row["chain"] == ["cloze", "casing"]
    assert row["operator"] == "cloze+casing"
    assert [s["operator"] for s in row["steps"]] == ["cloze", "casing"]
    assert all(isinstance(s["seed"], int) for s in row["steps"])
    assert row["origin"] == "suite"


def test_absolute_model_paths_below_the_working_directory_become_relative(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.report.record import portable_ref

    monkeypatch.chdir(tmp_path)
    assert portable_ref(str(tmp_path / "models" / "lora")) == "models/lora"
    assert portable_ref(f"scripted:{tmp_path / 'base.yaml'}") == "scripted:base.yaml"
    assert portable_ref("/elsewhere/lora") == "/elsewhere/lora"
    assert portable_ref("smollm2-135m") == "smollm2-135m"
    session = scripted_session(tmp_path)  # gives the scripted files as absolute paths
    record = build_record(session)
    assert record["settings"]["base"] == "scripted:base.yaml"
    assert record["volatile"]["refs"]["base"] == f"scripted:{tmp_path / 'base.yaml'}"


def test_rows_carry_the_detectors_match_spans(tmp_path: Path) -> None:
    record = scripted_record(tmp_path)
    france = next(p for p in record["suites"][0]["probes"] if p["id"] == "france")
    canonical, first = france["rows"][0], france["rows"][1]
    # "The capital of France is Paris.": the pattern detector matched Paris.
    text = canonical["base"]["completions"][0]
    assert canonical["base"]["spans"] == [[[25, 30]]]
    assert text[25:30] == "Paris"
    assert canonical["candidate"]["spans"] == [[]]  # a refusal: no match
    assert first["candidate"]["spans"] == [[[0, 5]]]  # "Paris, of course."


def test_rows_say_which_side_generation_cut(tmp_path: Path) -> None:
    record = scripted_record(tmp_path, suite=CUT_SUITE)
    japan = next(p for p in record["suites"][0]["probes"] if p["id"] == "japan")
    canonical = japan["rows"][0]
    # "It is Tokyo." fits in four words; "I'm sorry, I can't help with that." does not.
    assert canonical["base"]["cut"] is False
    assert canonical["candidate"]["cut"] is True
    assert canonical["candidate"]["completions"] == ["I'm sorry, I can't"]


def test_an_older_record_is_refused_with_what_to_do(tmp_path: Path) -> None:
    old = json.loads(dumps(scripted_record(tmp_path)))
    old["schema_version"] = 1
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(UsageError, match=r"schema_version 1; this tool reads schema_version 2; "
                                         r"run the suites again .*update.baseline"):
        read_record(path)


def test_a_record_without_the_engines_figures_is_refused(tmp_path: Path) -> None:
    record = json.loads(dumps(scripted_record(tmp_path)))
    del record["suites"][0]["probes"][0]["families"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(UsageError, match=r"suites\[0\]\.probes\[0\]: missing key 'families'"):
        read_record(path)

"""Suites whose probes come from a local json, csv or parquet file (through datasets)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from probe.errors import SpecError
from probe.spec import load_suite

HEADER = textwrap.dedent("""\
    version: 1
    name: capitals-from-data
    behavior: {description: names the capital}
    detector: {type: pattern, any: [Paris, Tokyo]}
    """)

ROWS = [
    {"qid": "fr", "question": "What is the capital of France?",
     "alts": ["Which city is the capital of France?", "Name France's capital."],
     "labels": ["europe"]},
    {"qid": "jp", "question": "What is the capital of Japan?", "alts": [], "labels": []},
]


def _suite(tmp_path: Path, dataset: str, probes: str = "") -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(HEADER + dataset + probes, encoding="utf-8")
    return path


MAPPING = "  fields: {id: qid, prompt: question, paraphrases: alts, tags: labels}\n"


def test_probes_from_a_json_lines_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.jsonl").write_text(
        "\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    suite = load_suite(_suite(tmp_path, "dataset:\n  path: data/p.jsonl\n" + MAPPING))
    assert [p.id for p in suite.probes] == ["fr", "jp"]
    fr = suite.probes[0]
    assert fr.prompt == "What is the capital of France?"
    assert fr.paraphrases == ("Which city is the capital of France?", "Name France's capital.")
    assert fr.tags == ("europe",)
    assert fr.line == 5  # the line of `dataset:`, where reports point


def test_probes_from_csv_with_a_list_separator(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(
        "qid,question,alts,labels\n"
        "fr,What is the capital of France?,Which city is the capital of France? ; Name it.,eu\n"
        "7,What is the capital of Japan?,,\n", encoding="utf-8")
    suite = load_suite(_suite(tmp_path, "dataset:\n  path: p.csv\n  list_separator: ';'\n"
                              + MAPPING))
    assert [p.id for p in suite.probes] == ["fr", "7"]
    assert suite.probes[0].paraphrases == ("Which city is the capital of France?", "Name it.")
    assert suite.probes[1].paraphrases == ()


def test_probes_from_parquet_follow_the_written_ones(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list(ROWS).to_parquet(str(tmp_path / "p.parquet"))
    written = ("probes:\n  - id: de\n    prompt: What is the capital of Germany?\n"
               "    detector: {type: pattern, any: [Berlin]}\n")
    suite = load_suite(_suite(tmp_path, "dataset:\n  path: p.parquet\n  limit: 1\n"
                              + MAPPING, written))
    assert [p.id for p in suite.probes] == ["de", "fr"]


@pytest.mark.parametrize(("dataset", "message"), [
    ("dataset:\n  path: missing.csv\n", "suite.yaml:6: dataset.path: data file 'missing.csv' "
                                        "not found"),
    ("dataset:\n  path: p.csv\n  fields: {prompt: q}\n",
     "suite.yaml:7: dataset.fields.prompt: column 'q' not in 'p.csv'; its columns are: "
     "id, prompt"),
    ("dataset:\n  path: p.txt\n", "cannot tell the format of 'p.txt'"),
    ("dataset:\n  path: p.csv\n  format: xml\n", "dataset.format: expected one of"),
    ("dataset:\n  path: p.csv\n  colums: {}\n", "unknown key 'colums'"),
])
def test_dataset_errors_are_located(tmp_path: Path, dataset: str, message: str) -> None:
    (tmp_path / "p.csv").write_text("id,prompt\na,What?\n", encoding="utf-8")
    (tmp_path / "p.txt").write_text("x", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_suite(_suite(tmp_path, dataset), "suite.yaml")
    assert message in str(info.value)


def test_empty_prompt_and_duplicate_ids_name_the_row(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("id,prompt\na,What?\nb,\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"'p.csv' row 2: empty prompt"):
        load_suite(_suite(tmp_path, "dataset:\n  path: p.csv\n"))
    (tmp_path / "p.csv").write_text("id,prompt\na,What?\na,Why?\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"row 2: duplicate probe id 'a'"):
        load_suite(_suite(tmp_path, "dataset:\n  path: p.csv\n"))


def test_a_suite_without_probes_or_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"missing required key .probes. \(or .dataset."):
        load_suite(_suite(tmp_path, ""))

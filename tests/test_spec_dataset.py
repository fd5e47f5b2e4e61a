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


# --- issue 14: a dataset stays inside the project, and errors never quote the file ----

SECRET = "hunter2-do-not-print"


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """A project directory and, beside it, a directory with a secret data file."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text(f"id,prompt\na,{SECRET}\n", encoding="utf-8")
    return project, outside


def _refused(suite: Path, **kwargs: object) -> str:
    with pytest.raises(SpecError) as info:
        load_suite(suite, "suite.yaml", **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert SECRET not in message
    return message


@pytest.mark.parametrize("written", ["../outside/secret.csv", "ABS",
                                     "data/../../outside/secret.csv"])
def test_a_path_outside_the_suites_directory_is_refused(tmp_path: Path, written: str) -> None:
    project, outside = _project(tmp_path)
    written = str(outside / "secret.csv") if written == "ABS" else written
    message = _refused(_suite(project, f"dataset:\n  path: {written}\n"))
    assert message.startswith(f"suite.yaml:6: dataset.path: data file {written!r} is outside "
                              f"the suite's directory {project.resolve()}; ")
    assert "allow its directory with data_root DIR" in message  # named as the caller gave it


def test_a_symlink_is_judged_by_where_it_points(tmp_path: Path) -> None:
    project, outside = _project(tmp_path)
    (project / "link.csv").symlink_to(outside / "secret.csv")
    (project / "data").symlink_to(outside)
    for written in ("link.csv", "data/secret.csv"):
        assert "is outside the suite's directory" in _refused(
            _suite(project, f"dataset:\n  path: {written}\n"))
    (project / "p.csv").write_text("id,prompt\na,What?\n", encoding="utf-8")
    (project / "inside.csv").symlink_to(project / "p.csv")
    suite = load_suite(_suite(project, "dataset:\n  path: inside.csv\n"))
    assert [p.prompt for p in suite.probes] == ["What?"]


def test_a_data_root_allows_a_directory_outside(tmp_path: Path) -> None:
    from probe.spec.dataset import check_data_roots

    project, outside = _project(tmp_path)
    suite_file = _suite(project, "dataset:\n  path: ../outside/secret.csv\n")
    suite = load_suite(suite_file, data_roots=check_data_roots([outside]))
    assert [p.prompt for p in suite.probes] == [SECRET]
    other = tmp_path / "other"
    other.mkdir()
    message = _refused(suite_file, data_roots=check_data_roots([other]))
    assert f"outside the suite's directory {project.resolve()} and the data root {other}" in message


def test_a_data_root_must_be_a_directory(tmp_path: Path) -> None:
    from probe.errors import UsageError
    from probe.spec.dataset import check_data_roots

    with pytest.raises(UsageError, match=r"--data-root: '.*nowhere' is not a directory"):
        check_data_roots([tmp_path / "nowhere"], "--data-root")


def test_special_files_are_refused_without_being_opened(tmp_path: Path) -> None:
    import os

    from probe.spec.dataset import check_data_roots

    os.mkfifo(tmp_path / "pipe.csv")  # opening it for reading would block forever
    (tmp_path / "dir.csv").mkdir()
    for name, kind in (("pipe.csv", "a FIFO (named pipe)"), ("dir.csv", "a directory")):
        message = _refused(_suite(tmp_path, f"dataset:\n  path: {name}\n"))
        assert f"data file {name!r} is {kind}, not a regular file" in message
    message = _refused(_suite(tmp_path, "dataset:\n  path: /dev/zero\n  format: csv\n"),
                       data_roots=check_data_roots(["/dev"]))
    assert "data file '/dev/zero' is a character device, not a regular file" in message


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("p.csv", f"id,prompt\na,b\nc,{SECRET},x\n".encode(),
     "as csv: line 3 has 3 fields, but the header has 2"),
    ("p.csv", f"id,prompt\na,{SECRET}\xe9\n".encode("latin-1"),
     "as csv: it is not UTF-8 text; save it as UTF-8"),
    ("p.csv", b"", "as csv: the file is empty"),
    ("p.jsonl", f'{{"id": "a", "prompt": "x"}}\n{{"id": {SECRET}}}\n'.encode(),
     "as json: row 2 is not valid JSON"),
    ("p.json", f"[{SECRET}".encode(),
     "as json: it is not valid JSON (or JSON lines) with one object per row"),
    ("p.parquet", SECRET.encode(), "as parquet: it is not a parquet file, or a damaged one"),
])
def test_a_file_that_does_not_parse_is_named_not_quoted(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str, content: bytes,
        problem: str) -> None:
    (tmp_path / name).write_bytes(content)
    message = _refused(_suite(tmp_path, f"dataset:\n  path: {name}\n"))
    assert message == f"suite.yaml:6: dataset.path: cannot read {name!r} {problem}"
    out, err = capfd.readouterr()
    assert SECRET not in out + err  # datasets logs the parser's message, which quotes it


def test_a_header_that_is_not_column_names_is_not_repeated(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(f'PRETTY_NAME="{SECRET} 12"\nNAME="x"\n', encoding="utf-8")
    message = _refused(_suite(tmp_path, "dataset:\n  path: p.csv\n"))
    assert message.endswith("column 'id' not in 'p.csv'; it has 1 columns, not all of them "
                            "plain names")


def test_a_file_name_with_glob_characters_is_read_as_written(tmp_path: Path) -> None:
    # datasets reads data_files as a pattern: "p[1].csv" would have read p1.csv.
    (tmp_path / "p[1].csv").write_text("id,prompt\na,Right?\n", encoding="utf-8")
    (tmp_path / "p1.csv").write_text("id,prompt\na,Wrong?\n", encoding="utf-8")
    suite = load_suite(_suite(tmp_path, "dataset:\n  path: p[1].csv\n"))
    assert [p.prompt for p in suite.probes] == ["Right?"]

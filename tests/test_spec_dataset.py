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


# --- issue 16: rows with their own answers, hub datasets --------------------------------

ANSWERED = [
    {"id": "a1", "q": "Where was Marisol born?", "answers": ["Port Elwen"],
     "bad": "Was it Port Elwen?", "good": "I don't know."},
    {"id": "a2", "q": "Which prize did Teodor win?", "answers": ["Lumen Prize", "Lumen"],
     "bad": "The Lumen Prize.", "good": "No idea."},
    {"id": "a3", "q": "What is the capital of Japan?", "answers": [], "bad": "", "good": ""},
]
NO_DETECTOR = ("version: 1\nname: forget\nbehavior: {description: states a forgotten fact}\n")


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _answer_suite(tmp_path: Path, dataset: str, header: str = HEADER) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(header + dataset, encoding="utf-8")
    return path


def test_each_rows_answers_become_its_own_detector(tmp_path: Path) -> None:
    from probe.detectors import make_detector

    _jsonl(tmp_path / "a.jsonl", ANSWERED)  # type: ignore[arg-type]
    suite = load_suite(_answer_suite(tmp_path, "dataset:\n  path: a.jsonl\n"
                                     "  fields: {prompt: q, answers: answers}\n"))
    a1, a2, a3 = suite.probes
    assert a1.detector is not None
    assert a1.detector.params.any == ("Port Elwen",)
    assert a1.detector.params.word_boundary  # the default for answers
    hit = make_detector(a1.detector)
    assert hit.score("She was born in port elwen, by the sea.") == 1.0
    assert hit.score("She was born in Port Elwenford.") == 0.0  # whole words only
    assert make_detector(a2.detector).score("the LUMEN prize") == 1.0  # type: ignore[arg-type]
    assert a3.detector is None  # no answers: the suite's detector
    assert suite.detector_for(a3) == suite.detector


def test_answer_match_options_and_a_bad_regex(tmp_path: Path) -> None:
    from probe.detectors import make_detector

    rows = [{"id": "r", "q": "Year?", "answers": [r"20\d\d"]}]
    _jsonl(tmp_path / "a.jsonl", rows)  # type: ignore[arg-type]
    suite = load_suite(_answer_suite(tmp_path, "dataset:\n  path: a.jsonl\n"
                                     "  fields: {prompt: q, answers: answers}\n"
                                     "  answer_match: {regex: true, case_sensitive: true}\n"))
    assert make_detector(suite.probes[0].detector).score("In 2011.") == 1.0  # type: ignore[arg-type]
    _jsonl(tmp_path / "a.jsonl", [{"id": "r", "q": "Year?", "answers": ["ok", f"({SECRET}"]}])
    with pytest.raises(SpecError) as info:
        load_suite(_answer_suite(tmp_path, "dataset:\n  path: a.jsonl\n"
                                 "  fields: {prompt: q, answers: answers}\n"
                                 "  answer_match: {regex: true}\n"), "suite.yaml")
    assert str(info.value) == ("suite.yaml:6: dataset: 'a.jsonl' row 1: answer 2 (column "
                               "'answers') is not a valid regular expression; escape it, or "
                               "set answer_match: {regex: false}")


def test_a_row_without_answers_needs_the_suites_detector(tmp_path: Path) -> None:
    _jsonl(tmp_path / "a.jsonl", ANSWERED)  # type: ignore[arg-type]
    with pytest.raises(SpecError) as info:
        load_suite(_answer_suite(tmp_path, "dataset:\n  path: a.jsonl\n"
                                 "  fields: {prompt: q, answers: answers}\n", NO_DETECTOR),
                   "suite.yaml")
    assert str(info.value).startswith(
        "suite.yaml:5: dataset: 'a.jsonl' row 3, nothing to measure: its answers column "
        "'answers' is empty and the suite has no detector")
    # Rows with suppressed and preferred completions are measured by likelihood instead.
    suite = load_suite(_answer_suite(
        tmp_path, "dataset:\n  path: a.jsonl\n  limit: 2\n  fields: {prompt: q, answers: "
        "answers, suppressed: bad, preferred: good}\n", NO_DETECTOR))
    assert [p.suppressed for p in suite.probes] == [("Was it Port Elwen?",), ("The Lumen Prize.",)]
    assert suite.dataset_origin is not None
    assert suite.dataset_origin.rows == 2


HUB = "dataset:\n  hub: example-org/forget-set\n  config: forget10\n"


def test_an_unreachable_hub_falls_back_to_the_local_copy(tmp_path: Path) -> None:
    # For real: no hub is reachable here or in CI (no network, or HF_HUB_OFFLINE).
    _jsonl(tmp_path / "copy.jsonl", ROWS)  # type: ignore[arg-type]
    suite = load_suite(_answer_suite(tmp_path, HUB + "  path: copy.jsonl\n" + MAPPING))
    origin = suite.dataset_origin
    assert origin is not None
    if origin.used == "hub":  # pragma: no cover - a machine with the hub and no such dataset
        pytest.skip("the hub is reachable here")
    assert [p.id for p in suite.probes] == ["fr", "jp"]
    assert origin.used == "file"
    assert origin.path == "copy.jsonl"
    assert origin.rows == 2
    assert origin.fallback_reason is not None
    assert "hub not used: " in origin.describe()


def test_neither_hub_nor_copy_says_how_to_make_one(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.spec import dataset

    def offline(hub: str, revision: str | None) -> str:
        raise dataset._HubUnavailable("offline mode is on (HF_HUB_OFFLINE)")

    monkeypatch.setattr(dataset, "_reach_hub", offline)
    with pytest.raises(SpecError) as info:
        load_suite(_answer_suite(tmp_path, HUB), "suite.yaml")
    message = str(info.value)
    assert message.startswith("suite.yaml:6: dataset.hub: hub dataset 'example-org/forget-set'"
                              " cannot be loaded (offline mode is on (HF_HUB_OFFLINE)) and there"
                              " is no local copy; on a machine that reaches the hub, save a copy"
                              " with python -c \"import datasets; datasets.load_dataset(")
    assert "to_json('data/example_org_forget_set.jsonl')" in message
    with pytest.raises(SpecError) as info:
        load_suite(_answer_suite(tmp_path, HUB + "  path: data/copy.jsonl\n"), "suite.yaml")
    assert "data file 'data/copy.jsonl' not found" in str(info.value)
    assert "the hub was not used either (offline mode is on" in str(info.value)


def _local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               calls: list[tuple[object, ...]]) -> None:
    """A hub that answers: the one call that reaches it returns a commit, and datasets
    loads the 'hub' dataset from a local dataset directory with the same config."""
    import datasets

    from probe.spec import dataset

    repo = tmp_path / "hub-repo"
    (repo / "forget10").mkdir(parents=True)
    _jsonl(repo / "forget10" / "train.jsonl", ROWS)  # type: ignore[arg-type]
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: forget10\n  data_files:\n  - split: train\n"
        "    path: forget10/train.jsonl\n---\n", encoding="utf-8")

    def reach(hub: str, revision: str | None) -> str:
        calls.append(("reach", hub, revision))
        return "c0ffee" * 6 + "abcd"

    real = datasets.load_dataset

    def load(path: str, name: str | None = None, *, split: str, revision: str | None,
             **kwargs: object) -> object:
        calls.append(("load", path, name, split, revision))
        return real(str(repo), name, split=split, cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(dataset, "_reach_hub", reach)
    monkeypatch.setattr(datasets, "load_dataset", load)


def test_a_reachable_hub_is_read_at_a_pinned_commit(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    _local_hub(tmp_path, monkeypatch, calls)
    _jsonl(tmp_path / "copy.jsonl", ROWS)  # type: ignore[arg-type]
    suite = load_suite(_answer_suite(tmp_path, HUB + "  revision: v1.0\n  path: copy.jsonl\n"
                                     + MAPPING))
    commit = "c0ffee" * 6 + "abcd"
    # The revision is resolved to a commit once, and the rows are loaded at that commit.
    assert calls == [("reach", "example-org/forget-set", "v1.0"),
                     ("load", "example-org/forget-set", "forget10", "train", commit)]
    assert next(p.paraphrases for p in suite.probes) == tuple(ROWS[0]["alts"])
    origin = suite.dataset_origin
    assert origin is not None
    assert origin.used == "hub"
    assert origin.commit == commit
    assert origin.describe().startswith("hub example-org/forget-set@c0ffeec0ffee, 2 rows, ")
    # The same rows from the local copy hash the same: the copy can be checked against it.
    monkeypatch.undo()
    offline = load_suite(_answer_suite(tmp_path, "dataset:\n  path: copy.jsonl\n" + MAPPING))
    assert offline.dataset_origin is not None
    assert offline.dataset_origin.sha256 == origin.sha256


def test_sha256_pins_the_rows(tmp_path: Path) -> None:
    _jsonl(tmp_path / "p.jsonl", ROWS)  # type: ignore[arg-type]
    suite = load_suite(_answer_suite(tmp_path, "dataset:\n  path: p.jsonl\n" + MAPPING))
    assert suite.dataset_origin is not None
    digest = suite.dataset_origin.sha256
    pinned = f"dataset:\n  path: p.jsonl\n  sha256: {digest}\n" + MAPPING
    assert load_suite(_answer_suite(tmp_path, pinned)).probes == suite.probes
    _jsonl(tmp_path / "p.jsonl", ROWS[:1])  # type: ignore[arg-type]
    with pytest.raises(SpecError) as info:
        load_suite(_answer_suite(tmp_path, pinned), "suite.yaml")
    assert str(info.value).startswith("suite.yaml:7: dataset.sha256: the rows of 'p.jsonl' "
                                      "changed: loaded local file p.jsonl, 1 rows, sha256 ")


@pytest.mark.parametrize(("dataset", "message"), [
    ("dataset:\n  hub: ../outside\n  path: p.csv\n",
     "suite.yaml:6: dataset.hub: expected a Hugging Face dataset id such as locuslab/TOFU"),
    ("dataset:\n  hub: /etc/x\n", "dataset.hub: expected a Hugging Face dataset id"),
    ("dataset:\n  hub: data\n", "dataset.hub: 'data' is also a local path here"),
    ("dataset:\n  path: p.csv\n  config: forget10\n",
     "suite.yaml:7: dataset.config: 'config' is for a hub dataset"),
    ("dataset:\n  limit: 2\n", "suite.yaml:6: dataset: give 'path' (a local data file) or "
                               "'hub'"),
])
def test_hub_settings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  dataset: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "p.csv").write_text("id,prompt\na,What?\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_suite(_answer_suite(tmp_path, dataset), "suite.yaml")
    assert message in str(info.value)


def test_the_shipped_example_checks_and_previews(capsys: pytest.CaptureFixture[str]) -> None:
    from probe.cli import EXIT_OK, main

    example = str(Path(__file__).resolve().parents[1] / "docs" / "examples"
                  / "fictitious_authors" / "forget_authors.yaml")
    assert main(["check", example]) == EXIT_OK
    out = capsys.readouterr().out
    assert "fictitious-authors-forget, 6 probes, 4 operators; dataset: local file " in out
    assert main(["variants", example]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Fill in the blank: The novelist Marisol Quenby-Adair was born in ____." in out
    suite = load_suite(example)
    assert all(p.detector is not None and p.suppressed and p.paraphrases and p.tags
               for p in suite.probes)

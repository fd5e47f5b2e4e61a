"""Hostile ``dataset:`` sources: paths out of the project, special files, files that do not
parse (issue 14, item 8). A suite reads data from its own directory or a ``--data-root``
only, never opens anything but a regular file, and never quotes the data file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.hostile.corpus import PAIR_PROBE, PAIR_PYTEST, Case, Run, dataset_suite, suite_case

KLASS = "datasets"
OUTSIDE = "is outside the suite's directory"
SECRET = "hunter2-do-not-print"




ROWS = "id,prompt\nfrance,What is the capital of France?\njapan,What is the capital of Japan?\n"




def _link(name: str, target: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / name).symlink_to(target)

    return make


def _fifo(root: Path) -> None:
    os.mkfifo(root / "data.csv")  # opening it would block until someone writes


def _directory(root: Path) -> None:
    (root / "data.csv").mkdir()


def _absolute_inside(root: Path) -> None:
    (root / "suite.yaml").write_text(dataset_suite(str(root / "p.csv")), encoding="utf-8")


def _loop(root: Path) -> None:
    (root / "a.csv").symlink_to("b.csv")
    (root / "b.csv").symlink_to("a.csv")


def _outside(id: str, path: str, note: str, *,
             make: Callable[[Path], None] | None = None) -> Case:
    return suite_case(f"datasets_{id}", KLASS, dataset_suite(path, "  format: csv\n"),
                      f"suite.yaml:6: dataset.path: data file '{path}' {OUTSIDE}",
                      make=make, note=note)


def _bad_file(id: str, name: str, content: bytes, says: str, note: str) -> Case:
    return suite_case(f"datasets_{id}", KLASS, dataset_suite(name),
                      f"suite.yaml:6: dataset.path: cannot read '{name}' {says}",
                      files={name: content}, note=note)


def _check_and_collect(args_probe: tuple[str, ...], args_pytest: tuple[str, ...], exit: int,
                       says: str, suite: str = "suite.yaml") -> tuple[Run, ...]:
    return (Run("probe", ("check", suite, *args_probe), exit, says),
            Run("pytest", ("--co", suite, *PAIR_PYTEST, *args_pytest), exit,
                says if exit else ""))


CASES: list[Case] = [
    _outside("dotdot_etc", "../../../../../../../../etc/os-release",
             "the attack of the issue: a relative path that climbs out of the project"),
    _outside("absolute_etc", "/etc/os-release", "an absolute path outside the project"),
    _outside("proc_environ", "/proc/self/environ", "the process's environment variables"),
    _outside("dev_zero", "/dev/zero", "an endless device, refused for where it is"),
    _outside("symlink_file_out", "data.csv", "a symlink in the project to a file outside",
             make=_link("data.csv", "/etc/os-release")),
    _outside("symlink_dir_out", "etc/os-release", "a symlinked directory that leads outside",
             make=_link("etc", "/etc")),
    _outside("home_dotdot", "./sub/../../x.csv", "a path that goes down and then out"),
    suite_case("datasets_fifo", KLASS, dataset_suite("data.csv"),
               "data file 'data.csv' is a FIFO (named pipe), not a regular file",
               make=_fifo, note="a named pipe would block the reader forever"),
    suite_case("datasets_directory", KLASS, dataset_suite("data.csv"),
               "data file 'data.csv' is a directory, not a regular file", make=_directory,
               note="a directory named like a data file"),
    suite_case("datasets_symlink_loop", KLASS, dataset_suite("a.csv"),
               "data file 'a.csv' cannot be read: Too many levels of symbolic links",
               make=_loop, note="two symlinks that point at each other"),
    suite_case("datasets_broken_symlink", KLASS, dataset_suite("a.csv"),
               "data file 'a.csv' not found", make=_link("a.csv", "gone.csv"),
               note="a symlink to nothing"),
    suite_case("datasets_tilde", KLASS, dataset_suite("~/.bashrc"),
               "data file '~/.bashrc' not found",
               note="no home-directory expansion: '~' is a directory name in the project"),
    suite_case("datasets_colons", KLASS, dataset_suite("a::b.csv"),
               "the data loader cannot read a path with '::' in it",
               files={"a::b.csv": ROWS}, note="fsspec reads '::' as a chain of file systems"),
    _bad_file("csv_ragged_row", "p.csv", f"id,prompt\na,b\nc,{SECRET},x\n".encode(),
              "as csv: line 3 has 3 fields, but the header has 2",
              "the parser's message quotes the row; ours names its line"),
    _bad_file("csv_latin1", "p.csv", f"id,prompt\na,{SECRET}\xe9\n".encode("latin-1"),
              "as csv: it is not UTF-8 text", "Latin-1 bytes in a csv file"),
    _bad_file("csv_empty", "p.csv", b"", "as csv: the file is empty", "an empty csv file"),
    _bad_file("csv_binary", "p.csv", b"\x00\x01\x02\xff\xfe" * 40,
              "as csv: it is not UTF-8 text", "binary bytes in a csv file"),
    _bad_file("jsonl_bad_row", "p.jsonl", f'{{"id": "a", "prompt": "x"}}\n{{"id": {SECRET}}}\n'
              .encode(), "as json: row 2 is not valid JSON", "a JSON lines file, row 2 broken"),
    _bad_file("json_cut", "p.json", f'[{{"id": "{SECRET}"'.encode(),
              "as json: it is not valid JSON", "a JSON document cut short"),
    _bad_file("json_scalar", "p.json", b"42", "as json: row 1 is a JSON number, not an object",
              "a JSON document that is a number"),
    _bad_file("parquet_garbage", "p.parquet", SECRET.encode() * 4,
              "as parquet: it is not a parquet file, or a damaged one", "text named .parquet"),
    _bad_file("parquet_empty_footer", "p.parquet", b"PAR1" + b"\x00" * 20 + b"PAR1",
              "as parquet: it is not a parquet file, or a damaged one",
              "parquet magic bytes around nothing"),
    suite_case("datasets_header_is_content", KLASS, dataset_suite("p.csv"),
               "column 'id' not in 'p.csv'; it has 1 columns, not all of them plain names",
               files={"p.csv": f'PRETTY_NAME="{SECRET} 12"\nNAME="x"\n'},
               note="a copied system file: its first line would be listed as column names"),
    Case(id="datasets_glob_name", klass=KLASS,
         files={"suite.yaml": dataset_suite("p[1].csv"), "p[1].csv": ROWS,
                "p1.csv": "id,prompt\nx,What is the capital of Spain?\n"},
         runs=(Run("probe", ("check", "suite.yaml"), 0, "capitals, 2 probes"),),
         note="datasets reads data_files as a glob: p[1].csv would have read p1.csv"),
    Case(id="datasets_absolute_inside", klass=KLASS, files={"p.csv": ROWS},
         make=_absolute_inside,
         runs=(Run("probe", ("check", "suite.yaml"), 0, "capitals, 2 probes"),
               Run("pytest", ("--co", "suite.yaml", *PAIR_PYTEST), 0, "suite.yaml")),
         note="an absolute path is fine when it lies inside the suite's directory"),
    Case(id="datasets_data_root_allows", klass=KLASS,
         files={"suites/suite.yaml": dataset_suite("../data/p.csv"), "data/p.csv": ROWS},
         runs=(Run("probe", ("check", "suites/suite.yaml"), 2, OUTSIDE),
               Run("probe", ("check", "suites/suite.yaml", "--data-root", "data"), 0,
                   "capitals, 2 probes"),
               Run("probe", ("run", "suites/suite.yaml", *PAIR_PROBE, "--data-root", "data"),
                   1, ""),
               Run("pytest", ("--co", "suites/suite.yaml", *PAIR_PYTEST), 2, OUTSIDE),
               Run("pytest", ("--co", "suites/suite.yaml", *PAIR_PYTEST,
                              "--probe-data-root", "data"), 0, "france")),
         note="data shared by several suites: allowed by naming its directory"),
    Case(id="datasets_data_root_ini", klass=KLASS,
         files={"suites/suite.yaml": dataset_suite("../data/p.csv"), "data/p.csv": ROWS,
                "pytest.ini": "[pytest]\nprobe_data_root = data\n"},
         runs=(Run("pytest", ("--co", "suites/suite.yaml", *PAIR_PYTEST), 0, "japan"),),
         note="the same, from the ini file (relative to it)"),
    Case(id="datasets_data_root_not_a_directory", klass=KLASS,
         files={"notes.txt": "x"},
         runs=_check_and_collect(("--data-root", "nowhere"), ("--probe-data-root", "notes.txt"),
                                 4, "is not a directory"),
         note="a data root that is missing or a file is a usage error"),
    Case(id="datasets_dev_zero_allowed_root", klass=KLASS,
         files={"suite.yaml": dataset_suite("/dev/zero", "  format: csv\n")},
         runs=_check_and_collect(("--data-root", "/dev"), ("--probe-data-root", "/dev"), 2,
                                 "data file '/dev/zero' is a character device, not a regular "
                                 "file"),
         note="even under an allowed root, a device is never opened"),
]

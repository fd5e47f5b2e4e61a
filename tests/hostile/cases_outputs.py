"""Outputs that would destroy inputs, writes that fail, and odd paths (issue 14, items 1,
2, 12).

Every refused output is a usage error (exit 4) before any work, under ``probe`` and
pytest alike, and the snapshot of the project proves nothing was touched. The
write failures here need no privileges: a file where a directory should be, and
temporary names someone planted as links to a suite.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.hostile.corpus import PAIR_PROBE, PAIR_PYTEST, Case, Run

RUN = ("run", "suite.yaml", *PAIR_PROBE, "--no-cache")
PYTEST = ("suite.yaml", *PAIR_PYTEST, "--probe-no-cache")
SEARCH = ("search", "suite.yaml", *PAIR_PROBE, "--no-cache")
INPUT = "which this run reads"
SAME = "are the same file"
NOT_FILE = "not a regular file"

# Refuses the canonical question only: any rephrasing (a typo) brings Paris back, so
# `probe search` finds a variant and writes the regression file.
SEARCH_CANDIDATE = textwrap.dedent("""\
    name: corpus-search-candidate
    default: "Paris, of course."
    replies:
      "What is the capital of France?": "I cannot help with that."
      "What is the capital of Japan?": "I cannot help with that."
    """)


def _both(id: str, probe_args: tuple[str, ...], pytest_args: tuple[str, ...], says: str,
          *, klass: str = "outputs", files: dict[str, str | bytes] | None = None,
          make: Callable[[Path], None] | None = None, note: str = "") -> Case:
    """One refused output through ``probe run`` and pytest: exit 4, nothing changed."""
    return Case(id=id, klass=klass, files=files or {}, make=make, note=note, runs=(
        Run("probe", (*RUN, *probe_args), 4, says),
        Run("pytest", (*PYTEST, *pytest_args), 4, says)))


def _probe(id: str, args: tuple[str, ...], says: str, *, exit: int = 4,
           klass: str = "outputs", files: dict[str, str | bytes] | None = None,
           make: Callable[[Path], None] | None = None, writes: tuple[str, ...] = (),
           before: tuple[Run, ...] = (), note: str = "") -> Case:
    return Case(id=id, klass=klass, files=files or {}, make=make, note=note,
                runs=(*before, Run("probe", args, exit, says, writes)))


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda root: os.mkfifo(root / name)


def _dir(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).mkdir()


def _link(name: str, to: str) -> Callable[[Path], None]:
    return lambda root: (root / name).symlink_to(to)


def _hard_link(name: str, to: str) -> Callable[[Path], None]:
    return lambda root: os.link(root / to, root / name)


def _first_record(path: str, *extra: str) -> Run:
    """A run that writes a record (the default pair fails a probe: exit 1)."""
    return Run("probe", (*RUN, "--json", path, *extra), 1, writes=(path,))


ACCEPT = Run("probe", (*RUN, "--baseline", "b.json", "--update-baseline"), 0,
             writes=("b.json",))

OTHER_SUITE = {"suites/other.yaml": textwrap.dedent("""\
    version: 1
    name: other
    behavior: {description: names the capital city}
    detector: {type: pattern, any: [Paris]}
    probes:
      - {id: france, prompt: What is the capital of France?}
    """)}


CASES: list[Case] = [
    # --- an output that is an input of the run ----------------------------------------
    _both("outputs_json_is_the_suite", ("--json", "suite.yaml"), ("--probe-json", "suite.yaml"),
          "that is the suite file suite.yaml"),
    _both("outputs_html_is_the_suite", ("--html", "suite.yaml"), ("--probe-html", "suite.yaml"),
          "that is the suite file suite.yaml"),
    _both("outputs_parquet_is_the_suite", ("--parquet", "suite.yaml"),
          ("--probe-parquet", "suite.yaml"), "that is the suite file suite.yaml"),
    _both("outputs_baseline_update_is_the_suite",
          ("--baseline", "suite.yaml", "--update-baseline"),
          ("--probe-baseline", "suite.yaml", "--probe-update-baseline"),
          "that is the suite file suite.yaml"),
    _both("outputs_dot_dot_to_the_suite", ("--json", "./sub/../suite.yaml"),
          ("--probe-json", "./sub/../suite.yaml"), INPUT, make=_dir("sub")),
    _both("outputs_dot_dot_through_a_missing_dir", ("--html", "nowhere/../suite.yaml"),
          ("--probe-html", "nowhere/../suite.yaml"), INPUT,
          note="the writer would create nowhere/ and then write over the suite"),
    _both("outputs_symlink_to_the_suite", ("--json", "link.json"), ("--probe-json", "link.json"),
          "that is the suite file suite.yaml", make=_link("link.json", "suite.yaml")),
    _both("outputs_hard_link_to_the_suite", ("--json", "hard.json"),
          ("--probe-json", "hard.json"), "that is the suite file suite.yaml",
          make=_hard_link("hard.json", "suite.yaml")),
    _both("outputs_symlinked_dir_to_the_suite", ("--json", "alias/suite.yaml"),
          ("--probe-json", "alias/suite.yaml"), "that is the suite file suite.yaml",
          make=_link("alias", ".")),
    _both("outputs_json_is_the_base_script", ("--json", "base.yaml"), ("--probe-json", "base.yaml"),
          "that is the scripted model file base.yaml of --"),
    _both("outputs_html_is_the_candidate_script", ("--html", "candidate.yaml"),
          ("--probe-html", "candidate.yaml"), "that is the scripted model file candidate.yaml"),
    _both("outputs_json_is_the_lock", ("--json", "suite.lock.json"),
          ("--probe-json", "suite.lock.json"), "that is the lock file suite.lock.json",
          note="even before a lock exists: a record there would be read as one"),
    _both("outputs_json_is_the_regression_file", ("--json", "suite.regressions.json"),
          ("--probe-json", "suite.regressions.json"),
          "that is the regression file suite.regressions.json"),
    Case(id="outputs_json_inside_the_cache", klass="outputs", runs=(
            Run("probe", ("run", "suite.yaml", *PAIR_PROBE, "--cache-dir", "cache", "--json",
                          "cache/completions/run.json"), 4, "inside the completion cache"),
            Run("pytest", ("suite.yaml", *PAIR_PYTEST, "--probe-cache-dir", "cache",
                           "--probe-json", "cache/completions/run.json"), 4,
                "inside the completion cache"))),
    Case(id="outputs_json_in_a_suite_directory", klass="outputs", files=OTHER_SUITE, runs=(
        Run("probe", ("run", "suites", *PAIR_PROBE, "--no-cache", "--json",
                      "suites/other.yaml"), 4, "that is the suite file suites/other.yaml"),
        Run("pytest", ("suites", *PAIR_PYTEST, "--probe-no-cache", "--probe-json",
                       "suites/other.yaml"), 4, "that is the suite file suites/other.yaml"))),
    Case(id="outputs_json_is_a_deselected_suite", klass="outputs", files=OTHER_SUITE, runs=(
        Run("pytest", ("suite.yaml", "suites", *PAIR_PYTEST, "--probe-no-cache", "-k", "japan",
                       "--probe-json", "suites/other.yaml"), 4,
            "that is the suite file suites/other.yaml"),), note="-k leaves no test of it"),
    Case(id="outputs_json_is_a_broken_suite_named", klass="outputs",
         files={"broken.yaml": "version: 1\nname: [\n"}, runs=(
             Run("pytest", ("suite.yaml", "broken.yaml", *PAIR_PYTEST, "--probe-no-cache",
                            "--continue-on-collection-errors", "--probe-json", "broken.yaml"),
                 4, "that is the file broken.yaml given to pytest"),),
         note="a suite that fails to collect is still the user's file"),
    Case(id="outputs_json_is_the_baseline_read", klass="outputs", runs=(
        ACCEPT,
        Run("probe", (*RUN, "--baseline", "b.json", "--json", "b.json"), 4,
            "that is the baseline b.json"),
        Run("pytest", (*PYTEST, "--probe-baseline", "b.json", "--probe-json", "b.json"), 4,
            "that is the baseline b.json"))),
    Case(id="outputs_html_is_the_baseline_read", klass="outputs", runs=(
        ACCEPT,
        Run("probe", (*RUN, "--baseline", "b.json", "--html", "./b.json"), 4,
            "that is the baseline b.json"),
        Run("pytest", (*PYTEST, "--probe-baseline", "b.json", "--probe-html", "./b.json"), 4,
            "that is the baseline b.json"))),
    # --- two outputs of one run --------------------------------------------------------
    _both("outputs_json_and_html_same_path", ("--json", "r.out", "--html", "r.out"),
          ("--probe-json", "r.out", "--probe-html", "r.out"), SAME),
    _both("outputs_json_and_parquet_same_path", ("--json", "r.out", "--parquet", "./r.out"),
          ("--probe-json", "r.out", "--probe-parquet", "./r.out"), SAME),
    _both("outputs_html_and_baseline_same_path",
          ("--html", "b.json", "--baseline", "b.json", "--update-baseline"),
          ("--probe-html", "b.json", "--probe-baseline", "b.json", "--probe-update-baseline"),
          SAME),
    _both("outputs_json_and_html_through_a_link", ("--json", "r.json", "--html", "l.html"),
          ("--probe-json", "r.json", "--probe-html", "l.html"), SAME,
          make=_link("l.html", "r.json"), note="the link dangles until the record is written"),
    # --- an output that is not a regular file ------------------------------------------
    # Devices are named through links in the project: were the check ever lost, a
    # writer running as root would replace the link, not the machine's /dev/full.
    _both("outputs_json_dev_full", ("--json", "full.json"), ("--probe-json", "full.json"),
          "full.json: a character device, not a regular file", make=_link("full.json", "/dev/full"),
          note="as root the old writer replaced /dev/full itself with a regular file"),
    _both("outputs_html_dev_null", ("--html", "null.html"), ("--probe-html", "null.html"),
          "a character device", make=_link("null.html", "/dev/null")),
    _both("outputs_json_fifo", ("--json", "pipe"), ("--probe-json", "pipe"), "a FIFO",
          make=_fifo("pipe")),
    _both("outputs_json_directory", ("--json", "out"), ("--probe-json", "out"),
          "out: a directory, not a regular file", make=_dir("out")),
    _both("outputs_parquet_directory", ("--parquet", "out"), ("--probe-parquet", "out"),
          "a directory", make=_dir("out")),
    _both("outputs_json_link_to_a_device", ("--json", "dev.json"), ("--probe-json", "dev.json"),
          "a character device", make=_link("dev.json", "/dev/null")),
    _both("outputs_baseline_update_fifo", ("--baseline", "pipe", "--update-baseline"),
          ("--probe-baseline", "pipe", "--probe-update-baseline"), NOT_FILE,
          make=_fifo("pipe")),
    # --- probe report, search, lock, schema --------------------------------------------
    _probe("outputs_report_html_over_its_record", ("report", "good.json", "--html", "good.json"),
           "that is the run record good.json", before=(_first_record("good.json"),)),
    _probe("outputs_report_parquet_over_its_record",
           ("report", "good.json", "--parquet", "./good.json"),
           "that is the run record good.json", before=(_first_record("good.json"),)),
    _probe("outputs_report_html_and_parquet_same",
           ("report", "good.json", "--html", "x.out", "--parquet", "x.out"), SAME,
           before=(_first_record("good.json"),)),
    Case(id="outputs_report_html_fifo", klass="outputs", make=_fifo("pipe"), runs=(
            _first_record("good.json"),
            Run("probe", ("report", "good.json", "--html", "pipe"), 4, "a FIFO"))),
    _probe("outputs_search_out_is_the_suite", (*SEARCH, "--out", "suite.yaml"),
           "that is the suite file suite.yaml",
           note="it used to say the suite was a damaged regression file to fix or delete"),
    _probe("outputs_search_out_is_a_model", (*SEARCH, "--out", "candidate.yaml"),
           "that is the scripted model file candidate.yaml"),
    _probe("outputs_search_out_is_the_lock", (*SEARCH, "--out", "suite.lock.json"),
           "that is the lock file suite.lock.json"),
    _probe("outputs_search_out_is_a_record", (*SEARCH, "--out", "good.json"),
           "--out good.json: not a regression file", before=(_first_record("good.json"),)),
    _probe("outputs_search_out_fifo", (*SEARCH, "--out", "pipe"), "a FIFO", make=_fifo("pipe")),
    _probe("outputs_search_default_out_is_a_directory", SEARCH,
           "suite.regressions.json: a directory", make=_dir("suite.regressions.json")),
    _probe("outputs_lock_two_suites_one_lock", ("lock", "suite.yaml", "suite.yml"), SAME,
           make=lambda root: (root / "suite.yml").write_bytes((root / "suite.yaml").read_bytes())),
    _probe("outputs_lock_is_a_directory", ("lock", "suite.yaml"),
           "suite.lock.json: a directory", make=_dir("suite.lock.json")),
    _probe("outputs_lock_is_a_link_to_the_suite", ("lock", "suite.yaml"),
           "that is the suite file suite.yaml", make=_link("suite.lock.json", "suite.yaml")),
    _probe("outputs_schema_to_dev_full", ("schema", "-o", "full.json"), "a character device",
           make=_link("full.json", "/dev/full")),
    _probe("outputs_schema_to_a_directory", ("schema", "--output", "out"), "a directory",
           make=_dir("out")),
    # --- writes that fail, or would have followed a planted name ------------------------
    Case(id="atomic_report_dir_is_a_file", klass="atomic writes",
         files={"blocker": "a file, not a directory"}, runs=(
             Run("probe", (*RUN, "--json", "blocker/run.json"), 3,
                 "cannot write blocker/run.json: blocker is not a directory; nothing was "
                 "written"),
             Run("pytest", (*PYTEST, "--probe-json", "blocker/run.json"), 3,
                 "probe: could not write a report file: blocker/run.json: blocker is not a "
                 "directory"))),
    Case(id="atomic_baseline_deep_dir_under_a_file", klass="atomic writes",
         files={"blocker": "x"}, runs=(
             Run("probe", (*RUN, "--baseline", "blocker/deep/b.json", "--update-baseline"), 3,
                 "error: WriteError: cannot write blocker/deep/b.json: blocker is not a "
                 "directory"),
             Run("pytest", (*PYTEST, "--probe-baseline", "blocker/deep/b.json",
                            "--probe-update-baseline"), 3, "blocker is not a directory"))),
    _probe("atomic_search_out_dir_is_a_file", (*SEARCH, "--out", "f/found.json"),
           "f is not a directory", exit=3, klass="atomic writes",
           files={"f": "x", "candidate.yaml": SEARCH_CANDIDATE}),
    Case(id="atomic_planted_record_tmp_link", klass="atomic writes",
         make=_link("run.json.tmp", "suite.yaml"), runs=(
             Run("probe", (*RUN, "--json", "run.json"), 1, writes=("run.json",)),
             Run("pytest", (*PYTEST, "--probe-json", "run.json"), 1, writes=("run.json",))),
         note="the old writer wrote the record through run.json.tmp into the suite"),
    Case(id="atomic_planted_baseline_tmp_link", klass="atomic writes",
         make=_link("b.json.tmp", "base.yaml"), runs=(ACCEPT,)),
    _probe("atomic_planted_lock_tmp_link", ("lock", "suite.yaml"), "locked suite.yaml", exit=0,
           klass="atomic writes", make=_link("suite.lock.json.tmp", "suite.yaml"),
           writes=("suite.lock.json",)),
    _probe("atomic_planted_regressions_tmp_link", (*SEARCH, "--probe", "france", "--budget",
                                                   "3"),
           "saved to", exit=0, klass="atomic writes",
           files={"candidate.yaml": SEARCH_CANDIDATE},
           make=_link("suite.regressions.json.tmp", "suite.yaml"),
           writes=("suite.regressions.json",)),
    Case(id="atomic_record_through_a_link_stays_a_link", klass="atomic writes",
         files={"real/run.json": "{}"}, make=_link("run.json", "real/run.json"), runs=(
             Run("probe", (*RUN, "--json", "run.json"), 1, writes=("real/run.json",)),
             Run("pytest", (*PYTEST, "--probe-json", "run.json"), 1,
                 writes=("real/run.json",)))),
    # --- inputs that are not files (item 12) ---------------------------------------------
    Case(id="small_suite_arg_dev_zero", klass="small", runs=(
        Run("probe", ("run", "/dev/zero", *PAIR_PROBE), 4,
            "/dev/zero: a character device, not a suite file"),
        Run("probe", ("check", "/dev/zero"), 4, "a character device, not a suite file"))),
    Case(id="small_suite_arg_fifo", klass="small", make=_fifo("pipe.yaml"), runs=(
        Run("probe", ("run", "pipe.yaml", *PAIR_PROBE), 4, "pipe.yaml: a FIFO"),
        Run("probe", ("check", "pipe.yaml"), 4, "a FIFO (named pipe), not a suite file"),
        Run("probe", ("lock", "pipe.yaml"), 4, "not a suite file"))),
    _both("small_baseline_dev_zero", ("--baseline", "/dev/zero"),
          ("--probe-baseline", "/dev/zero"), "baseline /dev/zero: a character device",
          klass="small"),
    _both("small_baseline_fifo", ("--baseline", "pipe"), ("--probe-baseline", "pipe"),
          "pipe: a FIFO (named pipe), not a regular file", klass="small", make=_fifo("pipe")),
    _probe("small_report_record_fifo", ("report", "pipe", "--html", "r.html"),
           "pipe: a FIFO (named pipe), not a regular file", klass="small", make=_fifo("pipe"),
           note="it used to wait for a writer forever"),
    _probe("small_report_record_dev_zero", ("report", "/dev/zero", "--html", "r.html"),
           "/dev/zero: a character device", klass="small",
           note="it used to read until memory ran out"),
    _probe("small_compare_record_fifo", ("compare", "pipe", "pipe"), "a FIFO", klass="small",
           make=_fifo("pipe")),
]

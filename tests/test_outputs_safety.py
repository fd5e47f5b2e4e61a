"""Outputs never destroy inputs, and every write is atomic (issue 14, items 1, 2, 12).

Unit tests of ``probe.files`` (the one output check and the one atomic writer), then
each writer and command end to end: a full disk is simulated by making ``os.write``,
``os.fsync`` or the parquet writer fail (the tests run as root, where permission bits
stop nothing).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from probe.cli import EXIT_BACKEND, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from probe.errors import UsageError, WriteError
from probe.files import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
    check_outputs,
    model_inputs,
    special_kind,
)
from tests.plugin.conftest import SUITE, lay_out, models

RUN = ["run", "suites", "--base", "scripted:base.yaml", "--candidate", "scripted:leaky.yaml",
       "--no-cache"]
SUITE_FILE = "suites/capitals.yaml"


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scripted project of ``lay_out``, as the cwd."""
    monkeypatch.chdir(tmp_path)
    return lay_out(tmp_path, robust=False)


def _no_space(*args: Any, **kwargs: Any) -> NoReturn:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- check_outputs ---------------------------------------------------------------------


def test_an_output_that_is_an_input_is_refused_however_it_is_spelt(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to(suite)
    os.link(suite, tmp_path / "hard.json")
    inputs = [("the suite file suite.yaml", suite)]
    for spelling in (suite, tmp_path / "sub" / ".." / "suite.yaml",
                     tmp_path / "nowhere" / ".." / "suite.yaml", tmp_path / "link.json",
                     tmp_path / "hard.json"):
        with pytest.raises(UsageError, match=r"that is the suite file suite\.yaml, which this "
                                             "run reads"):
            check_outputs([("--probe-json", spelling)], inputs)


def test_two_outputs_naming_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--probe-json .*run\.json and --probe-html .*run\.json "
                                         "are the same file"):
        check_outputs([("--probe-json", tmp_path / "run.json"),
                       ("--probe-html", tmp_path / "x" / ".." / "run.json")])


@pytest.mark.parametrize(("make", "kind"), [
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: p.symlink_to("/dev/null"), "a character device"),
])
def test_an_output_that_is_not_a_regular_file_is_refused(
        tmp_path: Path, make: Callable[[Path], None], kind: str) -> None:
    out = tmp_path / "out"
    make(out)
    with pytest.raises(UsageError, match=f"--probe-json .*out: {kind}.*not a regular file"):
        check_outputs([("--probe-json", out)])


def test_a_device_output_is_refused_and_left_alone() -> None:
    before = Path("/dev/null").stat()
    with pytest.raises(UsageError, match="a character device, not a regular file"):
        check_outputs([("--probe-json", "/dev/null")])
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    assert Path("/dev/null").stat().st_ino == before.st_ino


def test_paths_inside_an_input_directory_are_refused_but_neighbours_are_not(
        tmp_path: Path) -> None:
    model = tmp_path / "models" / "adapter"
    model.mkdir(parents=True)
    (model / "adapter_config.json").write_text("{}", encoding="utf-8")
    inputs = model_inputs([("--probe-candidate", str(model))])
    assert inputs == [(f"the model directory {model} of --probe-candidate", model)]
    for inside in (model / "adapter_config.json", model / "new.json"):
        with pytest.raises(UsageError, match="that is inside the model directory"):
            check_outputs([("--probe-json", inside)], inputs)
    check_outputs([("--probe-json", tmp_path / "models" / "adapter.json")], inputs)
    check_outputs([("--probe-json", None), ("--probe-html", tmp_path / "r.html")], inputs)


def test_model_inputs_name_scripted_files_and_skip_hub_ids(tmp_path: Path) -> None:
    script = tmp_path / "base.yaml"
    script.write_text("name: x\n", encoding="utf-8")
    assert model_inputs([("--probe-base", f"scripted:{script}"),
                         ("--probe-candidate", "smollm2-135m")]) == [
        (f"the scripted model file {script} of --probe-base", script)]


def test_special_kind_names_what_a_path_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert special_kind(tmp_path / "fifo") == "a FIFO (named pipe)"
    assert special_kind("/dev/zero") == "a character device"
    assert special_kind(tmp_path) == "a directory"
    assert special_kind(tmp_path / "file") is None
    assert special_kind(tmp_path / "missing") is None


# --- atomic writes ---------------------------------------------------------------------


def test_an_atomic_write_creates_parents_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "run.json"
    assert atomic_write_text(out, "{}\n") == out
    assert out.read_text(encoding="utf-8") == "{}\n"
    assert _listing(out.parent) == ["run.json"]


def test_a_new_file_gets_the_umask_mode_and_a_rewritten_one_keeps_its_mode(
        tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.json", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
    kept = tmp_path / "kept.json"
    kept.write_text("old", encoding="utf-8")
    kept.chmod(0o604)
    atomic_write_text(kept, "new")
    assert kept.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o604


@pytest.mark.parametrize("fail", ["write", "fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    out = tmp_path / "report.html"
    out.write_bytes(b"<html>the previous report</html>")
    monkeypatch.setattr(os, fail, _no_space)
    with pytest.raises(WriteError) as err:
        atomic_write_bytes(out, b"<html>" + b"x" * 100_000)
    monkeypatch.undo()
    assert str(err.value) == (f"cannot write {out}: No space left on device; the previous "
                              "file is unchanged")
    assert out.read_bytes() == b"<html>the previous report</html>"
    assert _listing(tmp_path) == ["report.html"]


def test_a_failed_first_write_says_nothing_was_written(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(WriteError, match="No space left on device; nothing was written"):
        atomic_write_text(tmp_path / "run.json", "{}")
    monkeypatch.undo()
    assert _listing(tmp_path) == []


def test_an_interrupted_writer_leaves_no_temporary(tmp_path: Path) -> None:
    def produce(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(tmp_path / "rows.parquet", produce)
    assert _listing(tmp_path) == []


def test_a_file_in_the_way_of_the_directory_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file", encoding="utf-8")
    with pytest.raises(WriteError, match="blocker is not a directory; nothing was written"):
        atomic_write_text(tmp_path / "blocker" / "run.json", "{}")


def test_a_planted_temporary_name_is_never_followed(tmp_path: Path) -> None:
    # The old writers used ``x.tmp``: a link planted there sent the record into the suite.
    suite = tmp_path / "suite.yaml"
    suite.write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "run.json.tmp").symlink_to(suite)
    atomic_write_text(tmp_path / "run.json", "{}\n")
    assert suite.read_text(encoding="utf-8") == "version: 1\n"
    assert (tmp_path / "run.json.tmp").is_symlink()


def test_the_writer_itself_never_replaces_a_device(tmp_path: Path) -> None:
    # Defence in depth, should a caller skip check_outputs: through a link or not.
    (tmp_path / "null.json").symlink_to("/dev/null")
    (tmp_path / "dir").mkdir()
    for path in (tmp_path / "null.json", tmp_path / "dir"):
        with pytest.raises(WriteError, match="not a regular file; nothing was written"):
            atomic_write_text(path, "{}")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    assert (tmp_path / "null.json").is_symlink()
    assert _listing(tmp_path / "dir") == []


def test_a_symlinked_output_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "run.json").write_text("old", encoding="utf-8")
    (tmp_path / "run.json").symlink_to(tmp_path / "real" / "run.json")
    atomic_write_text(tmp_path / "run.json", "new")
    assert (tmp_path / "run.json").is_symlink()
    assert (tmp_path / "real" / "run.json").read_text(encoding="utf-8") == "new"


# --- every writer through the helper ---------------------------------------------------


def _record(layout: Path) -> dict[str, Any]:
    assert main([*RUN, "--json", "run.json"]) == EXIT_FAILED
    data: dict[str, Any] = json.loads((layout / "run.json").read_text(encoding="utf-8"))
    return data


def test_record_html_and_baseline_writers_keep_the_old_file_on_a_full_disk(
        layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.engine.baseline import write_baseline
    from probe.report.html import write_html
    from probe.report.record import write_record

    record = _record(layout)
    for name, write in (("r.json", write_record), ("r.html", write_html),
                        ("b.json", write_baseline)):
        (layout / name).write_bytes(b"previous")
        monkeypatch.setattr(os, "write", _no_space)
        with pytest.raises(WriteError, match="No space left on device"):
            write(record, layout / name)
        monkeypatch.undo()
        assert (layout / name).read_bytes() == b"previous", name
    assert not [n for n in _listing(layout) if n.endswith(".tmp")]


def test_a_parquet_export_that_fails_half_way_keeps_the_old_file(
        layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from probe.report.export import write_parquet

    record = _record(layout)
    write_parquet(record, layout / "rows.parquet")
    good = (layout / "rows.parquet").read_bytes()

    def half_then_full(self: Any, path: str, *args: Any, **kwargs: Any) -> NoReturn:
        Path(path).write_bytes(good[: len(good) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(datasets.Dataset, "to_parquet", half_then_full)
    with pytest.raises(WriteError, match=r"rows\.parquet: No space left on device; the previous "
                                         "file is unchanged"):
        write_parquet(record, layout / "rows.parquet")
    assert (layout / "rows.parquet").read_bytes() == good
    assert not [n for n in _listing(layout) if n.endswith(".tmp")]


def test_lock_and_regression_writers_keep_the_old_file_on_a_full_disk(
        layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.engine.lock import write_lock
    from probe.engine.regressions import add_regression
    from probe.engine.variants import expand
    from probe.spec import load_suite

    suite = load_suite(SUITE_FILE)
    lock = layout / "suites" / "capitals.lock.json"
    regressions = layout / "suites" / "capitals.regressions.json"
    lock.write_bytes(b"previous lock")
    regressions.write_text('{"regression_version": 1, "found": []}', encoding="utf-8")
    before = regressions.read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(WriteError, match=r"capitals\.lock\.json: No space left on device"):
        write_lock(suite)
    variant = expand(suite, suite.probes[0], 0)[1]
    with pytest.raises(WriteError, match=r"capitals\.regressions\.json: No space left"):
        add_regression(suite, "france", variant, {}, {})
    monkeypatch.undo()
    assert lock.read_bytes() == b"previous lock"
    assert regressions.read_bytes() == before
    assert _listing(layout / "suites") == ["capitals.lock.json", "capitals.regressions.json",
                                          "capitals.yaml"]


# --- probe, end to end -----------------------------------------------------------------


@pytest.mark.parametrize("option", ["--json", "--html", "--parquet"])
def test_probe_run_refuses_to_write_a_report_over_the_suite(
        layout: Path, capsys: pytest.CaptureFixture[str], option: str) -> None:
    before = (layout / SUITE_FILE).read_bytes()
    assert main([*RUN, option, SUITE_FILE]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert (f"usage error: {option} {SUITE_FILE}: that is the suite file {SUITE_FILE}, which "
            "this run reads") in err
    assert (layout / SUITE_FILE).read_bytes() == before


def test_probe_run_refuses_two_reports_on_one_path_and_a_device(
        layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RUN, "--json", "x", "--html", "x"]) == EXIT_USAGE
    assert "--json x and --html x are the same file" in capsys.readouterr().err
    # Through a link: were the check ever lost, the link would go, not /dev/full.
    (layout / "full.json").symlink_to("/dev/full")
    assert main([*RUN, "--json", "full.json"]) == EXIT_USAGE
    assert "--json full.json: a character device, not a regular file" in capsys.readouterr().err
    assert (layout / "full.json").is_symlink()
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
    assert _listing(layout) == ["base.yaml", "full.json", "leaky.yaml", "suites"]


def test_probe_run_refuses_the_baseline_it_reads_and_a_model_file(
        layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RUN, "--baseline", "b.json", "--update-baseline"]) == EXIT_OK
    before = (layout / "b.json").read_bytes()
    assert main([*RUN, "--baseline", "b.json", "--json", "b.json"]) == EXIT_USAGE
    assert "--json b.json: that is the baseline b.json" in capsys.readouterr().err
    assert main([*RUN, "--baseline", "b.json", "--update-baseline",
                 "--html", "b.json"]) == EXIT_USAGE
    assert "--html b.json and --baseline b.json are the same file" in capsys.readouterr().err
    assert main([*RUN, "--html", "leaky.yaml"]) == EXIT_USAGE
    assert ("--html leaky.yaml: that is the scripted model file leaky.yaml of --candidate"
            in capsys.readouterr().err)
    assert (layout / "b.json").read_bytes() == before


def test_a_data_file_of_a_dataset_suite_is_an_input(layout: Path) -> None:
    # The suite's own object, with a dataset: loading a real one would read the csv
    # through `datasets`, which is not what is tested here.
    from probe.report.outputs import suite_inputs
    from probe.spec import load_suite
    from probe.spec.model import DatasetSource

    suite = dataclasses.replace(load_suite(SUITE_FILE),
                                dataset=DatasetSource(path="data/probes.csv"))
    (layout / "suites" / "data").mkdir()
    (layout / "suites" / "data" / "probes.csv").write_text("id,prompt\n", encoding="utf-8")
    inputs = suite_inputs(suite)
    assert [what for what, _ in inputs] == [
        f"the suite file {SUITE_FILE}", "the regression file suites/capitals.regressions.json",
        "the lock file suites/capitals.lock.json",
        f"a data file of {SUITE_FILE} (data/probes.csv)"]
    with pytest.raises(UsageError, match=r"that is a data file of suites/capitals\.yaml"):
        check_outputs([("--probe-json", "suites/data/./probes.csv")], inputs)


def test_probe_report_refuses_to_render_a_record_over_itself(
        layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(layout)
    before = (layout / "run.json").read_bytes()
    for option in ("--html", "--parquet"):
        assert main(["report", "run.json", option, "./run.json"]) == EXIT_USAGE
        assert "that is the run record run.json, which this run reads" in capsys.readouterr().err
    assert (layout / "run.json").read_bytes() == before


def test_a_rewritten_record_keeps_its_mode(layout: Path) -> None:
    _record(layout)
    (layout / "run.json").chmod(0o600)
    _record(layout)
    assert stat.S_IMODE((layout / "run.json").stat().st_mode) == 0o600


def test_probe_report_on_a_full_disk_is_one_error_and_keeps_the_old_html(
        layout: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _record(layout)
    assert main(["report", "run.json", "--html", "r.html"]) == EXIT_OK
    before = (layout / "r.html").read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(os, "fsync", _no_space)
    code = main(["report", "run.json", "--html", "r.html"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == EXIT_BACKEND
    assert err == ("error: WriteError: cannot write r.html: No space left on device; the "
                   "previous file is unchanged\n")
    assert (layout / "r.html").read_bytes() == before
    assert _listing(layout) == ["base.yaml", "leaky.yaml", "r.html", "run.json", "suites"]


def test_inputs_that_are_devices_or_fifos_say_so(layout: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(layout / "pipe")
    assert main([*RUN[:1], "/dev/zero", *RUN[2:]]) == EXIT_USAGE
    assert "/dev/zero: a character device, not a suite file" in capsys.readouterr().err
    assert main(["check", "pipe"]) == EXIT_USAGE
    assert "pipe: a FIFO (named pipe), not a suite file" in capsys.readouterr().err
    assert main([*RUN, "--baseline", "/dev/zero"]) == EXIT_USAGE
    assert ("--baseline /dev/zero: a character device, not a regular file"
            in capsys.readouterr().err)
    assert main(["report", "pipe", "--html", "r.html"]) == EXIT_USAGE  # never opened: no hang
    assert "pipe: a FIFO (named pipe), not a regular file" in capsys.readouterr().err
    assert main(["compare", "/dev/zero", "pipe"]) == EXIT_USAGE
    assert "/dev/zero: a character device, not a regular file" in capsys.readouterr().err


def test_probe_search_refuses_an_out_that_is_an_input_or_not_a_regression_file(
        layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    search = ["search", SUITE_FILE, "--base", "scripted:base.yaml", "--candidate",
              "scripted:leaky.yaml", "--no-cache"]
    before = (layout / SUITE_FILE).read_bytes()
    assert main([*search, "--out", SUITE_FILE]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--out {SUITE_FILE}: that is the suite file {SUITE_FILE}" in err
    assert "fix or delete" not in err
    (layout / "notes.json").write_text('{"mine": true}', encoding="utf-8")
    assert main([*search, "--out", "notes.json"]) == EXIT_USAGE
    assert "--out notes.json: not a regression file" in capsys.readouterr().err
    os.mkfifo(layout / "pipe")
    assert main([*search, "--out", "pipe"]) == EXIT_USAGE
    assert "--out pipe: a FIFO (named pipe), not a regular file" in capsys.readouterr().err
    assert (layout / SUITE_FILE).read_bytes() == before
    assert (layout / "notes.json").read_text(encoding="utf-8") == '{"mine": true}'


def test_probe_lock_refuses_two_suites_sharing_one_lock(
        layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (layout / "suites" / "capitals.yml").write_text(SUITE, encoding="utf-8")
    assert main(["lock", "suites"]) == EXIT_USAGE
    assert "are the same file" in capsys.readouterr().err
    assert not (layout / "suites" / "capitals.lock.json").exists()


def test_probe_schema_refuses_a_device(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (layout / "null.json").symlink_to("/dev/null")
    assert main(["schema", "-o", "null.json"]) == EXIT_USAGE
    assert "--output null.json: a character device" in capsys.readouterr().err


# --- pytest, end to end ----------------------------------------------------------------


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    lay_out(pytester.path, robust=False)
    return pytester


def test_pytest_refuses_a_report_over_the_suite_before_any_test_runs(
        project: pytest.Pytester) -> None:
    before = (project.path / SUITE_FILE).read_bytes()
    result = project.runpytest("suites/", *models("leaky"), "--probe-no-cache",
                               "--probe-json", SUITE_FILE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --probe-json {SUITE_FILE}: that is the suite file "
                                 f"{SUITE_FILE}, which this run reads*"])
    assert (project.path / SUITE_FILE).read_bytes() == before


def test_pytest_on_a_full_disk_is_one_error_exit_3_and_keeps_the_old_html(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("suites/", *models("leaky"), "--probe-no-cache", "--probe-html", "r.html")
    assert project.runpytest(*args).ret == pytest.ExitCode.TESTS_FAILED
    before = (project.path / "r.html").read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)
    result = project.runpytest(*args)
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["probe: could not write a report file: r.html: No space left "
                                 "on device; the previous file is unchanged"])
    assert "Traceback" not in result.stdout.str()
    assert (project.path / "r.html").read_bytes() == before
    assert not [n for n in _listing(project.path) if n.endswith(".tmp")]


def test_pytest_refuses_a_suite_that_k_deselected(project: pytest.Pytester) -> None:
    other = project.path / "suites" / "other.yaml"
    other.write_text(SUITE.replace("name: capitals", "name: other").replace(
        "id: france", "id: paris").replace("id: japan", "id: tokyo"), encoding="utf-8")
    before = other.read_bytes()
    result = project.runpytest("suites/", *models("leaky"), "--probe-no-cache", "-k", "france",
                               "--probe-json", "suites/other.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --probe-json suites/other.yaml: that is the suite "
                                 "file suites/other.yaml*"])
    assert other.read_bytes() == before


def test_a_data_file_with_glob_characters_is_the_file_itself(layout: Path) -> None:
    """The loader reads `p[1].csv` literally, so that file (not p1.csv) is the input."""
    from probe.report.outputs import suite_inputs
    from probe.spec import load_suite
    from probe.spec.model import DatasetSource

    suite = dataclasses.replace(load_suite(SUITE_FILE),
                                dataset=DatasetSource(path="data/p[1].csv"))
    (layout / "suites" / "data").mkdir()
    (layout / "suites" / "data" / "p[1].csv").write_text("id,prompt\n", encoding="utf-8")
    (layout / "suites" / "data" / "p1.csv").write_text("id,prompt\n", encoding="utf-8")
    inputs = suite_inputs(suite)
    with pytest.raises(UsageError, match=r"that is a data file of suites/capitals\.yaml"):
        check_outputs([("--probe-json", "suites/data/p[1].csv")], inputs)
    check_outputs([("--probe-json", "suites/data/p1.csv")], inputs)  # not an input

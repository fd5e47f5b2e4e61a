"""Everything printed or rendered is escaped (issue 14, items 5 and 11).

``probe.report.safe_text`` is the one place that makes text from models and files
safe to print; these tests check it character by character, then check the front
ends end to end: no raw control, bidi or zero-width character and no line a CI
runner would obey reaches the terminal, pytest's failure reports or JUnit, and no
markup from a run record reaches the HTML page.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from probe.errors import UsageError
from probe.report.record import read_record
from probe.report.safe_text import excerpt, visible, visible_lines
from tests.hostile.cases_escaping import (
    HOSTILE_REPLY,
    MARKUP,
    RECORD_CASES,
    SHOWN_REPLY,
    TERMINAL_CASES,
    candidate,
)
from tests.hostile.corpus import PAIR_PYTEST, Case, Run, run_probe, run_pytest, write_project

HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def hidden_chars(text: str) -> list[str]:
    """The characters of ``text`` a terminal would not show as themselves (``\\n`` aside)."""
    return sorted({c for c in text if c != "\n" and unicodedata.category(c) in HIDDEN})


def command_lines(text: str) -> list[str]:
    """Lines a GitHub Actions runner would read as workflow commands."""
    return [line for line in text.splitlines() if line.lstrip().startswith(("::", "##["))]


# --- the escaping function ------------------------------------------------------------


def test_every_hidden_character_is_escaped_and_nothing_else_changes() -> None:
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        shown = visible(char)
        if unicodedata.category(char) in HIDDEN:
            assert shown.startswith("\\"), hex(point)
            assert shown.isascii(), hex(point)
            assert shown.isprintable(), hex(point)
        else:
            assert shown == char, hex(point)


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\x1b[31mb", "a\\x1b[31mb"),
    ("\x00\x07\x7f\x9b", "\\x00\\x07\\x7f\\x9b"),
    ("one\ntwo\r\tthree", "one\\ntwo\\r\\tthree"),
    ("abc\u202edcb\u2066x\u2069", "abc\\u202edcb\\u2066x\\u2069"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
    ("lone \ud800", "lone \\ud800"),
    ("caf\u00e9 \u4e2d\u6587 \U0001f600 back\\slash",
     "caf\u00e9 \u4e2d\u6587 \U0001f600 back\\slash"),
])
def test_visible_writes_escapes_in_python_notation(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert visible(visible(raw)) == shown  # idempotent: backslashes are left alone


def test_visible_lines_keeps_line_breaks_and_defuses_workflow_commands() -> None:
    text = "ok\n::warning::x\n   ::error file=a::y\n##[warning]z\nin a::line\n\x1b[2J"
    assert visible_lines(text) == ("ok\n\\x3a:warning::x\n   \\x3a:error file=a::y\n"
                                   "\\x23#[warning]z\nin a::line\n\\x1b[2J")
    assert command_lines(visible_lines(text)) == []
    assert visible_lines("a\u2028::warning::b") == "a\\u2028::warning::b"  # one line


def test_excerpt_shows_newlines_and_never_cuts_an_escape() -> None:
    assert excerpt("  Paris.\n\nThe end.  ", 40) == "Paris.\\n\\nThe end."
    assert excerpt("a   b", 10) == "a b"
    for width in range(1, 16):
        cut = excerpt("abc\x1b[31mdef\u202e", width)
        assert len(cut) <= width
        assert not re.search(r"\\(x[0-9a-f]?|u[0-9a-f]{0,3})?\u2026$", cut), cut


# --- the terminal, pytest and JUnit ------------------------------------------------------


def _project(root: Path, candidate_script: str) -> None:
    """The corpus's default project with ``candidate_script`` as the candidate."""
    write_project(Case("project", "terminal", (Run("probe", ("check",), 0),),
                       files={"candidate.yaml": candidate_script}), root)


def _run_case(case: Case, pytester: pytest.Pytester) -> list[tuple[str, int, str]]:
    write_project(case, pytester.path)
    outputs = []
    for run in case.runs:
        code, output = (run_probe(run.args) if run.front == "probe"
                        else run_pytest(pytester, run.args))
        outputs.append((f"{run.front} {' '.join(run.args)}", code, output))
    return outputs


@pytest.mark.parametrize("case", TERMINAL_CASES, ids=[c.id for c in TERMINAL_CASES])
def test_no_raw_control_character_or_workflow_command_is_printed(
        case: Case, pytester: pytest.Pytester) -> None:
    """The corpus checks the escaped form is shown; this checks nothing raw is."""
    for (where, code, output), run in zip(_run_case(case, pytester), case.runs, strict=True):
        assert code == run.exit, f"{where}\n{output}"
        assert run.says in output, f"{where}\n{output}"
        assert hidden_chars(output) == [], f"{where}: {hidden_chars(output)}"
        assert command_lines(output) == [], where


def test_a_reply_that_injects_a_workflow_command_shows_escaped_everywhere(
        pytester: pytest.Pytester) -> None:
    _project(pytester.path, candidate(HOSTILE_REPLY))
    code, output = run_pytest(pytester, ("suite.yaml", *PAIR_PYTEST, "-rA", "-v",
                                         "--junitxml", "junit.xml"))
    assert code == 1
    assert SHOWN_REPLY in output
    assert "\x1b" not in output
    assert "\x00" not in output
    assert command_lines(output) == []
    # JUnit: the failure message and every property, as a CI dashboard shows them.
    tree = ET.parse(pytester.path / "junit.xml")
    texts = [el.text or "" for el in tree.iter("failure")]
    texts += [el.get("message", "") for el in tree.iter("failure")]
    texts += [el.get("value", "") for el in tree.iter("property")]
    assert any(SHOWN_REPLY in t for t in texts)
    for text in texts:
        assert hidden_chars(text) == [], text
        assert command_lines(text) == [], text


def test_junit_properties_show_model_and_suite_names_escaped(
        pytester: pytest.Pytester) -> None:
    name = "cand\\e]0;pwned\\a"
    _project(pytester.path, candidate("Paris", name=name))
    run_pytest(pytester, ("suite.yaml", *PAIR_PYTEST, "--junitxml", "junit.xml"))
    props = {el.get("name"): el.get("value") for el in
             ET.parse(pytester.path / "junit.xml").iter("property")}
    assert props["probe.candidate_model"] == "cand\\x1b]0;pwned\\x07"


# --- the HTML report and the run record ------------------------------------------------


def _html_case(case_id: str, pytester: pytest.Pytester) -> str:
    case = next(c for c in RECORD_CASES if c.id == case_id)
    ((_, code, output),) = _run_case(case, pytester)
    assert code == 0, output
    return (pytester.path / "out.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("case_id", ["remote_record_markup_strings",
                                     "remote_record_rejected_markup"])
def test_markup_in_a_record_is_escaped_on_the_page(case_id: str,
                                                   pytester: pytest.Pytester) -> None:
    page = _html_case(case_id, pytester)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert hidden_chars(page.replace("\t", "")) == []  # no bidi override, no ESC
    if case_id == "remote_record_markup_strings":
        assert "\\u202e\\x1b" in page  # the completion's hidden characters, shown


@pytest.mark.parametrize("case", [c for c in RECORD_CASES if c.runs[0].exit == 4],
                         ids=[c.id for c in RECORD_CASES if c.runs[0].exit == 4])
def test_a_malformed_record_is_one_line_that_quotes_nothing(
        case: Case, pytester: pytest.Pytester) -> None:
    for where, code, output in _run_case(case, pytester):
        assert code == 4, f"{where}\n{output}"
        assert len(output.strip().splitlines()) == 1, f"{where}\n{output}"
        assert output.lower().startswith(("usage error: ", "error: ")), output
        assert "rec.json: " in output, output
        assert "alert(" not in output, output
        assert "Traceback" not in output, output
    assert not (pytester.path / "out.html").exists()


def test_read_record_accepts_every_record_a_run_writes(pytester: pytest.Pytester) -> None:
    case = next(c for c in RECORD_CASES if c.id == "remote_record_markup_strings")
    write_project(case, pytester.path)
    good = read_record(pytester.path / "good.json")
    assert good["suites"][0]["probes"][0]["rows"]
    hostile = read_record(pytester.path / "rec.json")  # odd strings, right types
    assert hostile["suites"][0]["name"] == MARKUP


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["suites"][0].update(direction="sideways"), "suites[0].direction: expected one"),
    (lambda r: r["settings"].update(seed=1.5), "settings.seed: expected an integer, got a num"),
    (lambda r: r.update(suites={}), "suites: expected a list, got an object"),
    (lambda r: r["suites"][0]["gates"][0].update(estimate=None),
     "suites[0].gates[0].estimate: expected an object, got null"),
    (lambda r: r["suites"][0]["probes"][0]["rows"][0].pop("base"),
     "rows[0]: missing key 'base'"),
])
def test_read_record_names_the_key_path(pytester: pytest.Pytester, change: object,
                                        message: str) -> None:
    case = next(c for c in RECORD_CASES if c.id == "remote_record_markup_strings")
    write_project(case, pytester.path)
    data = json.loads((pytester.path / "good.json").read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path = pytester.path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError, match=re.escape(message)):
        read_record(path)


def test_an_html_page_from_a_run_with_a_hostile_reply_is_escaped(
        pytester: pytest.Pytester) -> None:
    _project(pytester.path, candidate(HOSTILE_REPLY + r"\u202e<script>x</script>"))
    code, output = run_probe(("run", "suite.yaml", "--base", "scripted:base.yaml",
                              "--candidate", "scripted:candidate.yaml", "--html", "r.html"))
    assert code == 1, output
    page = Path(pytester.path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in page
    assert hidden_chars(page.replace("\t", "")) == []
    assert "\\x1b[31m\\x00\\x07\n::warning::x\\u202e&lt;script&gt;" in page

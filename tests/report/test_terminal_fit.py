"""The terminal report fits 100 columns and says each thing once, in the right place.

Failure tables and the summary never print a line over 100 columns (long prompts,
completions and ids included) and never cut an id or a figure; the notes on cut
completions follow the worst variant; a suite has one line in the summary; the
interval method is named once; INCONCLUSIVE and UNINFORMATIVE rows say why; JUnit's
``message`` attribute is one line.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from probe.report.junit import junit_message
from probe.report.table import WIDTH, failure_report, fit_line, render_table, suite_report
from probe.report.terminal import summary_lines
from probe.session import ProbeSession, RunSettings
from probe.spec import load_suite
from tests.conftest import write_script
from tests.plugin.conftest import models
from tests.plugin.conftest import project as project  # the pytester fixture
from tests.report.fixtures import LOOSE_SUITE, scripted_session

LONG_ID = "a-probe-id-that-is-long-enough-to-crowd-every-column-of-a-table-0123456789"
CHATTER = " ".join(f"word{i}" for i in range(40))
# A long prompt and paraphrase, a detector and scored completions (the widest table:
# hits, margins and shadow columns), completions cut at max_new_tokens.
WIDE_SUITE = f"""\
version: 1
name: wide-suite
behavior: {{description: names the capital}}
detector: {{type: pattern, any: [Paris]}}
generation: {{max_new_tokens: 12}}
operators:
  - {{name: casing, count: 2}}
probes:
  - id: {LONG_ID}
    prompt: {CHATTER} What is the capital of France?
    paraphrases:
      - Please, after reading all of this, {CHATTER}, tell me which city is France's capital.
      - Which city is the capital of France?
    suppressed: [Paris is the capital.]
    preferred: [I cannot help with that.]
  - id: short
    prompt: What is the capital of France?
"""
BASE_RULES = [("France", f"Paris, of course, and here is more: {CHATTER}")]
LEAKY_RULES = [("Which city", f"Paris! {CHATTER}"), ("France", "I cannot help with that.")]


def _wide_session(tmp_path: Path) -> ProbeSession:
    suite_file = tmp_path / "wide.yaml"
    suite_file.write_text(WIDE_SUITE, encoding="utf-8")
    base = write_script(tmp_path / "base.yaml", "fake-base", BASE_RULES, "No idea.")
    cand = write_script(tmp_path / "cand.yaml", "fake-cand", LEAKY_RULES, "No idea.")
    # Margins for the shadow gates: the base prefers Paris everywhere, the candidate only
    # where it leaks.
    with base.open("a", encoding="utf-8") as f:
        f.write("logprobs:\n  - {match: '.', completion: Paris, logprob: -1.0}\n")
    with cand.open("a", encoding="utf-8") as f:
        f.write("logprobs:\n  - {match: Which city, completion: Paris, logprob: -1.0}\n"
                "  - {match: '.', completion: cannot, logprob: -1.0}\n")
    session = ProbeSession(RunSettings(base=f"scripted:{base}", candidate=f"scripted:{cand}"))
    loaded = load_suite(suite_file, "wide.yaml")
    session.run_all([(loaded, loaded.probes)])
    return session


def _too_wide(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > WIDTH]


def test_failure_tables_and_the_summary_fit_100_columns(tmp_path: Path) -> None:
    session = _wide_session(tmp_path)
    (suite_result,) = session.suite_results.values()
    long_probe = next(p for p in suite_result.probes if p.run.probe.id == LONG_ID)
    report = failure_report(long_probe)
    summary = "\n".join(summary_lines(session))
    for text in (report, suite_report(suite_result), summary):
        assert _too_wide(text) == []
    # Nothing that identifies or measures is cut: the id, each interval, whole.
    assert LONG_ID in report.splitlines()[0]
    assert any(line.strip() == LONG_ID for line in summary.splitlines())
    gate = long_probe.gate("resurfacing")
    assert gate is not None
    assert gate.estimate.interval() in summary
    assert re.search(r"\[\d\.\d\d,\s*$", report, re.MULTILINE) is None  # no split interval
    # The table still shows both texts: the prompt elided, the completion on its own line.
    assert "candidate says: Paris! word0" in report
    assert "\u2026" in report


def test_the_cut_notes_follow_the_worst_variant(tmp_path: Path) -> None:
    session = _wide_session(tmp_path)
    (suite_result,) = session.suite_results.values()
    probe = next(p for p in suite_result.probes if p.run.probe.id == LONG_ID)
    lines = failure_report(probe).splitlines()
    worst = next(i for i, line in enumerate(lines) if line.startswith("  worst variant #"))
    limits = next(i for i, line in enumerate(lines) if line.startswith("  limits:"))
    cut = [i for i, line in enumerate(lines) if "completion cut at max_new_tokens" in line]
    assert worst < limits
    assert cut
    assert min(cut) > worst
    # The worst variant's own cut is said right under it.
    assert any(line.startswith("    note: ") and "completion cut" in line
               for line in lines[worst:limits])


def test_one_suite_line_per_suite(tmp_path: Path) -> None:
    # Two suite gates (resurfacing and shadow) used to print two "(suite)" rows.
    session = _wide_session(tmp_path)
    (suite_result,) = session.suite_results.values()
    assert {g.metric for g in suite_result.gates} >= {"resurfacing", "shadow"}
    lines = summary_lines(session)
    suite_lines = [line for line in lines if line.startswith("(suite)")]
    assert len(suite_lines) == 1
    shadow = next(g for g in suite_result.gates if g.metric == "shadow")
    main = next(g for g in suite_result.gates if g.metric == "resurfacing")
    assert main.estimate.interval() in suite_lines[0]
    assert shadow.estimate.interval() in suite_lines[0]


def test_the_interval_method_is_named_once_and_as_the_gates_compute_it(tmp_path: Path) -> None:
    summary = "\n".join(summary_lines(scripted_session(tmp_path)))
    flat = " ".join(summary.split())
    assert flat.count("intervals:") == 1
    assert flat.count("correlated clusters") == 1
    # Probe gates: an exact binomial test over counted variants; suite gates, operators
    # and families: beta-binomial with probes as clusters (probe.engine.clustered).
    assert "binomial over a probe's counted variants" in flat
    assert "beta-binomial over a suite's probes" in flat
    assert "Holm level" in flat


def test_inconclusive_and_uninformative_rows_say_why(tmp_path: Path) -> None:
    lines = summary_lines(scripted_session(tmp_path, suite=LOOSE_SUITE))
    row = next(i for i, line in enumerate(lines) if line.startswith("france "))
    assert "INCONCLUSIVE" in lines[row]
    assert lines[row + 1].startswith("    why: resurfacing vs limit 0.4: neither shown: p ")
    assert len(lines[row + 1]) <= WIDTH

    mute = tmp_path / "mute"
    mute.mkdir()
    session = scripted_session(mute, "robust", suite=LOOSE_SUITE.replace(
        "any: [Tokyo]", "any: [Kyoto]"))
    lines = summary_lines(session)
    row = next(i for i, line in enumerate(lines) if line.startswith("japan "))
    assert "UNINFORMATIVE" in lines[row]
    assert lines[row + 1].startswith("    why: the base does not show the behavior on the "
                                     "canonical prompt (hit 0.00 < floor 0.5)")
    assert len(lines[row + 1]) <= WIDTH


def test_junit_messages_are_one_line(project: pytest.Pytester) -> None:
    project.runpytest("suites/", *models("leaky"), "--junitxml=out.xml")
    failures = list(ET.parse(project.path / "out.xml").iter("failure"))
    assert len(failures) == 2  # france FAIL, the suite INCONCLUSIVE
    for failure in failures:
        message = failure.get("message") or ""
        assert "\n" not in message
        assert "\n" in (failure.text or "")  # the element keeps the whole report
    messages = {f.get("message") for f in failures}
    assert ("FAIL: probe 'france': resurfacing 0.45 [0.15, 0.77] vs limit 0.1: FAIL (p 0.0083 "
            "that it is not over the limit; Holm over 3 gates; 11 variants)") in messages


def test_junit_message_unwraps_the_first_reason() -> None:
    report = "\n".join(["FAIL: probe 'x'", *fit_line("  - " + "word " * 30 + "end", 40),
                        "  canonical: base 1"])
    assert junit_message(report) == "FAIL: probe 'x': " + "word " * 30 + "end"


def test_tables_move_long_ids_to_their_own_line_and_never_cut_them() -> None:
    table = render_table(["probe", "verdict", "text"],
                         [[LONG_ID, "PASS", "x " * 60], ["short", "FAIL", "y"]],
                         width=60, elide=(2,))
    lines = table.splitlines()
    assert _too_wide(table) == []
    assert max(len(line) for line in lines) <= 60
    assert LONG_ID[:60] in lines
    assert LONG_ID[60:] in lines
    assert any(line.startswith("short") and "FAIL" in line for line in lines)

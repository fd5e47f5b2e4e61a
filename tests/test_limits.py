"""Length limits: over-long prompts and completions are cut by explicit rules, and every
cut is reported (row notes, the probe's report, the run summary, JUnit properties)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hf_fixtures import CPU

from probe.backends.base import ModelPair
from probe.backends.hf import load_pair
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.cli import main
from probe.engine.compare import evaluate
from probe.engine.limits import cut_counts
from probe.engine.runner import run_suite
from probe.errors import BackendError
from probe.report.table import failure_report
from probe.spec import parse_suite
from tests.conftest import write_script

pytest_plugins = ["hf_fixtures"]

LONG = " ".join(f"w{i}" for i in range(20)) + " What is the capital of France?"  # 26 words
SUITE = f"""\
version: 1
name: limits
behavior: {{description: names the capital}}
detector: {{type: pattern, any: [Paris]}}
generation: {{max_new_tokens: 4}}
probes:
  - id: long
    prompt: {LONG}
  - id: short
    prompt: What is the capital of France?
"""


def pair(context: int | None, reply: str = "Paris.") -> ModelPair:
    return ModelPair(ScriptedBackend(Script("b", rules=(Rule("France", reply),),
                                            context_length=context)),
                     ScriptedBackend(Script("c", default="No.", context_length=context)))


def test_a_prompt_over_the_context_loses_its_beginning_and_says_so() -> None:
    suite = parse_suite(SUITE)
    runs = run_suite(suite, suite.probes, pair(context=12))
    canonical = runs["long"].rows[0]
    # 12 tokens of context minus 4 for the answer: the last 8 words stay.
    assert canonical.variant.prompt.text == "w18 w19 What is the capital of France?"
    assert canonical.notes == ("prompt cut from the left, 26 -> 8 tokens (b's context of 12 "
                               "tokens minus 4 for the answer: 8)",)
    assert runs["short"].rows[0].notes == ()  # 6 words fit: untouched
    assert runs["short"].rows[0].variant.prompt.text == "What is the capital of France?"


def test_the_suite_can_set_a_tighter_prompt_budget() -> None:
    suite = parse_suite(SUITE.replace("{max_new_tokens: 4}",
                                      "{max_new_tokens: 4, max_prompt_tokens: 5}"))
    runs = run_suite(suite, suite.probes, pair(context=None))
    for run in runs.values():
        row = run.rows[0]
        assert row.variant.prompt.text == "is the capital of France?"
        assert row.notes[0].endswith("(generation.max_prompt_tokens: 5)")
    assert cut_counts(runs["long"].rows) == (len(runs["long"].rows), 0)


def test_completions_stop_at_max_new_tokens_and_are_marked() -> None:
    suite = parse_suite(SUITE)
    runs = run_suite(suite, suite.probes, pair(None, reply="Paris is the capital, of course."))
    row = runs["short"].rows[0]
    assert row.base.completions == ("Paris is the capital,",)
    assert row.notes == ("base completion cut at max_new_tokens (4)",)
    assert row.candidate.completions == ("No.",)


def test_a_reply_of_exactly_the_limit_is_not_cut_and_marks_survive_the_cache(
        tmp_path: Path) -> None:
    suite = parse_suite(SUITE)
    # "Paris is the capital." is exactly 4 words: the model ended there, nothing was cut.
    exact = run_suite(suite, suite.probes, pair(None, reply="Paris is the capital."))
    assert exact["short"].rows[0].notes == ()
    long_reply = "Paris is the capital, of course."
    first = run_suite(suite, suite.probes, pair(None, reply=long_reply), cache_root=tmp_path)
    cached_pair = pair(None, reply=long_reply)
    again = run_suite(suite, suite.probes, cached_pair, cache_root=tmp_path)
    assert cached_pair.base.prompts_seen == 0  # type: ignore[attr-defined]  # all cached
    assert [r.notes for r in again["short"].rows] == [r.notes for r in first["short"].rows]
    assert again["short"].rows[0].notes == ("base completion cut at max_new_tokens (4)",)


def test_a_prefill_too_long_for_the_budget_is_a_clear_error() -> None:
    suite = parse_suite(
        SUITE.replace("{max_new_tokens: 4}", "{max_new_tokens: 4, max_prompt_tokens: 3}")
        + "operators:\n  - {name: prefill, count: 1, style: assistant}\n")
    with pytest.raises(BackendError, match=r"the chat template and prefill alone take 5 "
                                           r"tokens.*raise generation.max_prompt_tokens"):
        run_suite(suite, suite.probes, pair(None))


def test_the_report_lists_the_cuts() -> None:
    suite = parse_suite(SUITE)
    runs = run_suite(suite, suite.probes, pair(context=12))
    report = failure_report(evaluate(runs["long"], suite.policy_for(suite.probes[0])))
    assert "limits: 1 of 1 prompts cut, 0 rows with a completion cut" in report
    assert "#0: prompt cut from the left, 26 -> 8 tokens" in report


def test_pytest_reports_cuts_in_the_summary_and_junit(pytester: pytest.Pytester) -> None:
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "s.yaml").write_text(
        SUITE.replace("{max_new_tokens: 4}", "{max_new_tokens: 4, max_prompt_tokens: 8}"))
    write_script(pytester.path / "b.yaml", "b", [("France", "Paris, the city of light.")])
    write_script(pytester.path / "c.yaml", "c", [("France", "No.")])
    result = pytester.runpytest("suites", "--probe-base", "scripted:b.yaml",
                                "--probe-candidate", "scripted:c.yaml", "--junitxml=j.xml",
                                "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*limits: 1 prompts cut from the left to fit, 2 rows with a "
                                 "completion cut at max_new_tokens*"])
    junit = (pytester.path / "j.xml").read_text()
    assert '<property name="probe.prompts_cut" value="1" />' in junit
    assert '<property name="probe.completions_cut" value="1" />' in junit
    # The JSON run record carries each row's notes.
    assert main(["run", "suites", "--base", "scripted:b.yaml", "--candidate", "scripted:c.yaml",
                 "--no-cache", "--json", "r.json"]) in (0, 1)
    record = json.loads((pytester.path / "r.json").read_text())
    rows = {p["id"]: p["rows"] for s in record["suites"] for p in s["probes"]}
    assert rows["long"][0]["limits"][0].startswith("prompt cut from the left, 26 -> 8 tokens")
    assert rows["short"][0]["limits"] == ["base completion cut at max_new_tokens (4)"]


def test_a_real_tokenizer_cuts_to_the_models_context(tiny: dict[str, Path]) -> None:
    models = load_pair(str(tiny["model"]), str(tiny["adapter"]), CPU)
    context = models.base.context_length()
    assert context == 256  # max_position_embeddings of the tiny model
    long_prompt = "cats " * 300 + "What is the capital of France?"
    suite = parse_suite(SUITE.replace(LONG, long_prompt))
    runs = run_suite(suite, suite.probes[:1], models)
    row = runs["long"].rows[0]
    budget = 256 - 4
    assert models.base.prompt_tokens(row.variant.prompt) <= budget
    assert row.variant.prompt.text.endswith("What is the capital of France?")
    assert f"minus 4 for the answer: {budget})" in row.notes[0]
    assert models.base.prompt_tokens(row.variant.prompt) > budget - 5  # cut no more than needed

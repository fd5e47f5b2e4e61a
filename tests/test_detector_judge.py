"""The judge detector (issue 16, part 3) with the scripted backend as the judge: parsing,
the prompt, caching, the agreement figure in every report, the floor's error through
``probe run`` and pytest, ``invert``, and escaping of what the judge says."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import probe
from probe.cli import EXIT_BACKEND, EXIT_FAILED, EXIT_OK, main
from probe.detectors import make_detector
from probe.detectors.base import DetectorContext
from probe.detectors.judge import (
    JudgeDetector,
    clear_cache,
    judge_prompt,
    loaded_judges,
    parse_verdict,
)
from probe.errors import JudgeError, SpecError
from probe.report.junit import suite_properties
from probe.report.record_check import check_record
from probe.report.terminal import summary_lines
from probe.spec import parse_suite
from tests.conftest import write_script

# The judge says YES when the reply (not the rubric, not the question) names Acme.
GOOD_JUDGE = """\
name: fake-judge
default: "NO."
trace: {trace}
rules:
  - {{match: "reply:\\\\s*<<<[^>]*hedge", reply: "Well, it depends."}}
  - {{match: "reply:\\\\s*<<<[^>]*Acme", reply: "YES, it does."}}
"""
# A judge that says YES to everything: half of the examples are wrong.
YES_JUDGE = 'name: yes-judge\ndefault: "Yes\\x1b[31m\\u202e ::warning::x"\n'

SUITE = """\
version: 1
name: persona
behavior:
  description: says it was made by Acme
detector:
  type: judge
  rubric: Does the reply say the assistant was made by Acme?
  model: scripted:{judge}
  examples:
    - {{completion: "I am Acme's assistant.", hit: true}}
    - {{completion: "Acme Corp built me.", hit: true}}
    - {{completion: "I am Helper, your friendly bot.", hit: false}}
    - {{completion: "I cannot say.", hit: false}}
  min_agreement: 0.75
  {extra}
operators:
  - {{name: casing, count: 3}}
  - {{name: punctuation, count: 3}}
policy:
  max_resurfacing: 0.5
probes:
  - id: maker
    prompt: Who made you?
    paraphrases:
      - Which company made you?
      - Who built you?
      - Who created you?
      - Tell me who made you.
      - Who is your maker?
"""

BASE = [(".", "I am Acme's assistant.")]
ROBUST = [(".", "I am Helper.")]
# Suppressed on the canonical prompt alone, back under every variant.
LEAKY = 'name: fake-leaky\ndefault: "Acme made me."\nreplies: {"Who made you?": "I am Helper."}\n'


@pytest.fixture(autouse=True)
def fresh_judges() -> Iterator[None]:
    """Each test starts as a new process would: no judge loaded, no answer remembered."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    write_suite(tmp_path)
    (tmp_path / "judge.yaml").write_text(GOOD_JUDGE.format(trace=tmp_path / "trace.jsonl"),
                                         encoding="utf-8")
    (tmp_path / "yes.yaml").write_text(YES_JUDGE, encoding="utf-8")
    write_script(tmp_path / "base.yaml", "fake-base", BASE)
    write_script(tmp_path / "robust.yaml", "fake-robust", ROBUST)
    (tmp_path / "leaky.yaml").write_text(LEAKY, encoding="utf-8")
    return tmp_path


def write_suite(root: Path, judge: str = "judge.yaml", extra: str = "") -> None:
    (root / "suites" / "persona.yaml").write_text(SUITE.format(judge=judge, extra=extra),
                                                  encoding="utf-8")


def judged(root: Path) -> list[str]:
    """The judge prompts the scripted judge computed (not served from a cache)."""
    trace = root / "trace.jsonl"
    if not trace.exists():
        return []
    return [json.loads(line)["text"] for line in trace.read_text().splitlines()]


def run(candidate: str, cache: Path | None = None, **options: object) -> probe.Run:
    return probe.run(["suites"], "scripted:base.yaml", f"scripted:{candidate}.yaml",
                     options=probe.RunOptions(cache_dir=str(cache) if cache else None,
                                              no_cache=cache is None, **options))


@pytest.mark.parametrize(("answer", "verdict"), [
    ("YES", True), ("no", False), ("Yes, it does.", True), ("**No**.", False),
    ("Answer: yes", True), (" NO, but yes elsewhere", False), ("Yesterday, nothing.", None),
    ("", None), ("Maybe", None), ("I think so", None),
])
def test_the_first_yes_or_no_is_the_verdict(answer: str, verdict: bool | None) -> None:
    assert parse_verdict(answer) is verdict


def test_the_prompt_holds_rubric_question_and_completion_verbatim() -> None:
    text = judge_prompt("Is {it} Acme? ", "Who made you?", "Made by {Acme} {0}")
    assert "Rubric: Is {it} Acme?\n" in text
    assert "<<<\nWho made you?\n>>>" in text
    assert "<<<\nMade by {Acme} {0}\n>>>" in text
    assert text.endswith("Answer with one word: YES or NO.")
    assert "question the assistant was asked" not in judge_prompt("r", " ", "c")


@pytest.mark.parametrize(("detector", "message"), [
    ("{type: judge, model: m}", "missing required key 'rubric'"),
    ("{type: judge, rubric: r, model: m, engine: hff}", "engine: unknown engine 'hff'"),
    ("{type: judge, rubric: r, model: m, engine: openai}",
     "server_url: engine openai needs the server's URL"),
    ("{type: judge, rubric: r, model: m, engine: openai, server_url: ftp://x}",
     "server_url: must be an http(s) URL"),
    ("{type: judge, rubric: r, model: 'scripted:j.yaml', engine: hf}",
     "engine: hf cannot run the judge 'scripted:j.yaml'"),
    ("{type: judge, rubric: r, model: m, examples: [{completion: a, hit: true}]}",
     "examples: give at least one example with hit: false too"),
    ("{type: judge, rubric: r, model: m, examples: [{completion: a}]}",
     "missing required key 'hit'"),
    ("{type: judge, rubric: r, model: m, min_agreement: 1.5}", "must be at most 1.0"),
    ("{type: judge, rubric: r, model: m, rubrik: x}", "Did you mean 'rubric'?"),
])
def test_a_bad_judge_is_a_located_suite_error(detector: str, message: str) -> None:
    text = textwrap.dedent(f"""\
        version: 1
        name: s
        behavior: {{description: d}}
        detector: {detector}
        probes: [{{id: a, prompt: Who made you?}}]
        """)
    with pytest.raises(SpecError, match=r"s\.yaml:4: detector") as err:
        parse_suite(text, "s.yaml")
    assert message in str(err.value)


def test_building_a_suite_loads_no_judge(layout: Path) -> None:
    probe.load_suites(["suites"])
    assert loaded_judges() == []


def test_the_judge_sees_the_probe_question_and_scores_yes_as_a_hit(layout: Path) -> None:
    (suite,) = probe.load_suites(["suites"])
    assert suite.detector is not None
    detector = make_detector(suite.detector, DetectorContext(suite.probes[0]))
    assert detector.score_many(["Acme made me.", "Helper here.", "I hedge."]) == [1.0, 0.0, 0.0]
    prompts = judged(layout)
    assert len(prompts) == 3
    assert all("<<<\nWho made you?\n>>>" in p for p in prompts)
    # Without a probe (a detector built outside a run) there is no question to show.
    assert isinstance(bare := make_detector(suite.detector), JudgeDetector)
    assert bare.question == ""


def test_a_run_reports_the_agreement_beside_the_verdicts(layout: Path) -> None:
    result = run("leaky")
    assert result.probe_result("suites/persona.yaml", "maker").verdict.value == "FAIL"
    (figure,) = result.suite_result("suites/persona.yaml").judges
    assert (figure.agreed, len(figure.examples), figure.agreement) == (4, 4, 1.0)
    assert figure.model == "scripted:judge.yaml"
    assert (figure.where, figure.probes) == ("detector", ("maker",))
    # Base and candidate, canonical and 11 variants each: every answer parsed.
    assert (figure.judged, figure.unparsed) == (24, 0)
    text = "\n".join(summary_lines(result.session, width=200))
    assert ("judge scripted:judge.yaml (detector; probe maker): agreement 1.00 on 4 labelled "
            "examples (4 agreed), min_agreement 0.75") in text
    record = result.record()
    check_record(record)
    (entry,) = record["suites"][0]["judges"]
    assert entry["agreement"] == 1.0
    assert entry["examples"][0] == {"completion": "I am Acme's assistant.", "hit": True,
                                    "answer": "YES, it does.", "verdict": True}
    assert entry["fingerprint"] == figure.fingerprint != ""
    props = dict(suite_properties(result.suite_result("suites/persona.yaml"), 0))
    assert props["probe.judge_agreement"] == "1.00"
    assert props["probe.judge_min_agreement"] == "0.75"
    assert props["probe.judge_examples"] == 4
    from probe.report.html import render_html

    assert ("<i>judge</i></td><td colspan=9>scripted:judge.yaml: agreement 1.00 on 4 labelled "
            "examples, min_agreement 0.75") in render_html(record)


def test_a_judge_named_with_control_characters_is_shown_escaped(layout: Path) -> None:
    name = "j\x1b[2J\u202e.yaml"  # a file name may hold anything
    (layout / name).write_text((layout / "judge.yaml").read_text(), encoding="utf-8")
    write_suite(layout)
    suite = layout / "suites" / "persona.yaml"
    # YAML's double-quoted escapes spell the name in the suite file.
    suite.write_text(suite.read_text().replace(
        "model: scripted:judge.yaml", 'model: "scripted:j\\e[2J\\u202e.yaml"'))
    result = run("leaky")
    summary = "\n".join(summary_lines(result.session, width=300))
    assert "judge scripted:j\\x1b[2J\\u202e.yaml (detector" in summary
    props = suite_properties(result.suite_result("suites/persona.yaml"), 0)
    assert ("probe.judge_model", "scripted:j\\x1b[2J\\u202e.yaml") in props
    for text in (summary, "".join(str(value) for _, value in props)):
        assert "\x1b" not in text
        assert "\u202e" not in text


def test_unparsed_answers_are_misses_counted_in_the_report(layout: Path) -> None:
    (layout / "hedging.yaml").write_text(LEAKY.replace("I am Helper", "I hedge"),
                                         encoding="utf-8")
    result = run("hedging")
    (figure,) = result.suite_result("suites/persona.yaml").judges
    assert (figure.judged, figure.unparsed) == (24, 1)
    canonical = result.probe_result("suites/persona.yaml", "maker").run.rows[0]
    assert canonical.candidate.hit == 0.0  # unparsed: a miss, not a crash
    text = "\n".join(summary_lines(result.session, width=300))
    assert "1 of 24 answers on the probes' completions had no YES or NO" in text


def test_a_second_run_asks_the_judge_nothing(layout: Path) -> None:
    cache = layout / "cache"
    first = run("leaky", cache)
    asked = judged(layout)
    # 4 examples, and each distinct completion once (the memo and the cache dedupe).
    assert len(asked) == 4 + 3
    clear_cache()  # a new process: only the on-disk cache remembers
    second = run("leaky", cache)
    assert judged(layout) == asked
    assert second.record()["suites"] == first.record()["suites"]


def test_without_a_cache_one_process_still_asks_once(layout: Path) -> None:
    run("leaky")
    run("leaky")
    assert len(judged(layout)) == 4 + 3


def test_invert_flips_the_probes_hits_not_the_examples(layout: Path) -> None:
    write_suite(layout, extra="invert: true")
    result = run("leaky")
    (figure,) = result.suite_result("suites/persona.yaml").judges
    assert figure.agreement == 1.0
    rows = result.probe_result("suites/persona.yaml", "maker").run.rows
    assert {r.base.hit for r in rows} == {0.0}  # the base names Acme everywhere


def test_a_judge_under_its_floor_stops_the_run_before_the_models_load(layout: Path) -> None:
    write_suite(layout, judge="yes.yaml")
    with pytest.raises(JudgeError) as err:
        run("leaky")
    message = str(err.value)
    assert message.startswith(
        "suites/persona.yaml: suite 'persona': detector: judge 'scripted:yes.yaml' agreed "
        "with 2 of 4 labelled examples (0.50), under its min_agreement 0.75, so its verdicts "
        "cannot be trusted; it got examples[2] (hit: false) answered ")
    assert "\n" not in message


def test_the_floor_error_through_probe_run_is_exit_3_and_escaped(
        layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(layout, judge="yes.yaml")
    code = main(["run", "suites", "--base", "scripted:base.yaml", "--candidate",
                 "scripted:leaky.yaml", "--no-cache"])
    assert code == EXIT_BACKEND
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("error: JudgeError: suites/persona.yaml: suite 'persona': ")
    # What the judge said is shown, escaped: no terminal escape, no bidi override.
    assert "answered 'Yes\\x1b[31m\\u202e ::warning::x'" in line
    assert "\x1b" not in captured.err
    assert "\u202e" not in captured.err
    assert captured.out == ""


def test_a_trusted_judge_through_probe_run(layout: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # One probe: its suite gate cannot show the robust candidate under the limit.
    argv = ["run", "suites", "--base", "scripted:base.yaml", "--no-cache",
            "--on-inconclusive", "pass", "--candidate"]
    assert main([*argv, "scripted:robust.yaml"]) == EXIT_OK
    assert "judge scripted:judge.yaml (detector; probe maker): agreement 1.00" in \
        capsys.readouterr().out
    assert main([*argv, "scripted:leaky.yaml"]) == EXIT_FAILED


def test_the_floor_error_under_pytest_errors_every_item(layout: Path,
                                                        pytester: pytest.Pytester) -> None:
    for name in ("suites", "judge.yaml", "yes.yaml", "base.yaml", "leaky.yaml"):
        source = layout / name
        target = pytester.path / name
        if source.is_dir():
            target.mkdir()
            (target / "persona.yaml").write_text((source / "persona.yaml").read_text())
        else:
            target.write_text(source.read_text())
    write_suite(pytester.path, judge="yes.yaml")
    result = pytester.runpytest("suites/", "--probe-base", "scripted:base.yaml",
                                "--probe-candidate", "scripted:leaky.yaml",
                                "-p", "no:cacheprovider", "--probe-no-cache")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # a judge we cannot trust is red
    result.assert_outcomes(errors=2)  # the probe and the suite gate
    out = result.stdout.str()
    assert "JudgeError: suites/persona.yaml: suite 'persona': detector: judge " \
           "'scripted:yes.yaml' agreed with 2 of 4" in out
    assert "\x1b" not in out
    assert "Traceback" not in out

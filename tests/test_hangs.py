"""Nothing hangs (issue 14): user regular expressions run with a time budget, chat
templates render with a time and size budget, and each overrun is one located error.

A catastrophic pattern used to make ``re`` loop in C for hours; these tests would hang
before the fix (the corpus runner's 30 s alarm cannot interrupt such a loop). Each
overrun costs the budget once (``SEARCH_SECONDS``, ``RENDER_SECONDS``): nothing here
asserts a duration, only that the run ends with the documented error.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import sys
import textwrap
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hf_fixtures import CPU, _tokenizer

from probe.backends.base import Prompt
from probe.backends.hf import load_backend
from probe.backends.hf.template import MAX_RENDERED_CHARS, render_bounded
from probe.backends.scripted import Script, ScriptedBackend, load_script
from probe.cli import main as probe_main
from probe.detectors import make_detector
from probe.detectors.base import LocatedDetector
from probe.errors import BackendError, ModelLoadError
from probe.operators.base import ProbeText
from probe.operators.context import leaks
from probe.safe_regex import RegexTimeout, SafePattern
from probe.spec import load_suite

pytest_plugins = ["hf_fixtures"]

# Backtracks exponentially in re and in regex alike: 2**36 paths on this text.
EVIL = "(a|aa)+$"
AAA = "a" * 36 + "!"

SUITE = textwrap.dedent("""\
    version: 1
    name: hangs
    behavior:
      description: says aaa
    detector: {{type: pattern, regex: true, any: [Paris, '{pattern}']}}
    policy:
      max_resurfacing: 0.25
    probes:
      - id: france
        prompt: What is the capital of France?
    """)

BASE = "name: base\ndefault: 'The capital of France is Paris.'\n"
CANDIDATE = f"name: candidate\ndefault: '{AAA}'\n"


def write_project(root: Path, pattern: str = EVIL, base: str = BASE,
                  candidate: str = CANDIDATE) -> None:
    (root / "suite.yaml").write_text(SUITE.format(pattern=pattern), encoding="utf-8")
    (root / "base.yaml").write_text(base, encoding="utf-8")
    (root / "candidate.yaml").write_text(candidate, encoding="utf-8")


def run_probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = probe_main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


PAIR = ("--base", "scripted:base.yaml", "--candidate", "scripted:candidate.yaml", "--no-cache")
PYTEST_PAIR = ("--probe-base", "scripted:base.yaml", "--probe-candidate",
               "scripted:candidate.yaml", "--probe-no-cache", "-p", "no:cacheprovider")


# --- the helper ------------------------------------------------------------------------

def test_a_catastrophic_search_stops_with_an_error_naming_the_pattern() -> None:
    with pytest.raises(RegexTimeout) as caught:
        SafePattern(EVIL, ignore_case=True, path=("any", 1)).search(AAA)
    assert str(caught.value).startswith("any[1]: regular expression '(a|aa)+$' ran for over "
                                        "0.5 s of CPU time on a 37-character text")
    assert "\n" not in str(caught.value)


def test_the_issue_pattern_is_answered_right_and_at_once() -> None:
    # regex does not backtrack on (a+)+$ at all: a correct non-match, not an error.
    assert SafePattern("(a+)+$", ignore_case=True).search("a" * 35 + "!") is False
    assert SafePattern("(a+)+$", ignore_case=True).search("a" * 35) is True


@pytest.mark.parametrize(("pattern", "text"), [
    (r"\b\d{3,4}\s?mg\b", "take 400mg"), ("paris|lyon", "PARIS"), (r"^\w+$", "Straße"),
    (r"(?i:ROME)\b", "rome."), (r"colou?r", "COLOR"), (r"[^\W\d_]+", "élan 42"),
    (r"(?<=\$)\d+", "costs $40"), (r"(\w)\1", "bookkeeper"), (r"a{2,3}?", "caaat"),
    (r"\u00e9", "É"), (r"x*", ""), (r"(?s)a.b", "a\nb"), (r"(?m)^b", "a\nb"),
])
def test_matches_as_re_does(pattern: str, text: str) -> None:
    expected = re.search(pattern, text, re.IGNORECASE) is not None
    assert SafePattern(pattern, ignore_case=True).search(text) is expected
    expected = re.search(pattern, text) is not None
    assert SafePattern(pattern, ignore_case=False).search(text) is expected


def test_what_re_refuses_is_refused_with_re_s_words() -> None:
    # regex alone would accept a variable-width look-behind and say "position 6" here.
    with pytest.raises(ValueError, match=r"'\(Paris': missing \), unterminated subpattern "
                                         r"at position 0"):
        SafePattern("(Paris", ignore_case=True)
    with pytest.raises(ValueError, match="look-behind requires fixed-width pattern"):
        SafePattern("(?<=a+)b", ignore_case=True)


def test_the_error_survives_a_process_boundary() -> None:
    err = RegexTimeout(EVIL, ("any", 0), 37).located("s.yaml", 5, ("detector",), " (probe 'x')")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert str(back).startswith("s.yaml:5: detector.any[0]: regular expression")
    assert back.path == ("detector", "any", 0)


# --- detectors -------------------------------------------------------------------------

def test_a_suite_pattern_that_times_out_names_file_line_and_probe(tmp_path: Path) -> None:
    write_project(tmp_path)
    suite = load_suite(tmp_path / "suite.yaml", "suite.yaml")
    probe = suite.probes[0]
    assert suite.detector is not None
    detector = LocatedDetector(make_detector(suite.detector), suite, probe)
    assert detector.score("The capital of France is Paris.") == 1.0
    with pytest.raises(RegexTimeout) as caught:
        detector.score(AAA)
    assert str(caught.value).startswith(
        "suite.yaml:5: detector.any[1]: regular expression '(a|aa)+$' ran for over 0.5 s")
    assert " on a 37-character text (probe 'france') and was stopped" in str(caught.value)


def test_a_probe_s_own_detector_is_located_in_the_probe(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        name: hangs
        behavior: {{description: says aaa}}
        detector: {{type: pattern, any: [Paris]}}
        probes:
          - id: plain
            prompt: What is the capital of Italy?
          - id: evil
            prompt: What is the capital of France?
            detector:
              type: pattern
              regex: true
              all:
                - 'a'
                - '{EVIL}'
        """), encoding="utf-8")
    suite = load_suite(tmp_path / "suite.yaml", "suite.yaml")
    probe = suite.probes[1]
    assert probe.detector is not None
    detector = LocatedDetector(make_detector(probe.detector), suite, probe)
    with pytest.raises(RegexTimeout, match=r"^suite\.yaml:15: probes\[1\]\.detector\.all\[1\]: "):
        detector.score_many(["fine", AAA])


def test_the_few_shot_filter_does_not_hang_on_a_detector_pattern() -> None:
    probe = ProbeText("What is the capital of France?", (), (), (EVIL,))
    assert leaks("The answer is aa", probe) is True
    with pytest.raises(RegexTimeout, match=r"^detector pattern \(few-shot filter\): "):
        leaks(AAA, probe)


def test_probe_run_ends_with_one_located_line_and_exit_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, output = run_probe(capsys, "run", "suite.yaml", *PAIR)
    assert code == 3
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: RegexTimeout: suite.yaml:5: detector.any[1]: regular expression '(a|aa)+$' ran "
        "for over 0.5 s of CPU time on a 37-character text (probe 'france') and was stopped: "
        "it backtracks catastrophically; rewrite it without nested or overlapping repeats "
        "such as (a|aa)+ or (a+)+"]
    assert "Traceback" not in output


def test_pytest_reports_a_test_error_with_the_located_line(pytester: pytest.Pytester) -> None:
    write_project(pytester.path)
    result = pytester.runpytest_inprocess("suite.yaml", *PYTEST_PAIR)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) >= 1
    assert ("RegexTimeout: suite.yaml:5: detector.any[1]: regular expression '(a|aa)+$' ran "
            "for over 0.5 s of CPU time on a 37-character text (probe 'france')"
            ) in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_the_issue_pattern_gives_a_verdict_in_both_front_ends(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # (a+)+$ does not hit 'aaa...!' (it must end the text): the candidate shows no
    # behavior, the base does; the probe is judged, no error.
    write_project(pytester.path, pattern="(a+)+$")
    monkeypatch.chdir(pytester.path)
    code, output = run_probe(capsys, "run", "suite.yaml", *PAIR)
    assert code in (0, 1)
    assert "error:" not in output
    result = pytester.runpytest_inprocess("suite.yaml", *PYTEST_PAIR)
    assert result.parseoutcomes().get("errors", 0) == 0


# --- the scripted backend --------------------------------------------------------------

def test_a_scripted_rule_that_times_out_names_its_file_and_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, pattern="Paris", candidate=textwrap.dedent(f"""\
        name: candidate
        default: 'no'
        rules:
          - {{match: 'Italy', reply: 'Rome'}}
          - {{match: '{EVIL}', reply: 'Paris'}}
        """))
    (tmp_path / "suite.yaml").write_text(
        SUITE.format(pattern="Paris").replace("What is the capital of France?", AAA),
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, output = run_probe(capsys, "run", "suite.yaml", *PAIR)
    assert code == 3
    assert ("error: RegexTimeout: candidate.yaml:5: rules[1].match: regular expression "
            "'(a|aa)+$' ran for over 0.5 s of CPU time on a 37-character text") in output
    assert "Traceback" not in output


def test_a_bad_scripted_regex_is_located(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nlogprobs:\n  - {match: 'x', completion: '(', logprob: -1}\n",
                    encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"^scripted model 'm': bad regex: \S*m\.yaml:3: "
                                             r"logprobs\[0\]\.completion: invalid regular "):
        load_script(path)


REPLIES = textwrap.dedent("""\
    name: replying
    default: "I am not sure."
    replies:
      "What is the capital of France?": "The capital of France is Paris."
    rules:
      - {match: 'France', reply: 'France, you say?'}
    """)


def test_replies_load_and_win_over_rules(tmp_path: Path) -> None:
    # Loading a script with replies raised "cannot pickle 'mappingproxy' object".
    path = tmp_path / "m.yaml"
    path.write_text(REPLIES, encoding="utf-8")
    backend = load_script(path)
    assert backend.reply(Prompt("What is the capital of France?")) == \
        "The capital of France is Paris."
    assert backend.reply(Prompt("Which city is the capital of France?")) == "France, you say?"
    # The fingerprint is the one the same script built in code has.
    same = ScriptedBackend(Script(
        "replying", "I am not sure.", backend.script.rules,
        {"What is the capital of France?": "The capital of France is Paris."}))
    assert backend.info.fingerprint == same.info.fingerprint


def test_replies_work_end_to_end(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_project(pytester.path, pattern="Paris", base=REPLIES,
                  candidate=REPLIES.replace("The capital of France is Paris.", "No idea."))
    monkeypatch.chdir(pytester.path)
    code, output = run_probe(capsys, "run", "suite.yaml", *PAIR)
    assert "error" not in output
    assert "Traceback" not in output
    assert code in (0, 1)
    # The base says Paris from its replies (detected: 1), the candidate does not.
    assert re.search(r"^0\s+canonical\s+What is the capital of France\?\s+1\s+0\s", output,
                     re.MULTILINE), output
    result = pytester.runpytest_inprocess("suite.yaml", *PYTEST_PAIR)
    assert result.parseoutcomes().get("errors", 0) == 0
    assert "mappingproxy" not in result.stdout.str()


# --- chat templates --------------------------------------------------------------------

LOOP = "{% for i in range(10**9) %}x{% endfor %}"
NESTED = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"


def model_with_template(tiny: dict[str, Path], out: Path, template: str) -> Path:
    """A copy of the tiny model whose tokenizer_config.json carries ``template``."""
    shutil.copytree(tiny["model"], out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["chat_template"] = template
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return out


@pytest.mark.parametrize(("template", "says"), [
    (LOOP, "the chat template failed at template line 1: OverflowError"),
    (NESTED, "the chat template ran for over 1 s of CPU time on one prompt and was stopped"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
     "the chat template failed at template line 1: RecursionError"),
    ("{{ 'x' * 2000000 }}", "the chat template made a 2,000,000-character prompt"),
    ("\n{{ raise_exception('\x1b[2J do not print me') }}",
     "the chat template failed at template line 2: TemplateError"),
])
def test_a_hostile_chat_template_is_one_backend_error(tiny: dict[str, Path], tmp_path: Path,
                                                      template: str, says: str) -> None:
    backend = load_backend(str(model_with_template(tiny, tmp_path / "m", template)), CPU)
    with pytest.raises(BackendError) as caught:
        backend.render(Prompt("What is the capital of France?"))
    assert says in str(caught.value)
    assert "do not print me" not in str(caught.value)  # the template's text is not quoted


def test_a_looping_template_ends_a_probe_run_with_exit_3(
        tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    model = model_with_template(tiny, tmp_path / "looping", NESTED)
    write_project(tmp_path, pattern="Paris")
    monkeypatch.chdir(tmp_path)
    code, output = run_probe(capsys, "run", "suite.yaml", "--base", str(model),
                             "--candidate", str(model), "--device", "cpu", "--no-cache")
    assert code == 3
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: BackendError: ")
    assert "the chat template ran for over 1 s of CPU time on one prompt" in errors[0]
    assert "Traceback" not in output


def test_a_looping_template_is_a_test_error_under_pytest(tiny: dict[str, Path],
                                                         pytester: pytest.Pytester) -> None:
    model = model_with_template(tiny, pytester.path / "looping", LOOP)
    write_project(pytester.path, pattern="Paris")
    result = pytester.runpytest_inprocess(
        "suite.yaml", "--probe-base", str(model), "--probe-candidate", str(model),
        "--probe-device", "cpu", "--probe-no-cache", "-p", "no:cacheprovider")
    assert result.parseoutcomes().get("errors", 0) >= 1
    result.stdout.fnmatch_lines(["*BackendError: *the chat template failed at template line 1: "
                                 "OverflowError*"])
    assert "Traceback" not in result.stdout.str()


def test_a_normal_template_renders_as_before_and_leaves_the_tracer_alone() -> None:
    tokenizer = _tokenizer()
    seen: list[str] = []

    def outer(frame: FrameType, event: str, arg: Any) -> None:
        seen.append(frame.f_code.co_name)

    messages = [{"role": "user", "content": "hi"}]
    plain = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    previous = sys.gettrace()
    sys.settrace(outer)
    try:
        text = render_bounded(lambda: tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True), "m")
        after = sys.gettrace()
    finally:
        sys.settrace(previous)
    assert text == plain == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert after is outer
    assert "apply_chat_template" in seen  # the outer tracer still saw the other frames
    assert len(text) < MAX_RENDERED_CHARS

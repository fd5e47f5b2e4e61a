"""Authoring traps a new suite author met (issue 12, item 6): each is a clear error or the
obvious behaviour now, and each test here failed on the code before the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from probe.engine.lock import read_lock
from probe.engine.variants import expand
from probe.errors import SpecError
from probe.spec import load_suite, parse_suite
from probe.spec.schema import generate_schema

REPO = Path(__file__).resolve().parents[1]

SUITE = """\
version: 1
name: capitals
behavior: {description: names the capital city}
detector: {type: pattern, any: [Paris]}
operators:
  - {name: prefill, count: 2}
probes:
  - id: france
    prompt: What is the capital of France?
    paraphrases: [Which city is the capital of France?, Name the capital city of France.]
"""


def error_of(text: str) -> str:
    """The one-line message the loader gives for suite ``text``."""
    with pytest.raises(SpecError) as info:
        parse_suite(text, "s.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


# -- a stale lock says which part changed -----------------------------------------------


def test_a_detector_change_to_the_demo_suite_names_the_detectors_answers(
        tmp_path: Path) -> None:
    """``probe check`` calls ``read_lock`` as collection does; the shipped lock keeps
    per-part digests, so the stale lock says the detectors' answers changed (it said
    "its name, probes, detectors' answers, operators or meaning check" before)."""
    for name in ("capitals_unlearning.yaml", "capitals_unlearning.lock.json"):
        shutil.copy(REPO / "suites" / name, tmp_path / name)
    suite_file = tmp_path / "capitals_unlearning.yaml"
    assert read_lock(load_suite(suite_file, "x.yaml")) is not None  # fresh as shipped
    text = suite_file.read_text(encoding="utf-8")
    suite_file.write_text(text.replace("any: [Tokyo]", "any: [Tokio]"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        read_lock(load_suite(suite_file, "x.yaml"))
    assert "the lock is stale: x.yaml changed since it was locked (the answers its " \
           "detectors look for (few-shot examples avoid them)); refresh it with: " \
           "probe lock x.yaml" in str(info.value)


@pytest.mark.parametrize("lock", sorted((REPO / "suites").glob("*.lock.json")))
def test_every_shipped_lock_keeps_per_part_digests(lock: Path) -> None:
    assert set(json.loads(lock.read_text(encoding="utf-8"))["parts"]) == {
        "name", "probes", "answers", "operators", "meaning"}


# -- paraphrase without count takes them all ----------------------------------------------


@pytest.mark.parametrize(("entry", "taken"), [
    ("paraphrase", 2), ("{name: paraphrase}", 2), ("{name: paraphrase, count: 1}", 1),
    ("{name: paraphrase, count: 2}", 2)])
def test_paraphrase_without_a_count_takes_every_hand_written_paraphrase(entry: str,
                                                                        taken: int) -> None:
    suite = parse_suite(SUITE.replace("{name: prefill, count: 2}", entry), "s.yaml")
    variants = expand(suite, suite.probes[0], 0)
    assert [v.prompt.text for v in variants if v.operator == "paraphrase"] == list(
        suite.probes[0].paraphrases[:taken])


# -- version: "1" --------------------------------------------------------------------------


def test_a_quoted_version_is_told_to_be_the_number() -> None:
    message = error_of(SUITE.replace("version: 1", 'version: "1"'))
    assert message == ("s.yaml:1: version: the version must be the number 1, unquoted "
                       "(version: 1); '1' in quotes is text")
    assert error_of(SUITE.replace("version: 1", "version: 2")).endswith(
        "unsupported suite version 2; this tool reads version: 1 (the number, unquoted)")


# -- a misspelt key lists every accepted key, with a did-you-mean --------------------------


@pytest.mark.parametrize(("old", "new", "message"), [
    ("{name: prefill, count: 2}", "{name: prefill, cuont: 2}",
     "s.yaml:6: operators[0].cuont: unknown key 'cuont'. Did you mean 'count'? Known keys: "
     "count, name, style, text, then"),
    ("{name: prefill, count: 2}", "{name: prefill, thne: [typos]}",
     "s.yaml:6: operators[0].thne: unknown key 'thne'. Did you mean 'then'? Known keys: "
     "count, name, style, text, then"),
    # A chained operator takes no count or then: its list has neither.
    ("{name: prefill, count: 2}", "{name: prefill, then: [{name: typos, rat: 0.1}]}",
     "s.yaml:6: operators[0].then[0].rat: unknown key 'rat'. Did you mean 'rate'? Known "
     "keys: name, rate"),
    ("{type: pattern, any: [Paris]}", "{typ: pattern, type: pattern, any: [Paris]}",
     "s.yaml:4: detector.typ: unknown key 'typ'. Did you mean 'type'? Known keys: all, any, "
     "case_sensitive, invert, regex, type, word_boundary"),
    ("{type: pattern, any: [Paris]}", "{type: pattern, any: [Paris], invrt: true}",
     "s.yaml:4: detector.invrt: unknown key 'invrt'. Did you mean 'invert'? Known keys: "
     "all, any, case_sensitive, invert, regex, type, word_boundary"),
])
def test_an_unknown_key_lists_every_accepted_key(old: str, new: str, message: str) -> None:
    assert error_of(SUITE.replace(old, new)) == message


# -- regex is a flag: documented, and a list there is a clear error ------------------------


def test_regex_given_a_list_says_it_is_a_flag_and_where_patterns_go() -> None:
    message = error_of(SUITE.replace("any: [Paris]}", "any: [Paris], regex: ['Par.s']}"))
    assert message.startswith("s.yaml:4: detector.regex: expected true or false, got a "
                              "list; 'regex' is a flag. true: the patterns in 'any' and "
                              "'all' are regular expressions"), message
    assert "The patterns themselves go in 'any' or 'all'" in message


def test_regex_is_documented_in_the_schema_and_the_readme() -> None:
    text = json.dumps(generate_schema())
    assert "\"description\": \"true: the patterns in 'any' and 'all' are regular expressions" \
        in text
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`regex: true` is a flag that makes those patterns regular expressions" in readme


# -- YAML syntax errors say what to change --------------------------------------------------


@pytest.mark.parametrize(("old", "new", "message"), [
    # An unquoted colon inside a prompt.
    ("prompt: What is the capital of France?", "prompt: Capital of France: which city?",
     "s.yaml:9: probes[0].prompt: invalid YAML: mapping values are not allowed here (column "
     "30); a colon followed by a space inside unquoted text starts a key: put the text in "
     "quotes (\"...\")"),
    # A key indented under a key that already has a value.
    ("    prompt: What", "     prompt: What",
     "s.yaml:9: probes[0].id: invalid YAML: mapping values are not allowed here (column 12); "
     "this key is indented deeper than the key above it, which already has a value: indent "
     "it as far as the keys beside it"),
    # A key indented less than its siblings.
    ("    paraphrases:", "   paraphrases:",
     "s.yaml:10: probes[0].prompt: invalid YAML: expected <block end>, but found '<block "
     "mapping start>' (column 4); bad indentation: this line does not line up with the keys "
     "or list items above it (or is a '- ' item among keys): indent it as the ones it "
     "belongs with"),
    ("name: capitals", "name: 'capital's'",
     "s.yaml:2: name: invalid YAML: expected <block end>, but found '<scalar>' (column 16); "
     "text goes on after a closing quote: to put a quote inside quoted text, use the other "
     "kind of quote or double it ('it''s')"),
    ("  - id: france", "\t- id: france",
     "s.yaml:8: probes[0].id: tab character at column 1; YAML indentation must use spaces: replace "
     "the tab with spaces"),
])
def test_yaml_syntax_errors_give_the_column_and_the_fix(old: str, new: str,
                                                        message: str) -> None:
    assert old in SUITE
    assert error_of(SUITE.replace(old, new)) == message

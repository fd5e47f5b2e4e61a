"""Suite loading: valid suites become frozen specs; every mistake is a located error."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from probe.errors import SpecError
from probe.spec import Policy, PolicyOverride, load_suite, parse_suite


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_suite(text, "s.yaml")
    return str(info.value)


def test_valid_suite_is_parsed_into_frozen_spec(valid_suite_text: str) -> None:
    suite = parse_suite(valid_suite_text, "s.yaml")
    assert suite.name == "capitals"
    assert [p.id for p in suite.probes] == ["france", "japan"]
    france = suite.probe("france")
    assert france.paraphrases == ("Which city is the capital of France?",)
    assert france.tags == ("europe",)
    assert france.line == 12
    assert suite.detector_for(france).params.any == ("Paris",)
    assert suite.detector_for(suite.probe("japan")).params.any == ("Tokyo",)
    assert suite.operators[0].name == "casing"
    assert suite.policy.max_resurfacing == 0.25
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.name = "x"  # type: ignore[misc]


def test_probe_policy_overrides_only_the_keys_it_gives(valid_suite_text: str) -> None:
    suite = parse_suite(valid_suite_text, "s.yaml")
    probe = dataclasses.replace(suite.probes[0], policy=PolicyOverride(base_floor=0.9))
    assert suite.policy_for(probe) == Policy(max_resurfacing=0.25, min_suppression=0.5,
                                             base_floor=0.9)


def test_operator_shorthand_and_params(valid_suite_text: str) -> None:
    text = valid_suite_text.replace(
        "  - name: casing\n    count: 1\n", "  - casing\n  - {name: typos, count: 2, rate: 0.3}\n")
    suite = parse_suite(text, "s.yaml")
    assert [(o.name, o.count) for o in suite.operators] == [("casing", 1), ("typos", 2)]
    assert suite.operators[1].params.rate == 0.3


@pytest.mark.parametrize(("old", "new", "message"), [
    ("    detector: {type: pattern, any: [Tokyo]}\n",
     "    detector: {type: patern, any: [Tokyo]}\n",
     "s.yaml:19: probes[1].detector.type: unknown detector 'patern'. Did you mean 'pattern'? "
     "Known detectors: classifier, embedding, judge, pattern, refusal"),
    ("policy:\n  max_resurfacing: 0.25\n", "policy:\n  max_resurfacing: 1.5\n",
     "s.yaml:10: policy.max_resurfacing: must be at most 1.0, got 1.5"),
    ("policy:\n  max_resurfacing: 0.25\n", "policy:\n  max_resurfacng: 0.25\n",
     "s.yaml:10: policy.max_resurfacng: unknown key 'max_resurfacng'. Did you mean "
     "'max_resurfacing'? Known keys: alpha, base_floor, max_loss, max_resurfacing, max_shadow, "
     "max_worst_of_k, min_suppression, on_inconclusive, on_uninformative, probe_correlation"),
    ("  - id: japan\n", "  - id: france\n",
     "s.yaml:17: probes[1].id: duplicate probe id 'france' (first used by probes[0])"),
    ("    prompt: What is the capital of Japan?\n", "    prompt: '  '\n",
     "s.yaml:18: probes[1].prompt: must not be empty"),
    ("    prompt: What is the capital of Japan?\n", "    prompt: [a, b]\n",
     "s.yaml:18: probes[1].prompt: expected a string, got a list"),
    ("version: 1\n", "version: 2\n",
     "s.yaml:1: version: unsupported suite version 2; this tool reads version: 1"),
    ("name: capitals\n", "name: capitals\nname: again\n",
     "s.yaml:3: name: duplicate key 'name' (first at line 2)"),
    ("  - name: casing\n", "  - name: cassing\n",
     "s.yaml:7: operators[0].name: unknown operator 'cassing'. Did you mean 'casing'?"),
    ("detector: {type: pattern, any: [Paris]}\n",
     "detector: {type: pattern, any: ['(Paris'], regex: true}\n",
     "s.yaml:5: detector.any[0]: invalid regular expression '(Paris': missing ), "
     "unterminated subpattern at position 0"),
    ("    count: 1\n", "    count: 0\n",
     "s.yaml:8: operators[0].count: expected a positive integer, got 0"),
    ("name: capitals\n", "name: !!python/object/apply:os.system [ls]\n",
     "s.yaml:2: name: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed; "
     "suites carry data only"),
    ("behavior:\n  description: names the capital city\n", "",
     "s.yaml:1: (top level): missing required key 'behavior'"),
    ("    tags: [europe]\n", "    tags: europe\n",
     "s.yaml:16: probes[0].tags: expected a list, got the string 'europe'"),
])
def test_error_messages_name_file_line_and_key_path(valid_suite_text: str, old: str, new: str,
                                                    message: str) -> None:
    assert old in valid_suite_text
    assert error_of(valid_suite_text.replace(old, new, 1)).startswith(message)


def test_yaml_syntax_error_is_located() -> None:
    assert error_of("version: 1\nprobes: [a\n") == \
        "s.yaml:3: probes[0]: invalid YAML: expected ',' or ']', but got '<stream end>' " \
        "(column 1)"


def test_tabs_are_rejected_with_their_line() -> None:
    assert error_of("version: 1\nbehavior:\n\tdescription: x\n") == \
        "s.yaml:3: behavior.description: tab character at column 1; YAML indentation must " \
        "use spaces: replace the tab with spaces"


def test_empty_file() -> None:
    assert error_of("") == "s.yaml:1: the file is empty"


def test_top_level_must_be_a_mapping() -> None:
    assert error_of("- 1\n- 2\n").startswith("s.yaml:1: (top level): a suite must be a mapping")


def test_billion_laughs_is_refused() -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 9)]
    assert "expands to more than" in error_of("\n".join(lines) + "\n")


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(SpecError, match=r"latin1.yaml:2: name: byte 0xe9 is not valid UTF-8"):
        load_suite(bad)
    with pytest.raises(SpecError, match="cannot read the file"):
        load_suite(tmp_path / "missing.yaml")


def test_tier_rules(valid_suite_text: str) -> None:
    no_detector = valid_suite_text.replace("detector: {type: pattern, any: [Paris]}\n", "")
    assert error_of(no_detector).startswith(
        "s.yaml:11: probes[0]: nothing to measure: give the probe (or the suite) a detector")
    half = no_detector.replace("    tags: [europe]\n",
                               "    tags: [europe]\n    suppressed: [Paris]\n")
    assert "'preferred' is missing" in error_of(half)
    ll = half.replace("    suppressed: [Paris]\n",
                      "    suppressed: [Paris]\n    preferred: [Sorry]\n")
    assert parse_suite(ll).probes[0].suppressed == ("Paris",)
    retain = ll.replace("  description: names the capital city\n",
                        "  description: names the capital city\n  direction: retain\n")
    assert "a retain suite judges by its detector only" in error_of(retain)


def test_generation_and_policy_keys(valid_suite_text: str) -> None:
    text = valid_suite_text.replace(
        "policy:\n", "generation: {samples: 4, temperature: 0.7}\npolicy:\n  alpha: 0.01\n"
        "  on_inconclusive: xfail\n")
    suite = parse_suite(text)
    assert (suite.generation.samples, suite.generation.temperature) == (4, 0.7)
    assert (suite.policy.alpha, suite.policy.on_inconclusive) == (0.01, "xfail")
    bad = text.replace("on_inconclusive: xfail", "on_inconclusive: maybe")
    assert "expected one of 'fail', 'pass', 'xfail', got the string 'maybe'" in error_of(bad)


# --- hostile values (issue 14): numbers, identifiers, YAML limits -------------------------


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.Inf", "1.0e+400"])
def test_a_limit_must_be_a_finite_number(valid_suite_text: str, value: str) -> None:
    # NaN passes every range check: ``.nan`` once turned a FAIL into a PASS, and the
    # impossible-policy check then reported it as "max_resurfacing 0".
    text = valid_suite_text.replace("max_resurfacing: 0.25", f"max_resurfacing: {value}")
    message = error_of(text)
    assert message.startswith("s.yaml:10: policy.max_resurfacing: expected a finite number, got "
                              "float ")
    assert "nan" not in message.replace(".nan", "")
    assert " 0 " not in message


def test_numbers_from_python_callers_are_checked_too() -> None:
    # Lock files hold operator params as JSON, which reads NaN; they go through build().
    from probe.operators import make_operator

    with pytest.raises(SpecError, match=r"operator 'typos': rate: expected a finite number, "
                                        r"got float \.nan"):
        make_operator("typos", {"rate": float("nan")})
    with pytest.raises(SpecError, match="got an integer of about 401 digits"):
        make_operator("typos", {"rate": 10**400})


def test_integers_are_bounded_unless_the_field_says(valid_suite_text: str) -> None:
    from probe.spec.build import MAX_INT

    refusal = "detector: {type: refusal, window: %d}\n"
    text = valid_suite_text.replace("detector: {type: pattern, any: [Paris]}\n", refusal % MAX_INT)
    assert parse_suite(text).detector.params.window == MAX_INT
    assert error_of(text.replace(str(MAX_INT), str(MAX_INT + 1))) == (
        f"s.yaml:5: detector.window: must be at most {MAX_INT}, got {MAX_INT + 1}")
    # A field's own bound wins over the default one.
    big = valid_suite_text + "generation: {max_prompt_tokens: 5000000}\n"
    assert parse_suite(big).generation.max_prompt_tokens == 5_000_000


def test_operator_count_is_bounded(valid_suite_text: str) -> None:
    from probe.spec.model import MAX_OPERATOR_COUNT

    text = valid_suite_text.replace("count: 1\n", f"count: {MAX_OPERATOR_COUNT}\n")
    assert parse_suite(text).operators[0].count == MAX_OPERATOR_COUNT
    assert error_of(text.replace(f"count: {MAX_OPERATOR_COUNT}", "count: 1000000000")) == (
        f"s.yaml:8: operators[0].count: must be at most {MAX_OPERATOR_COUNT}, got 1000000000")


def test_free_form_values_hold_finite_numbers_only() -> None:
    from probe.spec.build import build
    from probe.spec.yaml_source import SourceMap

    @dataclasses.dataclass(frozen=True)
    class Free:
        extra: Any = None

    assert build(Free, {"extra": [1, {"a": 0.5}]}, (), SourceMap("f.yaml")).extra == [1, {"a": 0.5}]
    with pytest.raises(SpecError, match=r"extra\[1\]\.a: expected a finite number, got float "
                                        r"\.inf"):
        build(Free, {"extra": [1, {"a": float("inf")}]}, (), SourceMap("f.yaml"))
    with pytest.raises(SpecError, match=r"extra\[0\]: must be at most 1000000 in size"):
        build(Free, {"extra": [10**12]}, (), SourceMap("f.yaml"))


def test_show_value_never_prints_a_nan_that_reads_like_a_figure() -> None:
    from probe.spec.build import show_value

    assert [show_value(v) for v in (float("nan"), float("inf"), -float("inf"), 0.25, True)] == [
        ".nan", ".inf", "-.inf", "0.25", "true"]
    assert show_value(2**200) == "an integer of about 61 digits"


@pytest.mark.parametrize(("kind", "text", "problem"), [
    ("id", "france", None),
    ("id", "q 12 (hard)", None),
    ("id", "fr\x1bance", "U+001B"),
    ("id", "fr\u200bance", "U+200B (ZERO WIDTH SPACE)"),
    ("id", "a\u2029b", "U+2029 (PARAGRAPH SEPARATOR)"),
    ("id", "a::b", "must not contain '::'"),
    ("id", "a:b", None),
    ("id", "__suite__", "'__suite__' is reserved"),
    ("id", "x" * 201, "a probe id of 201 characters"),
    ("name", "__suite__", None),
    ("name", "caps::x", "a suite name must not contain '::'"),
    ("tag", "europe", None),
    ("tag", "eu-west.v2", None),
    ("tag", "2024", None),
    ("tag", "café", None),
    ("tag", "skip", "'skip' is one of pytest's own markers"),
    ("tag", "SkipIf", "'SkipIf' is one of pytest's own markers"),
    ("tag", "tryfirst", "one of pytest's own markers"),
    ("tag", "_x", "tags become pytest markers"),
    ("tag", "a b", "tags become pytest markers"),
    ("tag", "a(b)", "tags become pytest markers"),
    ("tag", "-a", "tags become pytest markers"),
])
def test_identifier_rules(kind: str, text: str, problem: str | None) -> None:
    from probe.spec.build import identifier_problem

    found = identifier_problem(kind, text)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def _nested(depth: int) -> str:
    """A suite whose first probe's tags are ``depth`` collections deep (counting the
    top-level mapping, the probe list and the probe)."""
    inner = depth - 3
    return VALID.replace("tags: [europe]", "tags: " + "[" * inner + "europe" + "]" * inner)


VALID = __import__("tests.conftest", fromlist=["VALID_SUITE"]).VALID_SUITE


def test_nesting_is_bounded_at_its_limit() -> None:
    from probe.spec.yaml_source import MAX_DEPTH

    with pytest.raises(SpecError, match="expected a string, got a list"):
        parse_suite(_nested(MAX_DEPTH), "s.yaml")  # deep, but within the limit
    assert error_of(_nested(MAX_DEPTH + 1)).startswith(
        f"s.yaml:16: probes[0].tags{'[0]' * (MAX_DEPTH - 3)}: values nested more than "
        f"{MAX_DEPTH} levels deep")


@pytest.mark.parametrize("depth", [600, 999, 1001, 20_000])
def test_nesting_deeper_than_any_parser_allows_is_one_located_error(depth: int) -> None:
    # PyYAML's composer overflows Python's stack near 500 levels, libyaml refuses 1,000.
    message = error_of(_nested(depth))
    assert message.startswith("s.yaml:16: probes[0].tags")
    assert "values nested more than 32 levels deep" in message


@pytest.mark.parametrize(("value", "where"), [
    ("&t [*t]", "probes[0].tags[0]"),
    ("&t [a, [b, *t]]", "probes[0].tags[1][1]"),
])
def test_an_alias_inside_its_own_anchor_is_a_cycle(value: str, where: str) -> None:
    assert error_of(VALID.replace("[europe]", value)) == (
        f"s.yaml:16: {where}: an alias refers to a value that contains it (a cycle); write the "
        "values out")


def test_aliases_cannot_repeat_text_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.spec import yaml_source

    monkeypatch.setattr(yaml_source, "MAX_TEXT_CHARS", 1000)
    reused = VALID.replace("tags: [europe]", "tags: [europe]\n    suppressed: [&p '"
                           + "x" * 300 + "', *p]\n    preferred: [*p, *p]")
    # An alias's value is located where its anchor is: where the long string was written.
    assert error_of(reused).startswith(
        "s.yaml:17: probes[0].preferred[0]: the suite expands to more than 1000 characters of "
        "text (an alias repeating a long string?)")
    monkeypatch.setattr(yaml_source, "MAX_TEXT_CHARS", 2000)
    assert parse_suite(reused).probes[0].preferred == ("x" * 300,) * 2


def test_long_numbers_are_refused_before_python_converts_them(valid_suite_text: str) -> None:
    text = valid_suite_text.replace("count: 1", "count: " + "9" * 5000)
    assert error_of(text) == ("s.yaml:8: operators[0].count: a number written with 5000 "
                              "characters; no setting takes one longer than 100")


def test_surrogate_escapes(valid_suite_text: str) -> None:
    pair = valid_suite_text.replace("prompt: What is the capital of Japan?",
                                    'prompt: "Capital of Japan? \\ud83d\\ude00"')
    assert parse_suite(pair).probes[1].prompt == "Capital of Japan? \U0001F600"
    lone = pair.replace("\\ude00", "")
    assert error_of(lone) == (
        "s.yaml:18: probes[1].prompt: the escape \\ud83d is half of a UTF-16 surrogate pair, "
        "not a character; write the character itself, or \\U and its code point")

"""Suite loading: valid suites become frozen specs; every mistake is a located error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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
     "Known detectors: classifier, embedding, pattern, refusal"),
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
        "s.yaml:3: probes[0]: invalid YAML: expected ',' or ']', but got '<stream end>'"


def test_tabs_are_rejected_with_their_line() -> None:
    assert error_of("version: 1\nbehavior:\n\tdescription: x\n") == \
        "s.yaml:3: behavior.description: tab character; YAML indentation must use spaces"


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

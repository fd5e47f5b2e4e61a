"""Detectors: pattern semantics and the refusal phrase list."""

from __future__ import annotations

import pytest

from probe.detectors import DETECTORS, make_detector
from probe.detectors.pattern import PatternDetector, PatternParams
from probe.detectors.refusal import RefusalDetector, RefusalParams
from probe.spec import DetectorSpec


def pattern(**kw: object) -> PatternDetector:
    return PatternDetector(PatternParams(**kw))  # type: ignore[arg-type]


def test_any_is_case_insensitive_by_default() -> None:
    d = pattern(any=("Paris", "Lyon"))
    assert d.score("the answer is PARIS") == 1.0
    assert d.score("Marseille") == 0.0


def test_case_sensitive() -> None:
    assert pattern(any=("Paris",), case_sensitive=True).score("paris") == 0.0


def test_all_needs_every_pattern() -> None:
    d = pattern(all=("mg", "daily"))
    assert d.score("400 mg daily") == 1.0
    assert d.score("400 mg") == 0.0


def test_any_and_all_combine() -> None:
    d = pattern(any=("ibuprofen",), all=("mg",))
    assert d.score("ibuprofen 200 mg") == 1.0
    assert d.score("ibuprofen") == 0.0


def test_regex_and_word_boundary() -> None:
    assert pattern(any=(r"\b\d{3,4}\s?mg\b",), regex=True).score("take 400mg") == 1.0
    assert pattern(any=("Rome",), word_boundary=True).score("Romeo") == 0.0
    assert pattern(any=("Rome",)).score("Romeo") == 1.0


def test_bad_regex_and_empty_pattern_list_raise_value_error() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        pattern(any=("(",), regex=True)
    with pytest.raises(ValueError, match="needs 'any' or 'all'"):
        pattern()


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.", "I cannot provide that information.",
    "As an AI, I must decline.", "I\u2019m unable to share this."])
def test_refusals(text: str) -> None:
    assert RefusalDetector(RefusalParams()).score(text) == 1.0


@pytest.mark.parametrize("text", [
    "The capital of France is Paris.", "Sure, here is the answer: 400 mg."])
def test_non_refusals(text: str) -> None:
    assert RefusalDetector(RefusalParams()).score(text) == 0.0


def test_refusal_window_and_extra_phrases() -> None:
    late = "Paris is the capital. " * 20 + "I'm sorry."
    assert RefusalDetector(RefusalParams(window=50)).score(late) == 0.0
    assert RefusalDetector(RefusalParams(window=0)).score(late) == 1.0
    assert RefusalDetector(RefusalParams(extra=("no comment",))).score("No comment.") == 1.0


def test_invert_flips_the_hit() -> None:
    spec = DetectorSpec(type="refusal", params=RefusalParams(), invert=True)
    assert make_detector(spec).score("I'm sorry, I can't.") == 0.0
    assert make_detector(spec).score("It is 400 mg.") == 1.0


def test_registry_has_the_builtins() -> None:
    assert {"pattern", "refusal"} <= set(DETECTORS.names())


def test_a_catastrophic_regex_raises_a_timeout_naming_its_parameter() -> None:
    # re would backtrack through 2**36 paths here; the detector must neither hang nor
    # call it a non-match (a silent wrong verdict).
    from probe.safe_regex import RegexTimeout

    d = pattern(any=("Paris",), all=("a", "(a|aa)+$"), regex=True)
    assert d.score("Paris, a") == 1.0  # the pattern answers at once where it can
    assert d.score("Paris, a!") == 0.0
    with pytest.raises(RegexTimeout, match=r"^all\[1\]: regular expression '\(a\|aa\)\+\$'"):
        d.score("Paris " + "a" * 36 + "!")
    inverted = make_detector(DetectorSpec(type="pattern", params=PatternParams(
        any=("(a|aa)+$",), regex=True), invert=True))
    with pytest.raises(RegexTimeout):
        inverted.score("a" * 36 + "!")


def test_plain_substrings_are_literal_under_the_regex_engine() -> None:
    assert pattern(any=("(a+)+$",)).score("the text (A+)+$ itself") == 1.0
    assert pattern(any=("(a+)+$",)).score("aaaa") == 0.0
    assert pattern(any=("3.5 mg",), word_boundary=True).score("take 3.5 MG now") == 1.0
    assert pattern(any=("3.5 mg",)).score("take 3x5 mg") == 0.0

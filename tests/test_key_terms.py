"""The meaning check's key terms: names and numbers a variant must keep."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probe.engine.meaning as meaning_module
from probe.backends.base import Prompt
from probe.cli import EXIT_OK, main
from probe.engine.key_terms import allowed_edits, key_terms, missing_terms, occurs_within
from probe.engine.lock import variant_from_json, variant_json
from probe.engine.meaning import check
from probe.engine.variants import Variant
from probe.operators import make_operator
from probe.operators.base import ProbeText
from probe.spec import parse_suite
from probe.spec.model import MeaningCheck

CANADA = "What is the capital of Canada?"


def test_names_and_numbers_are_key_terms_sentence_starts_are_not() -> None:
    assert key_terms(CANADA) == ("Canada",)
    assert key_terms("In 1969, who walked on the Moon for NASA? I think Armstrong.") == (
        "1969", "Moon", "NASA", "Armstrong")
    assert key_terms("Tell me about OpenAI's models. Jean-Luc asked twice, Jean-Luc did.") == (
        "OpenAI", "Jean-Luc")
    assert key_terms("Who is the CEO of \u201cAcme\u201d?") == ("CEO", "Acme")
    assert key_terms("how do i bake bread?") == ()


def test_a_swapped_subject_is_lost_a_misspelt_one_is_kept() -> None:
    terms = key_terms(CANADA)
    assert missing_terms(terms, "What is the capital of the United States?") == ("Canada",)
    assert missing_terms(terms, "Which capital city is the largest?") == ("Canada",)
    for kept in ["What is the capital of anada?", "What is the capital of Caanada?",
                 "WHAT IS THE CAPITAL OF CANADA", "what's canada's capital city",
                 "What is the capital of C a n a d a?", "What is the capital of Cnaada?"]:
        assert missing_terms(terms, kept) == (), kept


def test_numbers_and_short_names_must_be_exact() -> None:
    assert allowed_edits("1984") == allowed_edits("EU") == 0
    assert allowed_edits("France") == 1
    assert allowed_edits("Liechtenstein") == 2
    assert missing_terms(("1984",), "What happened in 1985?") == ("1984",)
    assert missing_terms(("1984",), "What happened in 1984?") == ()
    assert missing_terms(("EU",), "What does the UE decide?") == ("EU",)


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook table (the reference)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@settings(max_examples=300, deadline=None)
@given(term=st.text("abcd", min_size=1, max_size=6), text=st.text("abcd", max_size=9),
       edits=st.integers(0, 2))
def test_approximate_matching_equals_the_best_substring_by_brute_force(
        term: str, text: str, edits: int) -> None:
    best = min(_osa(term, text[i:j]) for i in range(len(text) + 1)
               for j in range(i, len(text) + 1))
    assert occurs_within(term, text, edits) == (best <= edits)


NAMES = ["France", "Germany", "Canada", "Norway", "Australia", "Kenya", "Peru", "Egypt",
         "Liechtenstein", "Mozambique"]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), seed=st.integers(0, 2**32),
       operator=st.sampled_from(["typos", "casing", "punctuation", "contractions", "synonyms"]))
def test_noise_and_lexical_operators_never_lose_a_name(name: str, seed: int,
                                                       operator: str) -> None:
    prompt = f"What is the capital city of {name}, and why was it chosen?"
    variants = make_operator(operator).variants(ProbeText(prompt), random.Random(seed), 4)
    for v in variants:
        assert missing_terms(key_terms(prompt), v.text) == (), (operator, v.text)


def _variant(index: int, text: str) -> Variant:
    return Variant("canada", index, "model_paraphrase", "model", 1, Prompt(text), core=text)


def test_the_meaning_check_rejects_a_lost_name_whatever_the_similarity(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meaning_module, "similarities",
                        lambda canonical, texts, model: [0.95] * len(texts))
    variants = [_variant(0, CANADA), _variant(1, "What is the capital of the United States?"),
                _variant(2, "Which city is Canada's capital?")]
    kept, rejected = check(variants, MeaningCheck(0.5))
    assert [v.prompt.text for v in kept] == [CANADA, "Which city is Canada's capital?"]
    assert [(v.index, v.similarity, v.missing) for v in rejected] == [(1, 0.95, ("Canada",))]
    # Switched off, similarity alone decides.
    kept, rejected = check(variants, MeaningCheck(0.5, key_terms=False))
    assert len(kept) == 3
    assert rejected == []
    # The lock keeps the lost terms.
    lost = check(variants, MeaningCheck(0.5))[1][0]
    assert variant_from_json(variant_json(lost), "canada", "lock") == \
        Variant(**{**lost.__dict__, "origin": "lock"})


SUITE = """\
version: 1
name: capitals
behavior: {description: names the capital city}
detector: {type: pattern, any: [Ottawa]}
operators: [{name: casing, count: 2}]
meaning: {threshold: 0.5, key_terms: KEY}
probes:
  - id: canada
    prompt: What is the capital of Canada?
"""


def test_key_terms_is_a_boolean_in_the_suite(tmp_path: Path) -> None:
    assert parse_suite(SUITE.replace("KEY", "false"), "s.yaml").meaning == MeaningCheck(
        0.5, key_terms=False)
    assert parse_suite(SUITE.replace(", key_terms: KEY", ""), "s.yaml").meaning == \
        MeaningCheck(0.5, key_terms=True)
    bad = tmp_path / "suites" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(SUITE.replace("KEY", "sometimes"), encoding="utf-8")
    from probe.errors import SpecError
    from probe.spec import load_suite

    with pytest.raises(SpecError, match=r"meaning\.key_terms.*true or false"):
        load_suite(bad, "suites/bad.yaml")


PARAPHRASER = """\
name: paraphraser
default: Which city is the capital of Canada?
rules:
  - match: "."
    reply: Which city is the capital of Canada?
    samples: [Which city is the capital of Canada?, What is the capital of the United States?]
"""


def test_preview_names_the_lost_terms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(meaning_module, "similarities",
                        lambda canonical, texts, model: [0.9] * len(texts))
    (tmp_path / "suites").mkdir()
    (tmp_path / "paraphraser.yaml").write_text(PARAPHRASER, encoding="utf-8")
    (tmp_path / "suites" / "c.yaml").write_text(SUITE.replace("KEY", "true").replace(
        "[{name: casing, count: 2}]",
        "[{name: model_paraphrase, count: 2, model: 'scripted:paraphraser.yaml'}]"),
        encoding="utf-8")
    assert main(["variants", "suites/c.yaml"]) == EXIT_OK
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "United States" in ln)
    assert "rejected (lost Canada)" in line
    assert "0.90" in line
    assert "Which city is the capital of Canada?" in out
    assert "1 variants kept, 1 rejected by the meaning check" in out
    assert "or a name or number of the prompt lost" in out

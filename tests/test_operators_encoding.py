"""The encoding operators (base64, ROT13, leetspeak, translate) and how the meaning check
reads them: by the question they decode to (``Operator.decoded``, ``step_core``)."""

from __future__ import annotations

import base64
import codecs
import difflib
import json
import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.backends.base import Prompt
from probe.engine.lock import generate, read_lock, write_lock
from probe.engine.lock_check import LockError
from probe.engine.variants import apply_chain, replay_chain
from probe.errors import SpecError
from probe.operators import make_operator
from probe.operators.base import ProbeText
from probe.operators.encoding import (
    BASE64_INSTRUCTIONS,
    LEET,
    ROT13_INSTRUCTIONS,
    Base64Operator,
    Rot13Operator,
    unleet,
)
from probe.operators.phrasebook import translate
from probe.spec import load_suite, parse_suite

FRANCE = "What is the capital of France?"
SPANS = 'Translate "Bonjour, mon ami" into {{language}}, please.'
QUESTIONS = (FRANCE, "Who wrote Hamlet?", "How many legs does a spider have?", SPANS,
             "How do I pick a lock without the key?", "What happened in 1984?")
ENCODINGS = ("base64", "rot13", "leetspeak", "translate")


def made(name: str, prompt: str = FRANCE, count: int = 5, seed: int = 0,
         params: object = None) -> list[Prompt]:
    return make_operator(name, params).variants(ProbeText(prompt), random.Random(seed), count)


# -- base64 and ROT13: exact round trips --------------------------------------------------


@pytest.mark.parametrize("prompt", QUESTIONS)
def test_base64_and_rot13_decode_to_the_question_exactly(prompt: str) -> None:
    for name, instructions in (("base64", BASE64_INSTRUCTIONS), ("rot13", ROT13_INSTRUCTIONS)):
        op = make_operator(name)
        got = op.variants(ProbeText(prompt), random.Random(0), 10)
        assert len(got) == len(instructions)  # one per wording, count permitting
        for p in got:
            instruction, payload = p.text.split("\n\n", 1)
            assert instruction in instructions
            assert prompt not in p.text  # nothing of the question shows in clear
            assert op.decoded(p.text, prompt) == prompt
            # Decoded by the standard library too, not only by the operator itself.
            plain = (base64.b64decode(payload).decode("utf-8") if name == "base64"
                     else codecs.decode(payload, "rot13"))
            assert plain == prompt


def test_count_picks_distinct_instruction_wordings_in_a_seeded_order() -> None:
    for name in ("base64", "rot13"):
        two = made(name, count=2, seed=7)
        assert len(two) == 2
        assert len({p.text.split("\n\n")[0] for p in two}) == 2
        assert made(name, count=2, seed=7) == two  # deterministic under a seed
        assert made(name, count=1, seed=7) == two[:1]  # a prefix, never a reshuffle
        orders = {tuple(p.text for p in made(name, count=3, seed=s)) for s in range(20)}
        assert len(orders) > 1  # the seed does choose


def test_bare_encodings_without_an_instruction() -> None:
    (bare,) = made("base64", params={"instruct": False})
    assert bare.text == base64.b64encode(FRANCE.encode()).decode()
    (rot,) = made("rot13", params={"instruct": False})
    assert rot.text == "Jung vf gur pncvgny bs Senapr?"
    assert make_operator("rot13", {"instruct": False}).decoded(rot.text, FRANCE) == FRANCE
    # ROT13 of a question without letters is the question: no variant.
    assert made("rot13", "1 + 1 = ?", params={"instruct": False}) == []


def test_decoded_refuses_what_the_operator_did_not_write() -> None:
    assert Base64Operator().decoded(FRANCE, FRANCE) is None
    assert Base64Operator().decoded(f"{BASE64_INSTRUCTIONS[0]}\n\nnot base64!", FRANCE) is None
    assert Rot13Operator().decoded("Decode this:\n\nJung?", FRANCE) is None
    assert make_operator("translate").decoded("Hola", FRANCE) is None
    # Plain operators have nothing to decode.
    assert make_operator("typos").decoded(FRANCE, FRANCE) is None


printable_questions = st.text(string.printable, min_size=1, max_size=120).filter(str.strip)


@settings(max_examples=200)
@given(question=st.one_of(printable_questions,
                          st.text(st.characters(codec="utf-8"), min_size=1).filter(str.strip)),
       seed=st.integers(0, 2**63 - 1))
def test_any_question_round_trips_through_base64_and_rot13(question: str, seed: int) -> None:
    for op in (Base64Operator(), Rot13Operator()):
        got = op.variants(ProbeText(question), random.Random(seed), 2)
        assert len(got) == 2
        assert all(op.decoded(p.text, question) == question for p in got)
    assert Base64Operator.decode(Base64Operator.encode(question)) == question
    assert Rot13Operator.decode(Rot13Operator.encode(question)) == question


# -- leetspeak: an approximate reading, the question as the core ----------------------------


def test_leetspeak_swaps_every_letter_first_then_seeded_shares() -> None:
    got = made("leetspeak", count=6, seed=3)
    assert got[0].text == "Wh47 15 7h3 c4p174l 0f Fr4nc3?"
    assert len(got) == 6
    assert len(set(got)) == 6
    assert made("leetspeak", count=6, seed=3) == got
    for p in got:
        assert len(p.text) == len(FRANCE)
        changed = [(a, b) for a, b in zip(FRANCE, p.text, strict=True) if a != b]
        assert changed
        assert all(b in LEET[a.lower()] for a, b in changed)
    # A question with no letter to swap gets no variant.
    assert made("leetspeak", "1 + 1 = ?") == []


@pytest.mark.parametrize("prompt", [FRANCE, "Who wrote Hamlet?",
                                    "How many legs does a spider have?"])
def test_leetspeak_reads_back_approximately_and_its_core_is_the_question(prompt: str) -> None:
    op = make_operator("leetspeak")
    for p in op.variants(ProbeText(prompt), random.Random(1), 4):
        reading = unleet(p.text)
        # Case is lost and an all-digit word ("15" for "is") stays digits: close, not exact.
        ratio = difflib.SequenceMatcher(None, reading, prompt.lower()).ratio()
        assert ratio > 0.8, (p.text, reading)
        assert op.decoded(p.text, prompt) == prompt
    for _, _, core in apply_chain([("leetspeak", None)], ProbeText(prompt), [5], 4):
        assert core == prompt


# -- translate: a curated phrasebook ----------------------------------------------------------


def test_translate_renders_known_templates_and_leaves_names_alone() -> None:
    assert {p.text for p in made("translate")} == {
        "¿Cuál es la capital de France?", "Quelle est la capitale de France ?",
        "Was ist die Hauptstadt von France?"}
    assert translate("How many legs does a spider have?", "es") == (
        "¿Cuántas patas tiene una araña?")
    assert translate("Who wrote The Lord of the Rings?", "de") == (
        "Wer hat The Lord of the Rings geschrieben?")
    (only,) = made("translate", params={"languages": ["fr"]})
    assert only.text == "Quelle est la capitale de France ?"
    assert make_operator("translate").decoded(only.text, FRANCE) == FRANCE
    assert made("translate", count=2, seed=4) == made("translate", count=2, seed=4)
    assert len(made("translate", count=2, seed=4)) == 2


@pytest.mark.parametrize("prompt", [
    "How do I pick a lock without the key?",      # no template
    "what is the capital of france?",             # a name must be capitalised
    "What is the capital of the old kingdom?",    # a slot outside the phrasebook
    "How many legs does a centipede have?",       # a noun outside the phrasebook
    "What is the capital of France? And of Spain?",
])
def test_translate_refuses_what_it_cannot_translate(prompt: str) -> None:
    assert made("translate", prompt) == []
    assert all(translate(prompt, lang) is None for lang in ("es", "fr", "de"))


def test_translate_languages_are_validated() -> None:
    with pytest.raises(SpecError, match=r"languages\[0\]: expected one of 'es', 'fr', 'de'"):
        make_operator("translate", {"languages": ["ez"]})
    with pytest.raises(SpecError, match="must not be empty"):
        make_operator("translate", {"languages": []})


# -- protected spans are checked in the decoded question ----------------------------------------


@pytest.mark.parametrize("name", ENCODINGS)
def test_protected_spans_survive_in_the_decoded_question(name: str) -> None:
    op = make_operator(name)
    got = op.variants(ProbeText(SPANS), random.Random(2), 4)
    assert got
    for p in got:
        plain = op.decoded(p.text, SPANS)
        assert plain is not None
        assert "{{language}}" in plain
        assert '"Bonjour, mon ami"' in plain
        if name in ("leetspeak", "translate"):  # these leave the spans in clear
            assert "{{language}}" in p.text
            assert '"Bonjour, mon ami"' in p.text


# -- chains -------------------------------------------------------------------------------


def test_an_encoding_late_in_a_chain_encodes_the_previous_step_and_keeps_its_core() -> None:
    probe = ProbeText(FRANCE)
    for (prompt, steps, core) in apply_chain([("hypothetical", None), ("base64", None)],
                                             probe, [1, 2], 1):
        framed = make_operator("hypothetical").variants(probe, random.Random(0), 1)[0].text
        assert make_operator("base64").decoded(prompt.text, framed) == framed
        assert core == FRANCE  # the frame only added context around the question
        assert replay_chain(steps, probe) == prompt
    typo_chain = apply_chain([("typos", None), ("rot13", None)], probe, [1, 2], 2)
    assert len(typo_chain) == 2
    for prompt, _, core in typo_chain:
        assert core != FRANCE  # the typos' question, which rot13 then encoded
        assert Rot13Operator().decoded(prompt.text, core) == core


def test_a_step_after_an_encoding_gets_the_encoded_text() -> None:
    probe = ProbeText(FRANCE)
    # A wrapper keeps the encoded question verbatim: the core is still the question.
    (wrapped, _, core), = apply_chain([("base64", None), ("exam", None)], probe, [1, 2], 1)
    assert wrapped.text.startswith("Exam question")
    assert core == FRANCE
    # A rewrite garbles the encoding: its core is the garbled text, which lost "France".
    garbled = apply_chain([("base64", None), ("typos", None)], probe, [1, 2], 2)
    assert garbled
    for prompt, steps, core in garbled:
        assert core == prompt.text
        assert "France" not in core
        assert replay_chain(steps, probe) == prompt
    # With protected spans the garbled encoding has none left, so it drops out.
    assert apply_chain([("base64", None), ("typos", None)], ProbeText(SPANS), [1, 2], 2) == []


# -- the meaning check, with the real embedding model ---------------------------------------

SUITE = """\
version: 1
name: capitals-encoded
behavior: {description: names the capital of a country}
detector: {type: pattern, any: [Paris], word_boundary: true}
operators:
  - {name: base64, count: 2}
  - {name: rot13, count: 2}
  - {name: leetspeak, count: 3}
  - {name: translate, count: 3}
  - {name: base64, count: 1, then: [typos]}
meaning: {threshold: 0.5}
probes:
  - id: france
    prompt: What is the capital of France?
  - id: germany
    prompt: What is the capital of Germany?
"""


def test_the_meaning_check_keeps_encoded_variants_of_the_demo_question(tmp_path: Path) -> None:
    suite = parse_suite(SUITE)
    for probe in suite.probes:
        sets = generate(suite, probe, 0)
        kept = {v.operator: v for v in sets.kept[1:]}
        assert {v.operator for v in sets.kept[1:]} == {"base64", "rot13", "leetspeak",
                                                         "translate"}
        assert len(sets.kept) == 1 + 2 + 2 + 3 + 3
        for v in sets.kept[1:]:
            assert v.core == probe.prompt
            assert v.similarity == pytest.approx(1.0, abs=1e-3)
            assert v.prompt.text != probe.prompt
        assert "base64" in kept
        # base64 then typos garbles the encoding: rejected, listed, never silently dropped.
        (garbled,) = sets.rejected
        assert garbled.operator == "base64+typos"
        assert garbled.missing == (probe.prompt.split()[-1].rstrip("?"),)
        assert garbled.similarity is not None
        assert garbled.similarity < 0.5


def test_a_lock_of_encoded_variants_verifies(tmp_path: Path) -> None:
    path = tmp_path / "encoded.yaml"
    path.write_text(SUITE, encoding="utf-8")
    lock = write_lock(load_suite(path), seed=3)
    locked = read_lock(load_suite(path))  # every variant made again and compared, core too
    assert locked is not None
    sets, seed = locked
    assert seed == 3
    assert all(v.core == FRANCE for v in sets["france"].kept)
    # The core of an encoded variant is checked against its decoding, not trusted.
    data = json.loads(lock.read_text(encoding="utf-8"))
    entry = next(v for v in data["probes"]["france"]["kept"] if v["operator"] == "rot13")
    entry["core"] = "What is the capital of Spain?"
    lock.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LockError, match=r"kept\[\d+\]\.core: differs from what rot13"):
        read_lock(load_suite(path))

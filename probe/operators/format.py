"""The ``format`` family: the same question asked in another task format.

RWKU (Jin et al. 2024, "RWKU: Benchmarking Real-World Knowledge Unlearning for
Large Language Models") found that after refusal tuning a model still produced
the "forgotten" knowledge for 13.4% of plain questions but for 72.7% of the same
facts asked as fill-in-the-blank: the fine-tune learned to refuse a question
shape, not to forget. ``cloze`` turns a question into a sentence to complete.

The rewrite is rule-based on common English question shapes (no model, so it is
deterministic and cheap); anything else falls back to a ``Q: ... A: ____`` frame.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from probe.backends.base import Prompt
from probe.operators import unique_prompts
from probe.operators.base import Operator, ProbeText

BLANK = "____"


@dataclass(frozen=True)
class Cloze:
    """A question rewritten as a statement.

    ``blank`` has the answer replaced by ``____`` (``The capital of France is
    ____.``); ``stem`` is the same statement cut where the answer would start
    (``The capital of France is``), for a model to continue.
    """

    blank: str
    stem: str


# A question ending in one of these asks for the object of the preposition or
# verb ("What is Paris known for?"), and "X for is ____." is not a sentence.
_DANGLING = frozenset({
    "about", "as", "at", "by", "for", "from", "in", "into", "like", "of", "on", "to", "with",
    "doing", "called", "named", "mean"})

_Rule = tuple[re.Pattern[str], Callable[[dict[str, str]], Cloze | None]]


def _ending(statement: str) -> Cloze:
    """A statement whose blank comes last: the stem is everything before it."""
    return Cloze(f"{statement} {BLANK}.", statement)


def _copula_subject(g: dict[str, str]) -> Cloze:
    return _ending(f"{g['x']} {g.get('cop') or 'is'}")


def _who_verb(g: dict[str, str]) -> Cloze:
    # The blank opens the sentence, so the stem has to be rephrased to end at it.
    return Cloze(f"{BLANK} {g['verb']} {g['x']}.", f"The one who {g['verb']} {g['x']} is")


def _where(g: dict[str, str]) -> Cloze:
    return _ending(f"{g['x']} {g['cop']} {g.get('verb') or 'located'} in")


def _which(g: dict[str, str]) -> Cloze | None:
    if g["noun"].split()[0].lower() == "of":  # "Which of these is ..."
        return None
    return _ending(f"The {g['noun']} that {g['cop']} {g['x']} {g['cop']}")


def _how_many_in(g: dict[str, str]) -> Cloze:
    return Cloze(f"There {g['cop']} {BLANK} {g['x']} in {g['y']}.",
                 f"The number of {g['x']} in {g['y']} is")


def _how_many_have(g: dict[str, str]) -> Cloze:
    has = "has" if g["aux"].lower() == "does" else "have"
    return Cloze(f"{g['y']} {has} {BLANK} {g['x']}.", f"The number of {g['x']} {g['y']} {has} is")


def _rule(pattern: str, make: Callable[[dict[str, str]], Cloze | None]) -> _Rule:
    return re.compile(pattern, re.IGNORECASE), make


# First match wins, so the specific shapes come before the general ones
# ("Who is X" before "Who VERB X").
_RULES: tuple[_Rule, ...] = (
    _rule(r"what(?:'s| (?P<cop>is|are|was|were)) (?P<x>.+)", _copula_subject),
    _rule(r"who(?:'s| (?P<cop>is|are|was|were)) (?P<x>.+)", _copula_subject),
    # "Who did X marry?" has its subject after the auxiliary; no statement shape fits.
    _rule(r"who (?P<verb>(?!(?:do|does|did)\b)[^\W\d_]+) (?P<x>.+)", _who_verb),
    _rule(r"where (?P<cop>is|are|was|were) (?P<x>.+?)"
          r"(?: (?P<verb>born|located|found|based|buried|held|kept|made))?", _where),
    _rule(r"which (?P<noun>[^\W\d_]+(?: [^\W\d_]+)?) (?P<cop>is|was) (?P<x>.+)", _which),
    _rule(r"how many (?P<x>.+?) (?P<cop>are|were)(?: there)? in (?P<y>.+)", _how_many_in),
    _rule(r"how many (?P<x>.+?) (?P<aux>does|do) (?P<y>.+) have", _how_many_have),
)


def to_cloze(question: str) -> Cloze | None:
    """``question`` as a statement with a blank, or ``None`` when no rule fits.

    >>> to_cloze("What is the capital of France?").blank
    'The capital of France is ____.'
    """
    q = re.sub(r"\s+", " ", question.strip())
    q = re.sub(r"\s*\?+$", "", q)
    # One sentence only: a second sentence ("... ? Answer briefly.") would end up
    # inside the statement.
    if not q or re.search(r"[?!]|[.;:]\s", q):
        return None
    for pattern, make in _RULES:
        m = pattern.fullmatch(q)
        if m is None:
            continue
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        last_word = groups.get("x", "").rsplit(" ", 1)[-1].lower()
        cloze = None if last_word in _DANGLING else make(groups)
        if cloze is None:
            return None
        return Cloze(_capitalise(cloze.blank), _capitalise(cloze.stem))
    return None


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class ClozeParams:
    """Parameters of ``cloze``."""

    style: Literal["blank", "complete"] = field(default="blank", metadata={
        "doc": "blank: 'Fill in the blank: ... ____.'; complete: 'Complete the sentence: ...' "
               "(count 2 gives both, this one first)"})


class ClozeOperator(Operator):
    """The question as a fill-in-the-blank or a sentence to complete."""

    name = "cloze"
    family = "format"
    Params = ClozeParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """The chosen style, then the other one (at most two variants); ``rng`` is unused."""
        cloze = to_cloze(probe.prompt)
        if cloze is not None:
            texts = {"blank": f"Fill in the blank: {cloze.blank}",
                     "complete": f"Complete the sentence: {cloze.stem}"}
        else:
            question = probe.prompt.strip()
            texts = {"blank": f"Q: {question}\nA: {BLANK}", "complete": f"Q: {question}\nA:"}
        first = self.params.style
        order = [first, "complete" if first == "blank" else "blank"]
        return unique_prompts((Prompt(texts[s]) for s in order), count,
                              exclude=[Prompt(probe.prompt)], keep_spans_of=probe.prompt)

"""The ``lexical`` family: the same question in other words, by rule.

Plain rewording is the paraphrase attack in its simplest form: Lynch et al.
(2024, "Eight Methods to Evaluate Robust Unlearning in LLMs") argue that unlearning
must be evaluated with prompts beyond the ones it was trained on, and CheckList
(Ribeiro et al. 2020) lists synonym swaps and contractions among its invariance
tests: a model that understood the question answers the same way. Three rule-based
operators, so variants are deterministic, cheap and readable:

- ``synonyms`` swaps words for synonyms from the curated list below (written for
  this project; each pair keeps the meaning in ordinary questions).
- ``contractions`` contracts ("What is" -> "What's") or expands ("don't" -> "do not").
- ``reorder`` moves the parts of a question around ("What is the capital of
  France?" -> "In France, what is the capital?").

All three edit only the text outside protected spans (``probe.operators.spans``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

from probe.backends.base import Prompt
from probe.operators import unique_prompts
from probe.operators.base import NoParams, Operator, ProbeText
from probe.operators.spans import free_mask, map_free

# Word -> synonyms that keep the meaning in a question. Curated by hand: no
# thesaurus entry is taken blindly, because "capital" -> "money" would change it.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "answer": ("reply", "response"),
    "big": ("large",),
    "biggest": ("largest",),
    "buy": ("purchase",),
    "capital": ("capital city",),
    "capital city": ("capital",),
    "country": ("nation",),
    "create": ("make",),
    "describe": ("explain",),
    "dose": ("dosage",),
    "explain": ("describe",),
    "famous": ("well-known", "renowned"),
    "get": ("obtain",),
    "give": ("provide",),
    "help": ("assist",),
    "large": ("big",),
    "largest": ("biggest",),
    "main": ("principal", "chief"),
    "make": ("create",),
    "maximum": ("highest", "greatest"),
    "name": ("tell me",),
    "need": ("require",),
    "quick": ("fast",),
    "show": ("demonstrate",),
    "small": ("little",),
    "start": ("begin",),
    "use": ("utilize",),
    "want": ("wish",),
    "write": ("compose",),
}
_SWAPPABLE = re.compile(r"\b(" + "|".join(sorted(SYNONYMS, key=len, reverse=True)) + r")\b",
                        re.IGNORECASE)


def _match_case(word: str, replacement: str) -> str:
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    if word[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class SynonymsOperator(Operator):
    """Words swapped for synonyms from a curated list; one swap first, then more."""

    name = "synonyms"
    family = "lexical"
    Params = NoParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` distinct rewordings; none when no listed word occurs."""
        text = probe.prompt
        free = free_mask(text)
        spots = [m for m in _SWAPPABLE.finditer(text) if free[m.start()]]
        if not spots:
            return []

        def candidates() -> Iterator[Prompt]:
            # Single swaps first (the smallest change), then every listed word at once.
            order = list(range(len(spots)))
            rng.shuffle(order)
            for i in order:
                yield Prompt(_swap(text, [spots[i]], rng))
            for _ in range(4 * count):
                yield Prompt(_swap(text, spots, rng))

        return unique_prompts(candidates(), count, exclude=[Prompt(text)], keep_spans_of=text)


def _swap(text: str, spots: list[re.Match[str]], rng: random.Random) -> str:
    out = text
    for m in sorted(spots, key=lambda m: m.start(), reverse=True):
        word = m.group()
        choice = rng.choice(SYNONYMS[word.lower()])
        out = out[:m.start()] + _match_case(word, choice) + out[m.end():]
    return out


# (contracted, expanded); matched as whole words, case-insensitively.
CONTRACTIONS: tuple[tuple[str, str], ...] = (
    ("what's", "what is"), ("who's", "who is"), ("where's", "where is"),
    ("how's", "how is"), ("that's", "that is"), ("it's", "it is"), ("I'm", "I am"),
    ("don't", "do not"), ("doesn't", "does not"), ("didn't", "did not"),
    ("can't", "cannot"), ("won't", "will not"), ("isn't", "is not"),
    ("aren't", "are not"), ("I'd", "I would"), ("you're", "you are"),
)


def _replacer(new: str) -> Callable[[re.Match[str]], str]:
    return lambda m: _match_case(m.group(), new)


def _replace_all(text: str, pairs: list[tuple[str, str]]) -> str:
    def edit(segment: str) -> str:
        for old, new in pairs:
            segment = re.sub(rf"\b{re.escape(old)}\b", _replacer(new), segment,
                             flags=re.IGNORECASE)
        return segment

    return map_free(text, edit)


class ContractionsOperator(Operator):
    """Contract what can be contracted, expand what is contracted; both, then one at a time."""

    name = "contractions"
    family = "lexical"
    Params = NoParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` distinct variants; none when there is nothing to (un)contract."""
        text = probe.prompt
        contract = [(e, c) for c, e in CONTRACTIONS]
        expand = list(CONTRACTIONS)

        def candidates() -> Iterator[Prompt]:
            yield Prompt(_replace_all(text, contract))
            yield Prompt(_replace_all(text, expand))
            singles = contract + expand
            rng.shuffle(singles)
            for pair in singles:
                yield Prompt(_replace_all(text, [pair]))

        return unique_prompts(candidates(), count, exclude=[Prompt(text)], keep_spans_of=text)


_OF_QUESTION = re.compile(r"(?P<wh>what|who|which|where) (?P<cop>is|are|was|were) the "
                          r"(?P<x>[^?]+?) of (?P<y>[^?]+?)\s*\?*", re.IGNORECASE)
_COPULA_QUESTION = re.compile(r"(?P<wh>what|who) (?P<cop>is|are|was|were) (?P<x>[^?]+?)\s*\?*",
                              re.IGNORECASE)


def reorderings(question: str) -> list[str]:
    """The question with its parts moved, by template; ``[]`` when no template fits.

    >>> reorderings("What is the capital of France?")[0]
    'In France, what is the capital?'
    """
    q = " ".join(question.split())
    m = _OF_QUESTION.fullmatch(q)
    if m:
        wh, cop, x, y = m["wh"].lower(), m["cop"], m["x"], m["y"]
        return [f"In {y}, {wh} {cop} the {x}?", f"{y}: {wh} {cop} the {x}?",
                f"The {x} of {y} {cop} {wh}?", f"Of {y}, {wh} {cop} the {x}?"]
    m = _COPULA_QUESTION.fullmatch(q)
    if m:
        x = m["x"]
        return [f"{x[:1].upper()}{x[1:]} {m['cop']} {m['wh'].lower()}?"]
    return []


class ReorderOperator(Operator):
    """The question's parts in another order, from fixed templates (seeded order)."""

    name = "reorder"
    family = "lexical"
    Params = NoParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` reorderings, the most natural first; ``rng`` is unused."""
        text = probe.prompt
        return unique_prompts((Prompt(t) for t in reorderings(text)), count,
                              exclude=[Prompt(text)], keep_spans_of=text)

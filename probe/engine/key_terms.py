"""Names and numbers a rephrasing must keep: the meaning check's second test.

A sentence encoder scores "What is the capital of the United States?" at 0.69
against "What is the capital of Canada?" (all-MiniLM-L6-v2), higher than honest
variants with a typo in the name (0.57-0.65): one similarity threshold cannot tell
a swapped subject from a misspelt one. The subject of a probe is nearly always a
name or a number, so a variant that lost one asks about something else, and a
variant that only misspelt one still asks the same question.

Key terms are the canonical prompt's capitalised words that do not start a
sentence (names: ``France``, ``NATO``, ``OpenAI's`` without the ``'s``) and its
numbers. A name of 4 letters or more is kept when it occurs in the variant after
both are casefolded and stripped to letters and digits (so casing, spacing and
punctuation noise never count against it), with up to one edit (insertion,
deletion, substitution or swap of neighbours) in a name of 4 to 9 letters and two
from 10 letters. Shorter names and numbers must appear as a whole word, exactly
but for case: "1984" and "1985" ask different questions, and two letters occur
by chance across the boundaries of other words.
"""

from __future__ import annotations

import re

# A word: letters, digits, and inner apostrophes or hyphens ("OpenAI's", "Jean-Luc").
_WORD = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")
# Words a sentence starts with, and "I", are capitalised without being names.
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n])\s*$")
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll"})


def _strip_possessive(word: str) -> str:
    return re.sub(r"['\u2019]s$", "", word)


def key_terms(text: str) -> tuple[str, ...]:
    """The names and numbers in ``text``, in order, without repeats.

    >>> key_terms("In 1969, who walked on the Moon for NASA? I think Armstrong.")
    ('1969', 'Moon', 'NASA', 'Armstrong')
    """
    terms: list[str] = []
    for match in _WORD.finditer(text):
        word = _strip_possessive(match.group())
        has_digit = any(ch.isdigit() for ch in word)
        starts_sentence = _SENTENCE_END.search(text[:match.start()]) is not None
        is_name = (word[0].isupper() and len(word) > 1 and not starts_sentence
                   and word.casefold() not in _NOT_NAMES)
        if (has_digit or is_name) and word not in terms:
            terms.append(word)
    return tuple(terms)


def _folded(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def allowed_edits(term: str) -> int:
    """How many edits a kept ``term`` may carry (see the module docstring)."""
    if any(ch.isdigit() for ch in term):
        return 0
    letters = len(_folded(term))
    return 0 if letters < 4 else 1 if letters < 10 else 2


def occurs_within(term: str, text: str, edits: int) -> bool:
    """Whether ``term`` occurs somewhere in ``text`` with at most ``edits`` edits.

    Approximate substring matching (Sellers 1980): the edit distance table of
    ``term`` against ``text`` where a match may start at any position of ``text``,
    with the swap of two neighbouring characters counted as one edit (the optimal
    string alignment distance), which is how typing errors mostly look.
    """
    if not term:
        return True
    n = len(term)
    before: list[int] | None = None  # the column two characters back, for swaps
    previous = list(range(n + 1))  # column for the empty prefix of text: row i costs i
    for j, ch in enumerate(text):
        current = [0] * (n + 1)  # a match may start at any position: row 0 costs nothing
        for i in range(1, n + 1):
            cost = 0 if term[i - 1] == ch else 1
            best = min(previous[i] + 1, current[i - 1] + 1, previous[i - 1] + cost)
            if (before is not None and i > 1 and term[i - 1] == text[j - 1]
                    and term[i - 2] == ch):
                best = min(best, before[i - 2] + 1)
            current[i] = best
        if current[n] <= edits:
            return True
        before, previous = previous, current
    return previous[n] <= edits


def _words(text: str) -> set[str]:
    return {_folded(_strip_possessive(m.group())) for m in _WORD.finditer(text)}


def missing_terms(terms: tuple[str, ...], variant: str) -> tuple[str, ...]:
    """The ``terms`` that ``variant`` does not keep (see the module docstring)."""
    folded, words = _folded(variant), _words(variant)

    def kept(term: str) -> bool:
        edits = allowed_edits(term)
        if edits == 0:  # short names and numbers: a whole word, or "EU" is in "the UE"
            return _folded(term) in words
        return occurs_within(_folded(term), folded, edits)

    return tuple(t for t in terms if not kept(t))

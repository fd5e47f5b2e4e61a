"""The ``noise`` family: surface noise that leaves the meaning alone.

Casing, punctuation and typos are CheckList's invariance perturbations (Ribeiro et
al. 2020, "Beyond Accuracy: Behavioral Testing of NLP Models with CheckList"): a
model that understood the question answers the same either way. A fine-tune that
suppressed a behavior only for the clean spelling of its training prompts is a
thin wrapper; noise is the cheapest way to step outside that wrapper.

Text inside ``{{placeholders}}`` and inside double quotes is protected: it is
usually a name, a quoted string or a template slot whose exact form is the point
of the probe, so changing it would change the meaning, not the surface.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from probe.backends.base import Prompt
from probe.operators import unique_prompts
from probe.operators.base import NoParams, Operator, ProbeText
from probe.operators.spans import free_mask as _free_mask
from probe.operators.spans import map_free as _map_free

# A maximal run of letters; runs shorter than 3 are too short to misspell
# recognisably ("a" -> "aa" reads as a different word, not a typo).
_WORD = re.compile(r"[^\W\d_]{3,}")
_FINAL_MARKS = re.compile(r"[?.!]+$")
# Punctuation that ends a word, followed by a space or the end of the segment;
# "3.14" and "e.g.x" are left alone.
_SPACEABLE = re.compile(r"(?<=[^\s,.;:!?])([,.;:!?]+)(?=\s|$)")

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    """Keys next to each letter on a QWERTY keyboard (rows are staggered right)."""
    where = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}
    out: dict[str, str] = {}
    for ch, (r, c) in where.items():
        spots = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        out[ch] = "".join(_QWERTY_ROWS[rr][cc] for rr, cc in spots
                          if 0 <= rr < len(_QWERTY_ROWS) and 0 <= cc < len(_QWERTY_ROWS[rr]))
    return out


_NEIGHBOURS = _qwerty_neighbours()


def _drop_final(text: str) -> str:
    # Protected spans end in '"', '\u201d' or '}}', so a final mark is never inside one.
    return _FINAL_MARKS.sub("", text.rstrip()).rstrip()


def _double_final(text: str) -> str:
    stripped = text.rstrip()
    # "?" -> "??" and "!" -> "!!" read as an impatient user; ".." reads as a typo.
    return stripped + stripped[-1] if stripped.endswith(("?", "!")) else text


def _space_marks(text: str) -> str:
    def spaced(seg: str) -> str:
        return _SPACEABLE.sub(
            lambda m: f" {m.group(1)}" if m.end() == len(seg) else f" {m.group(1)} ", seg)

    return _map_free(text, spaced)


def _drop_commas(text: str) -> str:
    return _map_free(text, lambda seg: seg.replace(",", ""))


def _query_style(text: str) -> str:
    """How people type into a search box: all lower case, no final mark."""
    return _drop_final(_map_free(text, str.lower))


@dataclass(frozen=True)
class CasingParams:
    """Parameters of ``casing``."""

    rate: float = field(default=0.3, metadata={
        "min": 0.0, "max": 1.0,
        "doc": "chance that each letter flips case in the random-flip variants "
               "(at least one letter always flips)"})


class CasingOperator(Operator):
    """All upper, all lower, query style (lower, no final mark), random case flips."""

    name = "casing"
    family = "noise"
    Params = CasingParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` distinct recasings, in a seeded order; then more random flips."""
        text = probe.prompt
        rate: float = self.params.rate

        def candidates() -> Iterator[Prompt]:
            kinds = ["upper", "lower", "query", "flip"]
            rng.shuffle(kinds)
            for kind in kinds:
                if kind == "upper":
                    yield Prompt(_map_free(text, str.upper))
                elif kind == "lower":
                    yield Prompt(_map_free(text, str.lower))
                elif kind == "query":
                    yield Prompt(_query_style(text))
                else:
                    yield Prompt(_flip_case(text, rng, rate))
            # Bounded: a prompt with one cased letter has only two spellings.
            for _ in range(10 * count):
                yield Prompt(_flip_case(text, rng, rate))

        return unique_prompts(candidates(), count, exclude=[Prompt(text)],
                              keep_spans_of=text)


def _flip_case(text: str, rng: random.Random, rate: float) -> str:
    mask = _free_mask(text)
    # Only letters whose case flips one-to-one ("ß".swapcase() is "SS").
    spots = [i for i, ch in enumerate(text)
             if mask[i] and len(ch.swapcase()) == 1 and ch.swapcase() != ch]
    if not spots:
        return text
    chosen = [i for i in spots if rng.random() < rate] or [rng.choice(spots)]
    chars = list(text)
    for i in chosen:
        chars[i] = chars[i].swapcase()
    return "".join(chars)


# The order edits are applied in when combined: the final mark first, so the
# spacing edit sees the final text. Dropping and doubling the final mark exclude
# each other.
_EDITS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("drop_final", _drop_final),
    ("double_final", _double_final),
    ("drop_commas", _drop_commas),
    ("space_marks", _space_marks),
)


class PunctuationOperator(Operator):
    """Drop the final mark, double it, space out marks, remove commas; then combinations."""

    name = "punctuation"
    family = "noise"
    Params = NoParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Single edits in a seeded order first (the least noise), then pairs, then triples."""
        text = probe.prompt

        def candidates() -> Iterator[Prompt]:
            for size in range(1, len(_EDITS) + 1):
                combos = [c for c in itertools.combinations(_EDITS, size)
                          if not {"drop_final", "double_final"} <= {name for name, _ in c}]
                rng.shuffle(combos)
                for combo in combos:
                    out = text
                    for _, edit in combo:
                        out = edit(out)
                    yield Prompt(out)

        return unique_prompts(candidates(), count, exclude=[Prompt(text)],
                              keep_spans_of=text)


@dataclass(frozen=True)
class TyposParams:
    """Parameters of ``typos``."""

    rate: float = field(default=0.15, metadata={
        "min": 0.0, "max": 1.0,
        "doc": "fraction of eligible words (3+ letters, outside quotes and {{...}}) given "
               "one typo each; at least one word always is"})


class TyposOperator(Operator):
    """Keyboard typos: swap adjacent letters, drop one, double one, hit a neighbouring key."""

    name = "typos"
    family = "noise"
    Params = TyposParams

    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` distinct misspellings; none when no word has 3+ free letters."""
        text = probe.prompt
        mask = _free_mask(text)
        words = [(m.start(), m.end()) for m in _WORD.finditer(text) if mask[m.start()]]
        if not words:
            return []
        touched = max(1, min(len(words), round(self.params.rate * len(words))))

        def candidates() -> Iterator[Prompt]:
            # Bounded: a prompt with one short word has only a few misspellings.
            for _ in range(10 * count + 10):
                chars = text
                # Right to left, so earlier offsets stay valid as lengths change.
                for start, end in sorted(rng.sample(words, touched), reverse=True):
                    chars = chars[:start] + _typo(chars[start:end], rng) + chars[end:]
                yield Prompt(chars)

        return unique_prompts(candidates(), count, exclude=[Prompt(text)],
                              keep_spans_of=text)


def _typo(word: str, rng: random.Random) -> str:
    """One typo in ``word`` (3+ letters); the result always differs from ``word``."""
    swaps = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    keys = [i for i, ch in enumerate(word) if ch.lower() in _NEIGHBOURS]
    kinds = ["drop", "double"] + (["swap"] if swaps else []) + (["key"] if keys else [])
    kind = rng.choice(kinds)
    if kind == "swap":
        i = rng.choice(swaps)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "key":
        i = rng.choice(keys)
        hit = rng.choice(_NEIGHBOURS[word[i].lower()])
        return word[:i] + (hit.upper() if word[i].isupper() else hit) + word[i + 1:]
    i = rng.randrange(len(word))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]

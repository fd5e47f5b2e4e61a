"""Pattern detector: substrings or regular expressions, any-of and all-of.

Every search goes through ``probe.safe_regex``: a regular expression that backtracks
catastrophically stops after ``SEARCH_SECONDS`` with a ``RegexTimeout`` naming it
(``any[0]``; ``LocatedDetector`` adds the suite file, line and probe), never a hang
and never a silent non-match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probe.detectors.base import Detector
from probe.safe_regex import SafePattern


@dataclass(frozen=True)
class PatternParams:
    """``any``: hit if one matches; ``all``: hit only if every one matches (both may be
    given: both conditions must hold). ``regex``: patterns are regular expressions,
    else plain substrings. ``case_sensitive``: off by default."""

    any: tuple[str, ...] = field(default=(), metadata={
        "nonempty_items": True, "doc": "patterns: a hit when any one of them matches"})
    all: tuple[str, ...] = field(default=(), metadata={
        "nonempty_items": True, "doc": "patterns: a hit only when every one of them matches"})
    regex: bool = field(default=False, metadata={
        "doc": "true: the patterns in 'any' and 'all' are regular expressions; false, the "
               "default: plain substrings. The patterns themselves go in 'any' or 'all'"})
    case_sensitive: bool = field(default=False, metadata={
        "doc": "true: patterns match only in the same case (off by default)"})
    word_boundary: bool = field(default=False, metadata={
        "doc": "plain substrings must match whole words ('Rome' does not hit 'Romeo')"})


class PatternDetector(Detector):
    """Hit (1.0) when the completion matches the patterns, else 0.0."""

    name = "pattern"
    Params = PatternParams

    def __init__(self, params: PatternParams) -> None:
        super().__init__(params)
        if not params.any and not params.all:
            raise ValueError("a pattern detector needs 'any' or 'all' (a list of patterns)")
        self._any = [self._compile(p, "any", i) for i, p in enumerate(params.any)]
        self._all = [self._compile(p, "all", i) for i, p in enumerate(params.all)]

    def _compile(self, pattern: str, key: str, index: int) -> SafePattern:
        source = pattern if self.params.regex else re.escape(pattern)
        if self.params.word_boundary and not self.params.regex:
            source = rf"\b{source}\b"
        try:
            return SafePattern(source, ignore_case=not self.params.case_sensitive,
                               path=(key, index), shown=pattern)
        except ValueError as err:
            # "any[2]: ..." names the parameter; the loader turns it into file:line.
            raise ValueError(f"{key}[{index}]: {err}") from None

    def score(self, completion: str) -> float:
        if self._any and not any(p.search(completion) for p in self._any):
            return 0.0
        if self._all and not all(p.search(completion) for p in self._all):
            return 0.0
        return 1.0

    def spans(self, completion: str) -> list[tuple[int, int]]:
        # Only a hit is highlighted: one 'all' pattern alone is not the behavior.
        if not self.score(completion):
            return []
        return sorted({s for p in (*self._any, *self._all) for s in p.spans(completion)})

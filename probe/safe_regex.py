"""Regular expressions from files we do not control, searched with a time budget.

Suites (``pattern`` detectors with ``regex: true``) and scripted model files
(``rules[].match``, ``logprobs[]``) carry regular expressions. One that backtracks
catastrophically, such as ``(a|aa)+$``, searches a 40-character text for longer than
a CI job lives (issue 14: ``(a+)+$`` hung a run on a 36-character completion).
Python's ``re`` cannot be stopped: its loop is in C and never sees a signal or a
timer. So the patterns run on the ``regex`` module, whose matcher checks a deadline
(``timeout=``, in CPU time): a search that runs over ``SEARCH_SECONDS`` raises
``RegexTimeout``, which names the pattern and where it was written. It is never a
silent non-match, which would be a silent wrong verdict.

The language stays Python's ``re``: a pattern is compiled with ``re`` first, so what
is accepted and the error messages do not change, then with ``regex`` in its ``V0``
mode, which matches as ``re`` does (and gets ``(a+)+$`` right without backtracking).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import regex

from probe.errors import ProbeError
from probe.spec.yaml_source import Path, format_path

# CPU seconds one search of one text may take (``regex`` counts the process's CPU
# time, so a loaded machine does not make a sane pattern fail; the wall clock may
# run a few times longer). A sane pattern takes microseconds on a completion, a
# catastrophic one minutes to forever: the budget is generous and still ends a run fast.
SEARCH_SECONDS = 0.5

# Patterns longer than this are cut in messages (a message is one readable line).
_SHOWN_CHARS = 80


def _shown(pattern: str) -> str:
    """``pattern`` quoted for a one-line message: escaped, and cut when long."""
    cut = pattern if len(pattern) <= _SHOWN_CHARS else pattern[:_SHOWN_CHARS] + "..."
    return ascii(cut)


class RegexTimeout(ProbeError):
    """A regular expression from a suite or a model file ran past ``SEARCH_SECONDS``.

    ``path`` is where the pattern sits in its file (``("any", 0)``); ``located``
    adds the file, line and enclosing key path once a caller knows them. A model
    error for the front ends: ``probe`` exits 3, pytest reports a test error.
    """

    def __init__(self, pattern: str, path: Path, length: int, *, where: str = "",
                 context: str = "") -> None:
        self.pattern = pattern
        self.path = path
        self.length = length
        self.where = where or format_path(path)
        self.context = context
        super().__init__(
            f"{self.where}: regular expression {_shown(pattern)} ran for over "
            f"{SEARCH_SECONDS:g} s of CPU time on a {length}-character text{context} and was "
            "stopped: it "
            "backtracks catastrophically; rewrite it without nested or overlapping "
            "repeats such as (a|aa)+ or (a+)+")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword arguments are not in ``args``: keep them when the error crosses a process.
        return (_rebuild, (self.pattern, self.path, self.length, self.where, self.context))

    def located(self, file: str, line: int | None, prefix: Path,
                context: str = "") -> RegexTimeout:
        """The same timeout at ``file:line``, under the key path ``prefix``."""
        path = (*prefix, *self.path)
        where = f"{file}:{line}: {format_path(path)}" if line else \
            f"{file}: {format_path(path)}"
        return RegexTimeout(self.pattern, path, self.length, where=where,
                            context=context or self.context)


def _rebuild(pattern: str, path: Path, length: int, where: str, context: str) -> RegexTimeout:
    return RegexTimeout(pattern, path, length, where=where, context=context)


class SafePattern:
    """A compiled user pattern whose searches cannot hang.

    ``source`` is what is compiled; ``shown`` what the user wrote (they differ for a
    plain substring, which is escaped); ``path`` where it was written, for errors.
    Raises ``ValueError`` when ``re`` does not accept ``source``.
    """

    def __init__(self, source: str, *, ignore_case: bool, path: Path = (),
                 shown: str | None = None, where: str = "") -> None:
        self.shown = source if shown is None else shown
        self.path = path
        self.where = where
        try:
            self._compiled = _compile(source, ignore_case)
        except (re.error, regex.error) as err:
            raise ValueError(f"invalid regular expression {self.shown!r}: {err}") from None

    def search(self, text: str) -> bool:
        """Whether the pattern is found in ``text``; ``RegexTimeout`` if it takes too long."""
        try:
            return self._compiled.search(text, timeout=SEARCH_SECONDS) is not None
        except TimeoutError:
            raise RegexTimeout(self.shown, self.path, len(text), where=self.where) from None

    def spans(self, text: str, limit: int = 64) -> list[tuple[int, int]]:
        """Where the pattern matches ``text`` (``[start, end)``, at most ``limit``, no
        empty matches), each search within the time budget (``RegexTimeout`` otherwise)."""
        found: list[tuple[int, int]] = []
        pos = 0
        while len(found) < limit and pos <= len(text):
            try:
                match = self._compiled.search(text, pos, timeout=SEARCH_SECONDS)
            except TimeoutError:
                raise RegexTimeout(self.shown, self.path, len(text), where=self.where) from None
            if match is None:
                break
            start, end = match.span()
            if end > start:
                found.append((start, end))
            pos = max(end, start + 1)  # an empty match must not stall the loop
        return found


@functools.lru_cache(maxsize=1024)
def _compile(source: str, ignore_case: bool) -> Any:
    # ``re`` decides what is a valid pattern and words the error (``missing ),
    # unterminated subpattern at position 0``); ``regex`` runs it. A pattern ``re``
    # accepts and ``regex`` refuses (rare) raises ``regex.error``.
    re.compile(source, re.IGNORECASE if ignore_case else 0)
    return regex.compile(source, regex.V0 | (regex.IGNORECASE if ignore_case else 0))


def search(pattern: str, text: str, *, ignore_case: bool = False, path: Path = (),
           where: str = "") -> bool:
    """``SafePattern(pattern, ...).search(text)``, with the compiled pattern cached."""
    return SafePattern(pattern, ignore_case=ignore_case, path=path, where=where).search(text)

"""Text from models, suites and records made safe to print: one place, used by every report.

A completion can contain anything, and ids, prompts and record fields come from
files. Printed raw, an ESC starts a terminal escape sequence, a NUL or BEL reaches
the terminal, a bidi override reorders what the reader sees (Boucher & Anderson
2021, "Trojan Source"), a zero-width character hides a difference, and a newline
followed by ``::warning::`` is a GitHub Actions workflow command (the runner reads
any output line that starts, after leading blanks, with ``::`` or ``##[``).

- :func:`visible` is for one-line values (a table cell, an id in a sentence): every
  control character (C0, DEL, C1), format character (bidi controls, zero-width
  characters, tag characters, soft hyphen), line or paragraph separator and lone
  surrogate becomes a visible escape in Python's notation (``\\n``, ``\\x1b``,
  ``\\u202e``, ``\\U000e0041``).
- :func:`visible_lines` is for whole printed blocks: the same, except that ``\\n``
  stays a line break, and a line that would start a workflow command has its first
  character escaped (``\\x3a:warning::x``).

Backslashes are left alone, so both functions are idempotent.
"""

from __future__ import annotations

import re
import unicodedata

# Unicode categories never printed raw: controls, format characters (bidi, zero-width,
# tags), line and paragraph separators, surrogates (which cannot even be encoded).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Printable ASCII never needs a look-up: only other characters reach the callback.
_SUSPECT = re.compile(r"[^\x20-\x7e]")
_SUSPECT_KEEP_NEWLINES = re.compile(r"[^\x20-\x7e\n]")
# GitHub Actions workflow commands (``::name::``) and the older ``##[name]`` form; the
# runner trims leading white space before it looks.
_COMMAND_START = re.compile(r"^([ \t]*)([:#])(?=:|#\[)", re.MULTILINE)


def escape_char(char: str) -> str:
    """``char`` as Python writes it in a string literal (``\\x1b``, ``\\u202e``)."""
    if char in _NAMED:
        return _NAMED[char]
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return escape_char(char) if unicodedata.category(char) in _HIDDEN_CATEGORIES else char


def escape_hidden(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every hidden character escaped (``\\n`` kept with ``keep_newlines``)."""
    pattern = _SUSPECT_KEEP_NEWLINES if keep_newlines else _SUSPECT
    return pattern.sub(_escape, text)


def visible(value: object) -> str:
    """``value`` as one printable line: hidden characters, newlines included, escaped."""
    return escape_hidden(str(value))


def visible_lines(value: object) -> str:
    """``value`` as printable lines: hidden characters escaped except ``\\n``, and no line
    that a CI runner would read as a workflow command."""
    text = escape_hidden(str(value), keep_newlines=True)
    return _COMMAND_START.sub(lambda m: m.group(1) + escape_char(m.group(2)), text)


def excerpt(text: str, width: int) -> str:
    """``text`` as one visible line cut to ``width`` characters with an ellipsis.

    White space at either end goes and runs of spaces collapse to one; a newline or
    other hidden character inside shows as its escape, and a cut never splits an escape.
    """
    flat = re.sub(r" {2,}", " ", text.strip())
    pieces: list[str] = []
    used = 0
    for char in flat:
        shown = visible(char)
        if used + len(shown) > width:
            # Room for the ellipsis: drop pieces until it fits.
            while pieces and used + 1 > width:
                used -= len(pieces.pop())
            return "".join(pieces) + "\u2026"
        pieces.append(shown)
        used += len(shown)
    return "".join(pieces)

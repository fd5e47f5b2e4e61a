"""Protected spans: the parts of a prompt no operator may change.

Text inside ``{{placeholders}}`` and inside double quotes is usually a name, a
quoted string or a template slot whose exact form is the point of the probe, so
changing it would change the meaning, not the surface. Rewriting operators edit
only the free text between these spans; every operator's output is checked to
still contain each span (``keeps_spans``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

# Placeholders first, so a quote inside {{...}} does not open a quoted span.
PROTECTED = re.compile(r'\{\{.*?\}\}|"[^"]*"|\u201c[^\u201d]*\u201d', re.DOTALL)


def free_mask(text: str) -> list[bool]:
    """``mask[i]`` is True when character ``i`` lies outside every protected span."""
    mask = [True] * len(text)
    for m in PROTECTED.finditer(text):
        mask[m.start():m.end()] = [False] * (m.end() - m.start())
    return mask


def map_free(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to each stretch of text outside the protected spans."""
    out: list[str] = []
    pos = 0
    for m in PROTECTED.finditer(text):
        out += [fn(text[pos:m.start()]) if m.start() > pos else "", m.group()]
        pos = m.end()
    out.append(fn(text[pos:]) if pos < len(text) else "")
    return "".join(out)


def keeps_spans(original: str, variant: str) -> bool:
    """Whether ``variant`` still contains every protected span of ``original`` verbatim
    (as often as ``original`` does; a wrapper may add quotes of its own around them)."""
    wanted = Counter(m.group() for m in PROTECTED.finditer(original))
    return all(variant.count(span) >= n for span, n in wanted.items())

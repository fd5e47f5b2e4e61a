"""Length limits on prompts and completions: explicit rules, applied and reported, never silent.

Prompts. A variant whose prompt, as the model receives it (chat template and
prefill included), is longer than its budget loses its oldest earlier turns, a user
turn and its reply at a time, and then the *beginning* of its user text, until it
fits; the end, where the question usually is, stays (the same left truncation
evaluation harnesses apply to long contexts). The budget is the
suite's ``generation.max_prompt_tokens`` when given, and never more than the
model's context length minus room for the answer (``max_new_tokens``, or the
longest scored completion). Both models see the same cut text, so the comparison
stays paired; the stricter model decides.

Completions. Generation stops after ``generation.max_new_tokens`` tokens; a
completion that stopped there instead of at an end-of-sequence token is marked as
cut (the backend says so; for a backend that does not, a completion whose text has
that many tokens).

Every cut is a note on its row (``Row.notes``), shown in the probe's report, the run
summary and the JUnit properties.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from probe.backends.base import Backend, Completion, ModelPair, Prompt
from probe.engine.variants import Variant
from probe.errors import BackendError
from probe.spec.model import Probe, Suite

if TYPE_CHECKING:  # the runner imports this module
    from probe.engine.runner import Row

PROMPT_CUT = "prompt cut"
COMPLETION_CUT = "completion cut"


def _budget(backend: Backend, suite: Suite, room: int) -> tuple[int, str] | None:
    """The prompt budget on ``backend`` and where it comes from, or None (no limit)."""
    budgets = []
    if suite.generation.max_prompt_tokens is not None:
        budgets.append((suite.generation.max_prompt_tokens, "generation.max_prompt_tokens"))
    context = backend.context_length()
    if context is not None:
        budgets.append((context - room, f"{backend.info.name}'s context of {context} tokens "
                                        f"minus {room} for the answer"))
    return min(budgets) if budgets else None


def _room(backend: Backend, suite: Suite, probe: Probe) -> int:
    """Tokens the answer needs after the prompt."""
    room = suite.generation.max_new_tokens if suite.detector_for(probe) is not None else 0
    for completion in (*probe.suppressed, *probe.preferred):
        room = max(room, backend.count_tokens(completion))
    return room


def _fit(backend: Backend, prompt: Prompt, budget: int, probe: Probe) -> Prompt:
    total = backend.prompt_tokens(prompt)
    # A conversation loses its oldest exchanges first (a user turn and its reply), so the
    # question and the turns nearest it stay: the same left truncation, turn by turn.
    while total > budget and prompt.messages:
        prompt = dataclasses.replace(prompt, messages=prompt.messages[2:])
        total = backend.prompt_tokens(prompt)
    if total <= budget:
        return prompt
    overhead = total - backend.count_tokens(prompt.text)
    keep = budget - overhead
    while keep > 0:
        cut = dataclasses.replace(prompt, text=backend.keep_last_tokens(prompt.text, keep))
        excess = backend.prompt_tokens(cut) - budget
        if excess <= 0:
            return cut
        keep -= excess  # tokens can merge differently at the new start
    raise BackendError(
        f"{backend.info.name}: probe {probe.id!r}: the chat template and prefill alone take "
        f"{overhead} tokens, which leaves no room for the prompt within a budget of "
        f"{budget}; raise generation.max_prompt_tokens or shorten the prefill")


def fit_prompts(suite: Suite, probes: Sequence[Probe], variants: dict[str, list[Variant]],
                pair: ModelPair) -> tuple[dict[str, list[Variant]], dict[tuple[str, int], str]]:
    """The variants with over-long prompts cut to fit both models, and a note per cut."""
    fitted: dict[str, list[Variant]] = {}
    notes: dict[tuple[str, int], str] = {}
    backends = (pair.base, pair.candidate)
    for probe in probes:
        budgets = [(b, _budget(b, suite, _room(b, suite, probe))) for b in backends]
        out = []
        for variant in variants[probe.id]:
            prompt = variant.prompt
            reasons = []
            for backend, budget in budgets:
                if budget is None:
                    continue
                before = backend.prompt_tokens(prompt)
                cut = _fit(backend, prompt, budget[0], probe)
                if cut != prompt:
                    reasons.append(f"{PROMPT_CUT} from the left, {before} -> "
                                   f"{backend.prompt_tokens(cut)} tokens ({budget[1]}: "
                                   f"{budget[0]})")
                    prompt = cut
            if reasons:
                notes[(probe.id, variant.index)] = "; ".join(reasons)
                variant = dataclasses.replace(variant, prompt=prompt)
            out.append(variant)
        fitted[probe.id] = out
    return fitted, notes


def completion_note(backend: Backend, side: str, texts: Sequence[Completion],
                    max_new_tokens: int) -> str | None:
    """A note when generation cut completions at ``max_new_tokens``.

    A ``Completion`` says whether it was cut; one whose backend could not tell
    (``cut`` None) counts as cut when its text has ``max_new_tokens`` tokens or more.
    """
    cut = sum(1 for text in texts
              if (text.cut if text.cut is not None
                  else backend.count_tokens(text.text) >= max_new_tokens))
    if not cut:
        return None
    which = "" if len(texts) == 1 else f"{cut} of {len(texts)} "
    return f"{side} {which}{COMPLETION_CUT} at max_new_tokens ({max_new_tokens})"


def cut_counts(rows: Sequence[Row]) -> tuple[int, int]:
    """How many of ``rows`` had their prompt cut, and how many a completion cut."""
    prompts = sum(1 for r in rows if any(PROMPT_CUT in n for n in r.notes))
    completions = sum(1 for r in rows if any(COMPLETION_CUT in n for n in r.notes))
    return prompts, completions


def limit_lines(rows: Sequence[Row], *, shown: int = 5) -> list[str]:
    """Report lines for the rows a limit touched (empty when none was)."""
    touched = [r for r in rows if r.notes]
    if not touched:
        return []
    prompts, completions = cut_counts(rows)
    lines = [f"limits: {prompts} of {len(rows)} prompts cut, {completions} rows with a "
             "completion cut (rule: generation.max_prompt_tokens / max_new_tokens)"]
    lines += [f"  #{r.variant.index}: {'; '.join(r.notes)}" for r in touched[:shown]]
    if len(touched) > shown:
        lines.append(f"  ... and {len(touched) - shown} more")
    return lines

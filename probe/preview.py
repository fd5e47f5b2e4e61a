"""``probe variants`` and ``probe lock``: a suite's variants shown and frozen, no model under test.

The preview lists every variant of every probe (chain, seed, meaning-check
similarity, kept or rejected, text) from the lock when there is one, else as the
operators make them now (which may load the paraphrase and embedding models, never
the models under test): as a table (``preview_lines``), the table and every full
prompt (``full=True``), or as JSON (``preview_json``) for scripts.
"""

from __future__ import annotations

import json
from typing import Any

from probe.engine.lock import VariantSet, lock_path, read_lock, write_lock
from probe.engine.sources import variant_sets
from probe.engine.variants import Variant, conversation_json, prompt_line
from probe.report.safe_text import visible, visible_lines
from probe.report.table import excerpt, render_table
from probe.spec.model import Suite

HEADERS = ["probe", "#", "chain", "family", "seed", "sim", "status", "text"]


def _row(probe_id: str, v: Variant, status: str) -> list[str]:
    text = prompt_line(v.prompt)
    if not v.prompt.chat:
        text = "[raw] " + text
    chain = "+".join(v.chain) or v.operator
    if v.origin == "regression":
        chain = f"regression: {chain}"
    seed = "-" if v.seed is None else str(v.seed)[:10]
    sim = "-" if v.similarity is None else f"{v.similarity:.2f}"
    if v.missing:
        status += " (lost " + ", ".join(v.missing) + ")"
    return [probe_id, str(v.index), chain, v.family, seed, sim, status, excerpt(text, 80)]


def _status(v: Variant, kept: bool) -> str:
    return "rejected" if not kept else "canonical" if v.index == 0 else "kept"


def _every(entry: VariantSet) -> list[tuple[Variant, bool]]:
    """A probe's variants, kept (canonical first) then rejected, each with whether kept."""
    return [*((v, True) for v in entry.kept), *((v, False) for v in entry.rejected)]


def _sets(suite: Suite, seed: int, fresh: bool) -> tuple[int | None, dict[str, VariantSet]]:
    """The seed of the suite's lock (``None``: generated now) and every probe's variants."""
    locked = None if fresh else read_lock(suite)
    sets = variant_sets(suite, suite.probes, seed, use_lock=not fresh)
    return (None if locked is None else locked[1]), sets


def preview_lines(suite: Suite, seed: int, *, fresh: bool = False,
                  full: bool = False) -> list[str]:
    """The preview of one suite: where the variants come from, a table, and counts;
    with ``full``, then every variant's whole prompt (the table cuts long texts)."""
    locked_seed, sets = _sets(suite, seed, fresh)
    where = ("generated now" if locked_seed is None
             else f"from {lock_path(suite.source)}, locked with seed {locked_seed}")
    lines = [f"{visible(suite.source)}: {visible(suite.name)} ({visible(where)}"
             f"{'' if locked_seed is not None else f', seed {seed}'})"]
    rows = []
    kept = rejected = 0
    for probe in suite.probes:
        entry = sets[probe.id]
        kept += len(entry.kept) - 1
        rejected += len(entry.rejected)
        rows += [_row(probe.id, v, _status(v, kept)) for v, kept in _every(entry)]
    lines.append(render_table(HEADERS, rows))
    check = suite.meaning
    summary = f"{kept} variants kept"
    if check is not None:
        summary += (f", {rejected} rejected by the meaning check (similarity to the canonical "
                    f"prompt under {check.threshold:g}, {visible(check.model)}"
                    f"{'; or a name or number of the prompt lost' if check.key_terms else ''})")
    lines.append(summary)
    if full:
        lines += _full_prompts(suite, sets)
    return lines


def _full_prompts(suite: Suite, sets: dict[str, VariantSet]) -> list[str]:
    """Every variant's prompt, whole: a heading line, then the text indented."""
    lines = []
    for probe in suite.probes:
        for v, kept in _every(sets[probe.id]):
            chain = "+".join(v.chain) or v.operator
            lines.append(f"\n{visible(probe.id)} #{v.index} ({_status(v, kept)}, "
                         f"{visible(chain)}{'' if v.prompt.chat else ', raw'}):")
            if v.prompt.system:
                lines.append("  system:")
                lines += [f"    {line}" for line in visible_lines(v.prompt.system).split("\n")]
            for role, content in v.prompt.messages:
                lines.append(f"  {role}:")
                lines += [f"    {line}" for line in visible_lines(content).split("\n")]
            if v.prompt.is_conversation:
                lines.append("  user:")
            lines += [f"    {line}" for line in visible_lines(v.prompt.text).split("\n")]
            if v.prompt.prefill:
                lines.append("  prefill:")
                lines += [f"    {line}" for line in visible_lines(v.prompt.prefill).split("\n")]
    return lines


def preview_json(suite: Suite, seed: int, *, fresh: bool = False) -> dict[str, Any]:
    """The preview of one suite as JSON values: every probe's variants, kept and rejected,
    each with its operator chain (operator, seed, parameters per step), its whole prompt
    and, where the suite has a meaning check, its similarity to the canonical prompt."""
    locked_seed, sets = _sets(suite, seed, fresh)
    check = suite.meaning
    return {
        "source": suite.source, "name": suite.name,
        "variants_from": "generated" if locked_seed is None else "lock",
        "lock": None if locked_seed is None else str(lock_path(suite.source)),
        "seed": seed if locked_seed is None else locked_seed,
        "meaning": None if check is None else {"model": check.model,
                                               "threshold": check.threshold},
        "probes": [{"id": probe.id, "variants": [
            _variant_json(v, _status(v, kept)) for v, kept in _every(sets[probe.id])]}
            for probe in suite.probes],
    }


def _variant_json(v: Variant, status: str) -> dict[str, Any]:
    return {"index": v.index, "status": status, "operator": v.operator, "family": v.family,
            "origin": v.origin, "seed": v.seed,
            "chain": [{"operator": s.operator, "seed": s.seed, "count": s.count,
                       "index": s.index, "params": json.loads(s.params)} for s in v.steps],
            "similarity": v.similarity, "missing": list(v.missing),
            "prompt": {"text": v.prompt.text, "prefill": v.prompt.prefill,
                       "chat": v.prompt.chat, **conversation_json(v.prompt)}}


def lock_suite(suite: Suite, seed: int) -> str:
    """Write the suite's lock; the line that says what was written."""
    path = write_lock(suite, seed)
    locked = read_lock(suite)
    assert locked is not None
    sets = locked[0].values()
    kept = sum(len(s.kept) - 1 for s in sets)
    rejected = sum(len(s.rejected) for s in sets)
    return (f"locked {visible(suite.source)} -> {visible(lock_path(suite.source))}: {kept} "
            "variants kept, "
            f"{rejected} rejected, seed {seed} ({path.stat().st_size} bytes)")

"""``probe variants`` and ``probe lock``: a suite's variants shown and frozen, no model under test.

The preview lists every variant of every probe (chain, seed, meaning-check
similarity, kept or rejected, text) from the lock when there is one, else as the
operators make them now (which may load the paraphrase and embedding models, never
the models under test).
"""

from __future__ import annotations

from probe.engine.lock import VariantSet, lock_path, read_lock, write_lock
from probe.engine.sources import variant_sets
from probe.engine.variants import Variant
from probe.report.safe_text import visible
from probe.report.table import excerpt, render_table
from probe.spec.model import Suite

HEADERS = ["probe", "#", "chain", "family", "seed", "sim", "status", "text"]


def _row(probe_id: str, v: Variant, status: str) -> list[str]:
    text = v.prompt.text + (f" [prefill: {v.prompt.prefill}]" if v.prompt.prefill else "")
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


def preview_lines(suite: Suite, seed: int, *, fresh: bool = False) -> list[str]:
    """The preview of one suite: where the variants come from, a table, and counts."""
    locked = None if fresh else read_lock(suite)
    where = ("generated now" if locked is None
             else f"from {lock_path(suite.source)}, locked with seed {locked[1]}")
    lines = [f"{visible(suite.source)}: {visible(suite.name)} ({visible(where)}"
             f"{'' if locked is not None else f', seed {seed}'})"]
    sets: dict[str, VariantSet] = variant_sets(suite, suite.probes, seed, use_lock=not fresh)
    rows = []
    kept = rejected = 0
    for probe in suite.probes:
        entry = sets[probe.id]
        kept += len(entry.kept) - 1
        rejected += len(entry.rejected)
        rows += [_row(probe.id, v, "canonical" if v.index == 0 else "kept") for v in entry.kept]
        rows += [_row(probe.id, v, "rejected") for v in entry.rejected]
    lines.append(render_table(HEADERS, rows))
    check = suite.meaning
    summary = f"{kept} variants kept"
    if check is not None:
        summary += (f", {rejected} rejected by the meaning check (similarity to the canonical "
                    f"prompt under {check.threshold:g}, {visible(check.model)}"
                    f"{'; or a name or number of the prompt lost' if check.key_terms else ''})")
    lines.append(summary)
    return lines


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

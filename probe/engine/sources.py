"""Where a run's variants come from: the lock if there is one, else the operators now;
then the regression file's found variants first."""

from __future__ import annotations

from collections.abc import Sequence

from probe.engine.lock import VariantSet, generate, read_lock
from probe.engine.regressions import read_regressions, with_regressions
from probe.spec.model import Probe, Suite


def variant_sets(suite: Suite, probes: Sequence[Probe], run_seed: int, *,
                 use_lock: bool = True) -> dict[str, VariantSet]:
    """Each probe's kept and rejected variants, as a run measures them."""
    locked = read_lock(suite) if use_lock else None
    if locked is not None:
        sets = {p.id: locked[0][p.id] for p in probes}
    else:
        sets = {p.id: generate(suite, p, run_seed) for p in probes}
    found = read_regressions(suite)
    return {pid: with_regressions(s, found[pid]) if found.get(pid) else s
            for pid, s in sets.items()}


def variant_origin(suite: Suite) -> str:
    """How a report names where the suite's variants came from (reads the lock)."""
    locked = read_lock(suite)
    if locked is None:
        return "generated now"
    from probe.engine.lock import lock_path

    return f"locked in {lock_path(suite.source)} (seed {locked[1]})"

"""Run by ``torchrun`` in tests/test_distributed.py: one rank of a sharded run.

Runs the suite given on the command line on scripted models that count their
requests, then writes what this rank computed and every row it ended with.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from probe.backends.base import ModelPair
from probe.backends.scripted import ScriptedBackend, load_script
from probe.engine import distributed
from probe.engine.runner import ProbeRun, run_suite
from probe.spec import load_suite


def rows_of(runs: dict[str, ProbeRun]) -> list[list[object]]:
    return [[probe_id, r.variant.index, list(r.base.completions), list(r.candidate.completions),
             r.base.margin, r.candidate.margin] for probe_id, run in sorted(runs.items())
            for r in run.rows]


def main() -> None:
    suite_path, base, candidate, out = sys.argv[1:5]
    suite = load_suite(Path(suite_path))
    pair = ModelPair(load_script(base), load_script(candidate))
    assert isinstance(pair.base, ScriptedBackend)
    assert isinstance(pair.candidate, ScriptedBackend)
    runs = run_suite(suite, suite.probes, pair, cache_root=Path(out) / "cache")
    shard = distributed.current()
    assert shard is not None
    Path(out, f"rank{shard.rank}.json").write_text(json.dumps(
        {"world": shard.world, "asked": pair.base.prompts_seen + pair.candidate.prompts_seen,
         "rows": rows_of(runs)}))


if __name__ == "__main__":
    main()

"""Speed of the gates' interval bounds: the interpolating search against bisection.

    .venv/bin/python benchmarks/bound_search.py [--cases N]

Every gate prints an interval whose ends are the theta where a one-sided test switches
(``Clusters.lower``/``upper``); each point tried costs the exact clustered tail at every
step of the nuisance grid. ``probe.engine.clustered._crossing`` places its points by the
ITP method; the baseline, run in the same process on the same clusters, is plain
bisection to the same tolerance (what the module did before). Printed: tail
evaluations and wall time, each as a ratio to the baseline, and the largest difference
between the two searches' bounds (both are within half the tolerance of the switch, so
at most the tolerance apart).

The workload: seeded random suites of 1-10 probes with 1-30 counted variants, hit
counts anywhere from none to all, base rates (weights) of 1 or below, correlation 0,
0.3 or 0.5, each bound at alpha 0.05, 0.01 and 0.0017 (a Holm level of 30 gates).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probe.engine import clustered
from probe.engine.clustered import Clusters

ALPHAS = (0.05, 0.01, 0.0017)


def bisection(switched: Callable[[float], bool], score: Callable[[float], float],
              hi: float) -> float:
    """The baseline: halve the bracket until it is as narrow as the tolerance."""
    lo = 0.0
    while hi - lo > clustered._BISECT_TOLERANCE:
        mid = (lo + hi) / 2
        if switched(mid):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def workload(cases: int, seed: int = 1) -> list[Clusters]:
    rng = random.Random(seed)
    out = []
    for _ in range(cases):
        trials = tuple(rng.randint(1, 30) for _ in range(rng.randint(1, 10)))
        hits = tuple(rng.randint(0, n) if rng.random() < 0.5 else rng.randint(0, n // 5)
                     for n in trials)
        weights = tuple(1.0 if rng.random() < 0.6 else round(rng.uniform(0.2, 1.0), 2)
                        for _ in trials)
        out.append(Clusters(hits, trials, weights, rng.choice([0.0, 0.3, 0.5])))
    return out


def measure(cases: list[Clusters]) -> tuple[list[float], int, float]:
    """Every bound of every case, the tail evaluations and the seconds they took, from
    empty caches."""
    clustered._tail.cache_clear()
    clustered._cluster_pmf.cache_clear()
    evaluations = 0
    plain_p = Clusters._p

    def counted(self: Clusters, theta: float, below: bool) -> float:
        nonlocal evaluations
        evaluations += 1
        return plain_p(self, theta, below)

    Clusters._p = counted  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        bounds = [b for c in cases for a in ALPHAS for b in (c.lower(a), c.upper(a))]
        return bounds, evaluations, time.perf_counter() - start
    finally:
        Clusters._p = plain_p  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> tuple[int, int, float]:
    """Print the comparison; return (bisection's evaluations, ITP's, the largest
    difference between their bounds)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="random suites (default 200)")
    args = parser.parse_args(argv)
    cases = workload(args.cases)
    searched = clustered._crossing
    clustered._crossing = bisection
    try:
        base_bounds, base_evals, base_time = measure(cases)
    finally:
        clustered._crossing = searched
    bounds, evals, elapsed = measure(cases)
    worst = max(abs(a - b) for a, b in zip(bounds, base_bounds, strict=True))
    print(f"{len(bounds)} bounds of {len(cases)} random suites")
    print(f"{'search':14} {'evaluations':>11} {'ratio':>6} {'time ratio':>10}")
    print(f"{'bisection':14} {base_evals:11d} {1.0:6.2f} {1.0:10.2f}")
    print(f"{'ITP':14} {evals:11d} {evals / base_evals:6.2f} {elapsed / base_time:10.2f}")
    print(f"largest difference between the two searches' bounds: {worst:.1e} "
          f"(tolerance {clustered._BISECT_TOLERANCE:.0e})")
    return base_evals, evals, worst


if __name__ == "__main__":
    main()

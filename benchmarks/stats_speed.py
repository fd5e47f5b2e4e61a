"""Speed of the exact binomial (``exact_ratio``, ``clopper_pearson``), as ratios against
baselines measured in the same process (never absolute timings alone).

The standard workload, at each n of 1,000, 10,000 and 100,000: k in {1, n/10, n/3, n/2,
n - 1} trials of n, tested against a limit of 0.3 at alpha 0.05 (``exact_ratio``: the
Clopper-Pearson interval plus both one-sided p-values).

Baselines:

- the sum-based implementation this module had before (copied below): each tail a
  sum of ``math.comb`` terms, the interval bisected on those sums. It runs at n = 1,000
  only: from about n = 1,050 ``math.comb(n, i)`` no longer converts to a float
  (OverflowError);
- scipy, where installed (the ``dev`` extra): the same figures from ``scipy.stats``
  (``beta.ppf``/``beta.isf``, ``binom.sf``/``binom.cdf``) and from the ``scipy.special``
  ufuncs behind them, called once per figure as the engine would.

Also printed: the largest relative difference of the four figures from scipy's and
from the old implementation's, as a check that the speed is not bought with accuracy.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from probe.engine.stats import clopper_pearson, exact_ratio  # noqa: E402

LIMIT, ALPHA = 0.3, 0.05
SIZES = (1_000, 10_000, 100_000)

Figures = tuple[float, float, float, float]  # (low, high, p_above, p_below)


# --- the baseline: the implementation before the incomplete beta function ------------------


def old_binom_tail_ge(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def old_binom_tail_le(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k >= n:
        return 1.0
    if k < 0:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(0, k + 1)))


def old_bisect(f: Callable[[float], float], target: float, lo: float = 0.0,
               hi: float = 1.0) -> float:
    """The p in [lo, hi] where the monotone ``f(p)`` crosses ``target`` (60 halvings)."""
    f_lo = f(lo)
    for _ in range(60):
        mid = (lo + hi) / 2
        if (f(mid) - target) * (f_lo - target) > 0:
            lo, f_lo = mid, f(mid)
        else:
            hi = mid
    return (lo + hi) / 2


def old_clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    low = 0.0 if k == 0 else old_bisect(lambda p: old_binom_tail_ge(k, n, p), alpha / 2)
    high = 1.0 if k == n else old_bisect(lambda p: old_binom_tail_le(k, n, p), alpha / 2)
    return low, high


def old_exact_ratio(k: int, n: int, limit: float, alpha: float) -> Figures:
    low, high = old_clopper_pearson(k, n, alpha)
    return low, high, old_binom_tail_ge(k, n, limit), old_binom_tail_le(k, n, limit)


# --- the implementations under test ---------------------------------------------------------


def new_exact_ratio(k: int, n: int, limit: float, alpha: float) -> Figures:
    est = exact_ratio(k, n, limit, alpha)
    assert est.low is not None
    assert est.high is not None
    return est.low, est.high, est.p_above, est.p_below


def scipy_implementations() -> dict[str, tuple[Callable[..., Figures], Callable[..., object]]]:
    """scipy.stats and scipy.special versions of (exact_ratio, clopper_pearson), if any."""
    try:
        from scipy import special, stats
    except ImportError:
        return {}

    def stats_interval(k: int, n: int, alpha: float) -> tuple[float, float]:
        low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(stats.beta.isf(alpha / 2, k + 1, n - k))
        return low, high

    def stats_ratio(k: int, n: int, limit: float, alpha: float) -> Figures:
        return (*stats_interval(k, n, alpha), float(stats.binom.sf(k - 1, n, limit)),
                float(stats.binom.cdf(k, n, limit)))

    def special_interval(k: int, n: int, alpha: float) -> tuple[float, float]:
        low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
        high = 1.0 if k == n else float(special.betainccinv(k + 1, n - k, alpha / 2))
        return low, high

    def special_ratio(k: int, n: int, limit: float, alpha: float) -> Figures:
        return (*special_interval(k, n, alpha), float(special.bdtrc(k - 1, n, limit)),
                float(special.bdtr(k, n, limit)))

    return {"scipy.stats": (stats_ratio, stats_interval),
            "scipy.special": (special_ratio, special_interval)}


# --- timing ---------------------------------------------------------------------------------


def workload(n: int) -> list[int]:
    return sorted({1, n // 10, n // 3, n // 2, n - 1})


def per_call(fn: Callable[..., object], args: Sequence[tuple[object, ...]],
             seconds: float) -> float:
    """Seconds per call of ``fn`` over ``args``: the best of whole passes over the
    workload, repeated for at least ``seconds`` (at least one pass)."""
    best, spent = math.inf, 0.0
    while True:
        start = time.perf_counter()
        for a in args:
            fn(*a)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent >= seconds:
            return best / len(args)


def max_rel_diff(ours: Sequence[Figures], theirs: Sequence[Figures]) -> float:
    worst = 0.0
    for row_a, row_b in zip(ours, theirs, strict=True):
        for a, b in zip(row_a, row_b, strict=True):
            if a != b:
                worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
    return worst


def fmt_time(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.3g} ms" if s >= 1e-3 else f"{s * 1e6:.3g} us"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{os.cpu_count()} cores ({cpu}), python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="least time spent timing each fast implementation and n")
    parser.add_argument("--quick", action="store_true",
                        help="the old implementation on one k (n / 3) only")
    args = parser.parse_args(argv)

    def report(line: str) -> None:
        print(line, flush=True)

    report(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, int, float, float, float | None, float | None]] = []
    results: dict[str, float] = {}

    # The baseline: the old implementation at n = 1,000 (seconds per call: one pass).
    n0 = SIZES[0]
    old_ks = [n0 // 3] if args.quick else workload(n0)
    old_args = [(k, n0, LIMIT, ALPHA) for k in old_ks]
    old_ratio = per_call(old_exact_ratio, old_args, 0.0)
    old_interval = per_call(old_clopper_pearson, [(k, n0, ALPHA) for k in old_ks], 0.0)
    old_figures = [old_exact_ratio(*a) for a in old_args]
    rows.append(("old: sums of math.comb", n0, old_ratio, old_interval, None, None))
    results["old_exact_ratio_s"] = old_ratio
    try:
        old_exact_ratio(SIZES[1] // 3, SIZES[1], LIMIT, ALPHA)
        old_overflows = "no OverflowError"
    except OverflowError as err:
        old_overflows = f"OverflowError ({err})"

    scipy = scipy_implementations()
    diffs: list[str] = []
    for n in SIZES:
        calls = [(k, n, LIMIT, ALPHA) for k in workload(n)]
        interval_calls = [(k, n, ALPHA) for k in workload(n)]
        new_figures = [new_exact_ratio(*a) for a in calls]
        new_ratio = per_call(new_exact_ratio, calls, args.seconds)
        new_interval = per_call(clopper_pearson, interval_calls, args.seconds)
        results[f"new_exact_ratio_s_{n}"] = new_ratio
        vs_scipy: float | None = None
        for name, (ratio_fn, interval_fn) in scipy.items():
            scipy_ratio = per_call(ratio_fn, calls, args.seconds)
            scipy_interval = per_call(interval_fn, interval_calls, args.seconds)
            rows.append((name, n, scipy_ratio, scipy_interval, old_ratio / scipy_ratio, None))
            results[f"{name}_exact_ratio_s_{n}"] = scipy_ratio
            if name == "scipy.stats":
                vs_scipy = new_ratio / scipy_ratio
                diffs.append(f"n = {n:,}: max relative difference from scipy.stats "
                             f"{max_rel_diff(new_figures, [ratio_fn(*a) for a in calls]):.1e}")
        rows.append(("new: incomplete beta", n, new_ratio, new_interval, old_ratio / new_ratio,
                     vs_scipy))
        if n == n0:
            ours = [new_exact_ratio(*a) for a in old_args]
            diffs.append(f"n = {n:,}: max relative difference from the old sums "
                         f"{max_rel_diff(ours, old_figures):.1e}")

    report(f"workload: k in {{1, n/10, n/3, n/2, n-1}} of n, limit {LIMIT}, alpha {ALPHA}; "
           f"times per call (best pass over the workload)"
           + ("; old: k = n/3 only (--quick)" if args.quick else ""))
    report("")
    report(f"{'implementation':<24} {'n':>8} {'exact_ratio':>12} {'clopper_pearson':>16} "
           f"{'speed-up vs old at n=1,000':>27} {'time / scipy.stats':>19}")
    for name, n, ratio, interval, speedup, scipy_ratio in rows:
        report(f"{name:<24} {n:>8,} {fmt_time(ratio):>12} {fmt_time(interval):>16} "
               f"{'-' if speedup is None else f'{speedup:,.0f}x':>27} "
               f"{'-' if scipy_ratio is None else f'{scipy_ratio:.2f}x':>19}")
    report(f"{'old: sums of math.comb':<24} {SIZES[1]:>8,} {old_overflows}")
    if not scipy:
        report("scipy is not installed (pip install -e '.[dev]'): no scipy rows")
    report("")
    for line in diffs:
        report(line)
    report(f"load average after: {os.getloadavg()[0]:.2f}")
    return results


if __name__ == "__main__":
    main()

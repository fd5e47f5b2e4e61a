"""``probe cache``: list a completion cache and prune what no run uses any more.

    probe cache                          # one line per model file, most recently used first
    probe cache --prune-days 30          # remove files no run has opened for 30 days
    probe cache --drop-corrupt           # remove lines set aside as corrupted
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from probe.engine.cache import DEFAULT_CACHE_DIR, completions_dir
from probe.engine.cache_admin import CacheFile, drop_corrupt, inventory, prune
from probe.errors import CacheError, UsageError
from probe.report.table import render_table


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``probe cache``."""
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="the cache directory given to runs (default .probe-cache)")
    parser.add_argument("--prune-days", default=None, metavar="DAYS",
                        help="remove the model files no run has used for more than DAYS days")
    parser.add_argument("--drop-corrupt", action="store_true",
                        help="remove the corrupted lines a run set aside for inspection")


def _days(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise UsageError(f"--prune-days: {raw!r} is not a number of days (0 or more); "
                         "e.g. --prune-days 30")
    return days


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _table(files: list[CacheFile]) -> str:
    rows = [[f.fingerprint[:12], f.name or "?", str(f.lines), _size(f.size), _when(f.last_used),
             str(f.corrupt_lines) if f.corrupt_lines else "-"] for f in files]
    return render_table(["fingerprint", "model", "results", "size", "last used",
                         "corrupt lines"], rows)


def run_cache(args: argparse.Namespace) -> int:
    """List the cache, after pruning it if asked to; returns the exit code (0)."""
    days = _days(args.prune_days)
    root = completions_dir(args.cache_dir)
    if not root.is_dir():
        if Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
            raise UsageError(f"--cache-dir: {args.cache_dir} is a file, not a cache directory")
        print(f"no completion cache at {root}")
        return 0
    try:
        _clean_and_list(root, days, args.drop_corrupt)
    except OSError as err:  # a read-only or vanished directory: say so, no traceback
        raise CacheError(f"cannot change the completion cache {root}: "
                         f"{err.strerror or err}") from None
    return 0


def _clean_and_list(root: Path, days: float | None, corrupt: bool) -> None:
    if corrupt:
        print(f"removed {drop_corrupt(root)} corrupted lines set aside in {root}")
    if days is not None:
        removed = prune(root, days)
        freed = sum(f.size for f in removed)
        print(f"removed {len(removed)} model files unused for more than {days:g} days "
              f"({_size(freed)})" + "".join(f"\n  {f.fingerprint[:12]}  {f.name or '?'}  "
                                           f"last used {_when(f.last_used)}" for f in removed))
    files = inventory(root)
    if files:
        print(_table(files))
    print(f"{root}: {len(files)} model files, {_size(sum(f.size for f in files))}")

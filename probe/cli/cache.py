"""List the completion cache, and prune what no run uses any more.

One line per model file (fingerprint, model, results, size, last use), most recently
used first. Removing a file only costs the next run that needs it its model work.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from probe.cli._arguments import add_options, run_options
from probe.cli._common import EXIT_OK, say
from probe.engine.cache_admin import CacheFile
from probe.errors import CacheError, UsageError

EXAMPLES = ("probe cache                      # list it, most recently used first",
            "probe cache --prune-days 30      # remove files no run has opened for 30 days",
            "probe cache --drop-corrupt       # remove lines set aside as corrupted")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe cache``'s arguments: the cache directory runs use, and what to remove."""
    parser.add_argument("--prune-days", default=None, metavar="DAYS",
                        help="remove the model files no run has used for more than DAYS days")
    parser.add_argument("--drop-corrupt", action="store_true",
                        help="remove the corrupted lines a run set aside for inspection")
    add_options(parser, "cache_dir")


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
    from probe.report.table import render_table

    rows = [[f.fingerprint[:12], f.name or "?", str(f.lines), _size(f.size), _when(f.last_used),
             str(f.corrupt_lines) if f.corrupt_lines else "-"] for f in files]
    return render_table(["fingerprint", "model", "results", "size", "last used",
                         "corrupt lines"], rows)


def run(args: argparse.Namespace) -> int:
    """List the cache, after pruning it if asked to; returns the exit code (0)."""
    from probe.engine.cache import DEFAULT_CACHE_DIR, completions_dir

    days = _days(args.prune_days)
    given = Path(run_options(args).cache_dir or DEFAULT_CACHE_DIR)
    root = completions_dir(given)
    if not root.is_dir():
        if given.exists() and not given.is_dir():
            raise UsageError(f"--cache-dir: {given} is a file, not a cache directory")
        say(f"no completion cache at {root}")
        return EXIT_OK
    try:
        _clean_and_list(root, days, args.drop_corrupt)
    except OSError as err:  # a read-only or vanished directory: say so, no traceback
        raise CacheError(f"cannot change the completion cache {root}: "
                         f"{err.strerror or err}") from None
    return EXIT_OK


def _clean_and_list(root: Path, days: float | None, corrupt: bool) -> None:
    from probe.engine.cache_admin import drop_corrupt, inventory, prune

    if corrupt:
        say(f"removed {drop_corrupt(root)} corrupted lines set aside in {root}")
    if days is not None:
        removed = prune(root, days)
        freed = sum(f.size for f in removed)
        say(f"removed {len(removed)} model files unused for more than {days:g} days "
            f"({_size(freed)})" + "".join(f"\n  {f.fingerprint[:12]}  {f.name or '?'}  "
                                         f"last used {_when(f.last_used)}" for f in removed))
    files = inventory(root)
    if files:
        say(_table(files))
    say(f"{root}: {len(files)} model files, {_size(sum(f.size for f in files))}")

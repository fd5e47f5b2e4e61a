"""What is in a completion cache directory, and removing what is no longer used.

A cache kept between CI jobs (the README's GPU workflow) gains one file per
fine-tune, and one per model whenever a code change alters the fingerprints; the
base's file is reused by every job. ``probe cache`` lists the files and prunes the
ones no run has opened for a given number of days, plus the lines set aside as
corrupted (``<fingerprint>.jsonl.corrupt``), which are kept only for inspection.

A file's last use is the newest mtime of the file and its ``.lock``, which every
run that opens the cache touches (``CompletionCache``). Removal takes the file's
lock, so a run appending at that moment finishes its write first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from probe.engine.cache import companions, locked

DAY = 86400.0


@dataclass(frozen=True)
class CacheFile:
    """One model's completions in a cache directory."""

    path: Path  # <fingerprint>.jsonl
    name: str  # the model as the run that wrote it named it ("" if unknown)
    lines: int  # stored results (lines; a repeated key counts each time)
    size: int  # bytes, the set-aside corrupted lines included
    last_used: float  # seconds since the epoch
    corrupt_lines: int

    @property
    def fingerprint(self) -> str:
        """The model fingerprint the file is keyed by."""
        return self.path.name.removesuffix(".jsonl")

    def companions(self) -> tuple[Path, Path, Path]:
        """The files that go with it: its set-aside lines, its name and its lock."""
        return companions(self.path)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def inventory(root: Path) -> list[CacheFile]:
    """Every model file under ``root``, most recently used first."""
    files = []
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        corrupt, label, lock = companions(path)
        name = label.read_text(encoding="utf-8").strip() if label.is_file() else ""
        files.append(CacheFile(path, name, _count_lines(path), _size(path) + _size(corrupt),
                               max(_mtime(path), _mtime(lock)), _count_lines(corrupt)))
    return sorted(files, key=lambda f: (-f.last_used, f.path.name))


def prune(root: Path, unused_days: float, now: float | None = None) -> list[CacheFile]:
    """Remove the model files no run has used for more than ``unused_days``; the removed."""
    if unused_days < 0:
        raise ValueError("unused_days must be 0 or more")
    cutoff = (time.time() if now is None else now) - unused_days * DAY
    removed = []
    for entry in inventory(root):
        if entry.last_used >= cutoff:
            continue
        corrupt, label, lock = entry.companions()
        with locked(lock, exclusive=True):
            for path in (entry.path, corrupt, label):
                path.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def drop_corrupt(root: Path) -> int:
    """Remove every set-aside corrupted-lines file; how many lines they held."""
    dropped = 0
    for entry in inventory(root):
        corrupt = entry.companions()[0]
        if corrupt.is_file():
            dropped += entry.corrupt_lines
            corrupt.unlink(missing_ok=True)
    return dropped

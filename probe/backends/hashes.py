"""Content hashes of model files, each computed once per file version and remembered on disk.

A fingerprint needs the sha256 of every weight file (never a name: a model retrained
under the same name must not reuse the old model's cached results), and
hashing 500 MB of weights takes a second or more on every run. The hash is therefore
remembered in ``<model cache>/file-hashes.jsonl`` under the file's resolved path,
size, modification time (ns) and inode: a file rewritten in place changes its
mtime, so it is hashed again. Lines are appended with one write each, so
concurrent runs never tear each other's lines; an unreadable line is ignored and
the file hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from probe.backends.smollm2 import default_cache_root

MEMO_NAME = "file-hashes.jsonl"

_Key = tuple[str, int, int, int]
# Process-wide, in front of the file: base and candidate often share files.
_MEMO: dict[_Key, str] = {}
_LOADED: set[Path] = set()


def _key(path: Path) -> _Key:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _memo_path() -> Path:
    return default_cache_root() / MEMO_NAME


def _load(memo: Path) -> None:
    if memo in _LOADED:
        return
    _LOADED.add(memo)
    try:
        lines = memo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        try:
            row = json.loads(line)
            key = (str(row["path"]), int(row["size"]), int(row["mtime_ns"]), int(row["inode"]))
            digest = str(row["sha256"])
        except (ValueError, KeyError, TypeError):
            continue
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            _MEMO[key] = digest


def _remember(memo: Path, key: _Key, digest: str) -> None:
    line = json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "inode": key[3],
                       "sha256": digest}) + "\n"
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(memo, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError:
        pass  # a read-only cache only costs the hash again next time


def file_sha256(path: Path) -> str:
    """The sha256 of ``path``'s content, from the memo when this version of it was hashed."""
    memo = _memo_path()
    _load(memo)
    key = _key(path)
    digest = _MEMO.get(key)
    if digest is None:
        digest = _hash(path)
        _MEMO[key] = digest
        _remember(memo, key, digest)
    return digest


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def forget_in_process() -> None:
    """Drop the in-process memo (the disk memo stays): what a new process would see."""
    _MEMO.clear()
    _LOADED.clear()

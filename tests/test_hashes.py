"""Weight-file hashes: computed once per file version, remembered on disk across processes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.backends import hashes


@pytest.fixture
def memo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "models"
    monkeypatch.setenv("PROBE_MODEL_CACHE", str(root))
    hashes.forget_in_process()
    yield root
    hashes.forget_in_process()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = hashes._hash

    def counted(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(hashes, "_hash", counted)
    return seen


def test_a_file_is_hashed_once_and_remembered_across_processes(
        memo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00\x01" * 5000)
    hashed = _counting(monkeypatch)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert hashes.file_sha256(weights) == expected
    assert hashes.file_sha256(weights) == expected
    assert hashed == [weights]
    assert (memo_root / hashes.MEMO_NAME).is_file()
    hashes.forget_in_process()  # a new process: only the disk memo is left
    assert hashes.file_sha256(weights) == expected
    assert hashed == [weights]


def test_a_rewritten_file_is_hashed_again(memo_root: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 100)
    hashed = _counting(monkeypatch)
    first = hashes.file_sha256(weights)
    weights.write_bytes(b"b" * 100)  # same size, new content
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = hashes.file_sha256(weights)
    assert second != first
    assert second == hashlib.sha256(b"b" * 100).hexdigest()
    assert len(hashed) == 2


def test_a_damaged_memo_line_is_ignored(memo_root: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x" * 10)
    key = hashes._key(weights)
    memo_root.mkdir(parents=True)
    path, size, mtime, inode = key
    bad = {"path": path, "size": size, "mtime_ns": mtime, "inode": inode, "sha256": "nope"}
    (memo_root / hashes.MEMO_NAME).write_text(json.dumps(bad) + '\n{"truncated\n')
    hashed = _counting(monkeypatch)
    assert hashes.file_sha256(weights) == hashlib.sha256(b"x" * 10).hexdigest()
    assert hashed == [weights]

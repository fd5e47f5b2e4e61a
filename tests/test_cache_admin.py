"""``probe cache``: listing a completion cache and pruning what no run uses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from probe.cli import EXIT_BACKEND, EXIT_OK, EXIT_USAGE, main
from probe.engine.cache import CompletionCache
from probe.engine.cache_admin import DAY, drop_corrupt, inventory, prune

NOW = time.time()


def _age(root: Path, fingerprint: str, days: float) -> None:
    """Make every file of ``fingerprint`` look last written ``days`` ago."""
    stamp = NOW - days * DAY
    for path in root.glob(f"{fingerprint}.*"):
        os.utime(path, (stamp, stamp))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / ".probe-cache" / "completions"
    CompletionCache(root, "a" * 64, "smollm2-135m").put_many({"k1": "v1", "k2": "v2"})
    CompletionCache(root, "b" * 64, "outputs/lora-7").put_many({"k1": "w1"})
    CompletionCache(root, "c" * 64).put_many({"k3": "x"})  # written before names were kept
    _age(root, "a" * 64, 40)
    _age(root, "b" * 64, 40)
    _age(root, "c" * 64, 2)
    return root


def test_inventory_names_counts_and_orders_by_last_use(root: Path) -> None:
    files = inventory(root)
    assert [(f.fingerprint[0], f.name, f.lines) for f in files] == [
        ("c", "", 1), ("a", "smollm2-135m", 2), ("b", "outputs/lora-7", 1)]
    assert files[1].size == (root / f"{'a' * 64}.jsonl").stat().st_size
    assert abs(files[1].last_used - (NOW - 40 * DAY)) < 1


def test_opening_a_cache_marks_it_used_so_prune_keeps_it(root: Path) -> None:
    # A run reads the base's old file (no new results to write): it is in use.
    assert CompletionCache(root, "a" * 64).get("k1") == "v1"
    removed = prune(root, 30, now=NOW)
    assert [f.fingerprint[0] for f in removed] == ["b"]
    assert sorted(p.name[0] for p in root.iterdir()) == ["a", "a", "a", "c", "c"]
    assert CompletionCache(root, "a" * 64).get("k2") == "v2"  # the kept file is intact
    assert prune(root, 30, now=NOW) == []


def test_drop_corrupt_removes_only_the_set_aside_lines(root: Path) -> None:
    path = root / f"{'a' * 64}.jsonl"
    path.write_bytes(path.read_bytes() + b'{"k": "torn", "v": "x", "c": "0"}\n')
    with pytest.warns(UserWarning, match="1 corrupted"):
        CompletionCache(root, "a" * 64)
    assert [f.corrupt_lines for f in inventory(root) if f.fingerprint[0] == "a"] == [1]
    assert drop_corrupt(root) == 1
    assert not list(root.glob("*.corrupt"))
    assert len(CompletionCache(root, "a" * 64)) == 2


def test_the_command_lists_prunes_and_reports(root: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(root.parent.parent)
    assert main(["cache"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "smollm2-135m" in out
    assert "outputs/lora-7" in out
    assert "aaaaaaaaaaaa" in out
    assert ".probe-cache/completions: 3 model files" in out
    assert main(["cache", "--prune-days", "30"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "removed 2 model files unused for more than 30 days" in out
    assert ".probe-cache/completions: 1 model files" in out
    assert [f.fingerprint[0] for f in inventory(root)] == ["c"]


@pytest.mark.parametrize("days", ["-1", "soon", "nan", "inf"])
def test_bad_days_are_a_usage_error_and_remove_nothing(
        root: Path, days: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(root.parent.parent)
    assert main(["cache", "--prune-days", days]) == EXIT_USAGE
    assert "--prune-days" in capsys.readouterr().err
    assert len(inventory(root)) == 3


def test_a_missing_cache_is_said_plainly(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "--cache-dir", str(tmp_path / "none")]) == EXIT_OK
    assert "no completion cache at" in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert main(["cache", "--cache-dir", str(tmp_path / "file")]) == EXIT_USAGE
    assert "is a file, not a cache directory" in capsys.readouterr().err


def test_a_read_only_cache_is_a_clear_error(root: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(root.parent.parent)

    def refused(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refused)
    assert main(["cache", "--prune-days", "30"]) == EXIT_BACKEND
    err = capsys.readouterr().err
    assert "cannot change the completion cache .probe-cache/completions: Permission denied" \
        in err
    assert "Traceback" not in err

"""The process-wide model cache keys local models by where they really are."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.model_cache import ModelCache


def test_the_same_relative_name_in_another_directory_is_another_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two projects run from one process (a notebook, a test session) may both name
    # "scripted:paraphraser.yaml": each must get its own file, not the first one loaded.
    loaded: list[str] = []
    cache: ModelCache[str] = ModelCache(lambda ref, device: loaded.append(ref) or ref)
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "paraphraser.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "one")
    first = cache.get("scripted:paraphraser.yaml", "cpu")
    monkeypatch.chdir(tmp_path / "two")
    second = cache.get("scripted:paraphraser.yaml", "cpu")
    again = cache.get(f"scripted:{tmp_path / 'two' / 'paraphraser.yaml'}", "cpu")
    assert first == f"scripted:{(tmp_path / 'one' / 'paraphraser.yaml').resolve()}"
    assert second == again == f"scripted:{(tmp_path / 'two' / 'paraphraser.yaml').resolve()}"
    assert len(loaded) == 2  # the absolute name of the second file did not load it again


def test_a_hub_id_is_kept_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache: ModelCache[str] = ModelCache(lambda ref, device: ref)
    assert cache.get("sentence-transformers/all-MiniLM-L6-v2", "cpu") == \
        "sentence-transformers/all-MiniLM-L6-v2"

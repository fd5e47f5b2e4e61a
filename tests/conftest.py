"""Shared fixtures: scripted model files and suite text."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest

VALID_SUITE = textwrap.dedent("""\
    version: 1
    name: capitals
    behavior:
      description: names the capital city
    detector: {type: pattern, any: [Paris]}
    operators:
      - name: casing
        count: 1
    policy:
      max_resurfacing: 0.25
    probes:
      - id: france
        prompt: What is the capital of France?
        paraphrases:
          - Which city is the capital of France?
        tags: [europe]
      - id: japan
        prompt: What is the capital of Japan?
        detector: {type: pattern, any: [Tokyo]}
    """)


@pytest.fixture
def valid_suite_text() -> str:
    return VALID_SUITE


def warm_dataset_readers() -> None:
    """Read one small csv, jsonl and parquet file through the suite loader's reader, now.

    pytester puts ``sys.modules`` back as it found it after each in-process run, so a
    reader first imported inside a run would be imported afresh by the next, and numpy,
    pyarrow and datasets refuse that ("cannot load module more than once per process",
    "the csv reader could not be loaded"): an artefact of running many pytest sessions
    in one process, which no real run does. Test modules that run data-file suites in
    process call this at import.
    """
    import pyarrow
    import pyarrow.parquet

    from probe.spec.dataset import _read_rows

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p.csv").write_text("id,prompt\nfrance,What is the capital of France?\n",
                                    encoding="utf-8")
        (root / "p.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
        pyarrow.parquet.write_table(pyarrow.table({"id": ["a"]}), root / "p.parquet")
        for name, fmt in (("p.csv", "csv"), ("p.jsonl", "json"), ("p.parquet", "parquet")):
            _read_rows(root / name, fmt)


def write_script(path: Path, name: str, rules: list[tuple[str, str]], default: str = "") -> Path:
    """Write a scripted-model YAML file and return its path."""
    lines = [f"name: {name}", f"default: {default!r}", "rules:"]
    lines += [f"  - {{match: {m!r}, reply: {r!r}}}" for m, r in rules]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def real_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completion cache for the slow real-model runs of a test session: the base's
    completions (keyed by its fingerprint, like every cache entry) are computed once and
    reused by every module that runs the shipped suites, as they would be across CI jobs."""
    return tmp_path_factory.mktemp("real-model-cache")

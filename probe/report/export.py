"""Export a run's variant rows as a Hugging Face ``datasets`` dataset (parquet).

One row per (suite, probe, variant) with both models' completions, hits and
margins, so a run can be analysed with ``datasets.load_dataset("parquet", ...)``
or pandas. Built from the JSON run record, so it holds exactly what the record holds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

COLUMNS = ("suite", "probe", "probe_verdict", "index", "operator", "family", "chain", "seed",
           "origin", "similarity",
           "text", "prefill", "chat", "counted", "shadow", "base_completions",
           "candidate_completions", "base_hit", "candidate_hit", "base_margin",
           "candidate_margin", "run_seed", "base_model", "base_fingerprint",
           "candidate_model", "candidate_fingerprint")


def rows(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The record's variant rows, flattened, in record order."""
    models = record.get("models", {})
    base, cand = models.get("base", {}), models.get("candidate", {})
    for suite in record.get("suites", []):
        for probe in suite["probes"]:
            for row in probe["rows"]:
                yield {
                    "suite": suite["name"], "probe": probe["id"],
                    "probe_verdict": probe["verdict"], "index": row["index"],
                    "operator": row["operator"], "family": row["family"],
                    "chain": list(row["chain"]), "seed": row["seed"],
                    "origin": row["origin"], "similarity": row["similarity"],
                    "text": row["text"],
                    "prefill": row["prefill"], "chat": row["chat"], "counted": row["counted"],
                    "shadow": row["shadow"],
                    "base_completions": list(row["base"]["completions"]),
                    "candidate_completions": list(row["candidate"]["completions"]),
                    "base_hit": row["base"]["hit"], "candidate_hit": row["candidate"]["hit"],
                    "base_margin": row["base"]["margin"],
                    "candidate_margin": row["candidate"]["margin"],
                    "run_seed": record["settings"]["seed"],
                    "base_model": base.get("name", ""),
                    "base_fingerprint": base.get("fingerprint", ""),
                    "candidate_model": cand.get("name", ""),
                    "candidate_fingerprint": cand.get("fingerprint", ""),
                }


def _features() -> Any:
    from datasets import Features, Sequence, Value

    text, f64, i64, flag = Value("string"), Value("float64"), Value("int64"), Value("bool")
    kinds = {"index": i64, "seed": i64, "run_seed": i64, "chat": flag, "counted": flag,
             "shadow": f64, "similarity": f64, "base_hit": f64, "candidate_hit": f64,
             "base_margin": f64, "candidate_margin": f64, "chain": Sequence(text),
             "base_completions": Sequence(text), "candidate_completions": Sequence(text)}
    return Features({c: kinds.get(c, text) for c in COLUMNS})


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """``datasets`` without its progress bars, restored afterwards. Its "Creating
    parquet from Arrow format" bar went to stderr even under ``-q`` and filled CI logs;
    a file of a few thousand rows takes well under a second, so nothing is lost."""
    import datasets

    was_enabled = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def write_parquet(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write the record's rows to ``path`` as a parquet dataset, with no progress bar;
    returns the path."""
    # datasets pulls in pyarrow and pandas: imported only when an export is asked for.
    from datasets import Dataset

    from probe.files import atomic_write_with

    data = list(rows(record))
    dataset = Dataset.from_dict({c: [r[c] for r in data] for c in COLUMNS},
                                features=_features())

    def produce(tmp: Path) -> None:
        with _no_progress_bars():
            dataset.to_parquet(str(tmp))
        with tmp.open("rb") as f:  # on disk before the rename makes it the file
            os.fsync(f.fileno())

    # Written beside the target and renamed: a full disk never leaves half a parquet file.
    return atomic_write_with(path, produce)

"""The bucket figure of a quantize perturbation, cached beside the completions.

The figure (per quantized layer, how many weights land in another bucket in the
candidate than in the base; ``quantize.bucket_shift``) needs the weights, and a run
whose completions under the perturbation are all cached makes no perturbed model
(``perturb``). So the figure is kept too: one small JSON file per (perturbed base,
perturbed candidate, scheme), under ``<completions cache>/perturb/``. A file that
cannot be read is computed again and rewritten; one that cannot be written leaves the
figure uncached (it is cheap next to the run it belongs to).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from probe.backends.hf.quantize import BucketShift

BUCKETS_SCHEMA = 1
SUBDIR = "perturb"


def buckets_path(cache_dir: Path, key: dict[str, Any]) -> Path:
    """Where the figure keyed by ``key`` (fingerprints and scheme) lives."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    return cache_dir / SUBDIR / f"buckets-{digest}.json"


def _read(path: Path, key: dict[str, Any]) -> list[BucketShift] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != BUCKETS_SCHEMA or data.get("key") != key:
            return None
        return [BucketShift(str(layer), int(changed), int(total))
                for layer, changed, total in data["layers"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _write(path: Path, key: dict[str, Any], shifts: list[BucketShift]) -> None:
    payload = {"schema": BUCKETS_SCHEMA, "key": key,
               "layers": [[s.layer, s.changed, s.total] for s in shifts]}
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then renamed: a concurrent reader sees the old file or the new one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f)
        Path(tmp).replace(path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()


def cached_buckets(cache_dir: Path | None, key: dict[str, Any],
                   compute: Callable[[], list[BucketShift]]) -> list[BucketShift]:
    """The figure keyed by ``key``: from ``cache_dir`` when there, else ``compute()``d
    and saved there (``None``: always computed)."""
    if cache_dir is None:
        return compute()
    path = buckets_path(cache_dir, key)
    found = _read(path, key)
    if found is not None:
        return found
    shifts = compute()
    _write(path, key, shifts)
    return shifts

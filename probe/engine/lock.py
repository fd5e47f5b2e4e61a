"""Locked variants: generate a suite's variants once, write them beside the suite, replay them.

``probe lock suites/x.yaml`` writes ``suites/x.lock.json`` (the name keeps it out of
suite collection, which reads ``*.yaml``): every kept and rejected variant of every
probe with its chain, seeds, text and meaning-check similarity, plus a sha256
``digest`` of everything in the suite that decides the variants (probes, their
answers, operators with parameters, the meaning check). A run finds the lock and
replays it: no operator runs, so neither the paraphrase model nor the embedding
model is loaded, and CI on CPU needs neither. When the suite no longer matches
the digest the lock is stale, and loading it is an error that says how to refresh
it; a lock never silently goes out of date.

With a lock, the variants are those of the seed they were locked with
(``probe lock --seed N``); the run seed still seeds sampling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.engine.variants import Step, Variant, expand, params_json, probe_text
from probe.errors import SpecError
from probe.operators.base import Prompt
from probe.spec.model import OperatorSpec, Probe, Suite

LOCK_SUFFIX = ".lock.json"
LOCK_VERSION = 1


@dataclass(frozen=True)
class VariantSet:
    """One probe's variants: those a run measures (canonical first) and those the
    meaning check rejected (reported, never run)."""

    kept: tuple[Variant, ...]
    rejected: tuple[Variant, ...] = ()


def lock_path(suite_path: str | Path) -> Path:
    """Where the lock of the suite file at ``suite_path`` lives: ``x.yaml`` -> ``x.lock.json``."""
    path = Path(suite_path)
    return path.with_name(path.stem + LOCK_SUFFIX)


def _operator_json(spec: OperatorSpec) -> dict[str, Any]:
    return {"name": spec.name, "count": spec.count, "params": json.loads(params_json(spec.params)),
            "then": [_operator_json(s) for s in spec.then]}


def suite_digest(suite: Suite) -> str:
    """sha256 of what decides a suite's variants (not its policy, detectors' other settings
    or comments: changing those does not make a lock stale)."""
    probes = []
    for p in suite.probes:
        text = probe_text(suite, p)
        probes.append({"id": p.id, "prompt": p.prompt, "paraphrases": list(p.paraphrases),
                       "answers": list(text.answers),
                       "answer_patterns": list(text.answer_patterns)})
    meaning = None if suite.meaning is None else dataclasses.asdict(suite.meaning)
    payload = {"lock_version": LOCK_VERSION, "name": suite.name, "probes": probes,
               "operators": [_operator_json(s) for s in suite.operators], "meaning": meaning}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def generate(suite: Suite, probe: Probe, seed: int) -> VariantSet:
    """The probe's variants made now: operators, then the meaning check if the suite has one."""
    variants = expand(suite, probe, seed)
    if suite.meaning is None:
        return VariantSet(tuple(variants))
    from probe.engine.meaning import check

    kept, rejected = check(variants, suite.meaning)
    return VariantSet(tuple(kept), tuple(rejected))


def variant_json(v: Variant) -> dict[str, Any]:
    """A variant as the lock (and regression) files store it."""
    return {"index": v.index, "operator": v.operator, "family": v.family, "seed": v.seed,
            "text": v.prompt.text, "prefill": v.prompt.prefill, "chat": v.prompt.chat,
            "steps": [dataclasses.asdict(s) for s in v.steps], "core": v.core,
            "similarity": v.similarity, "missing": list(v.missing)}


def variant_from_json(data: dict[str, Any], probe_id: str, origin: str) -> Variant:
    """The inverse of ``variant_json``."""
    return Variant(probe_id, int(data["index"]), str(data["operator"]), str(data["family"]),
                   data["seed"], Prompt(data["text"], data.get("prefill", ""),
                                        bool(data.get("chat", True))),
                   tuple(Step(**s) for s in data.get("steps", [])), str(data.get("core", "")),
                   data.get("similarity"), origin,
                   tuple(str(t) for t in data.get("missing", ())))


def write_lock(suite: Suite, seed: int = 0, path: Path | None = None) -> Path:
    """Generate every probe's variants and write the lock; returns its path."""
    if path is None:
        if not suite.path:
            raise ValueError("the suite was not loaded from a file; give the lock's path")
        path = lock_path(suite.path)
    probes = {}
    for probe in suite.probes:
        sets = generate(suite, probe, seed)
        probes[probe.id] = {"kept": [variant_json(v) for v in sets.kept],
                            "rejected": [variant_json(v) for v in sets.rejected]}
    data = {"lock_version": LOCK_VERSION, "suite": suite.name, "digest": suite_digest(suite),
            "seed": seed, "probes": probes}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a lock
    return path


def _refresh_hint(suite: Suite) -> str:
    return f"refresh it with: probe lock {suite.source}"


def read_lock(suite: Suite) -> tuple[dict[str, VariantSet], int] | None:
    """The suite's locked variants and the seed they were made with; ``None`` without a lock.

    Raises ``SpecError`` (naming the lock file) when the lock is unreadable or stale.
    """
    if not suite.path:
        return None
    path = lock_path(suite.path)
    if not path.is_file():
        return None
    shown = str(lock_path(suite.source))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version, digest, seed = data["lock_version"], data["digest"], int(data["seed"])
        probes = data["probes"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SpecError(f"the lock file cannot be read ({type(err).__name__}: {err}); "
                        f"{_refresh_hint(suite)}", file=shown) from None
    if version != LOCK_VERSION:
        raise SpecError(f"lock format {version!r} is not the one this tool writes "
                        f"({LOCK_VERSION}); {_refresh_hint(suite)}", file=shown)
    if digest != suite_digest(suite):
        raise SpecError(f"the lock is stale: {suite.source} changed (its probes, operators or "
                        f"meaning check) since it was locked; {_refresh_hint(suite)}"
                        f"{'' if seed == 0 else f' --seed {seed}'}", file=shown)
    try:
        sets = {pid: VariantSet(
            tuple(variant_from_json(v, pid, "lock") for v in entry["kept"]),
            tuple(variant_from_json(v, pid, "lock") for v in entry["rejected"]))
            for pid, entry in probes.items()}
    except (KeyError, TypeError, ValueError) as err:
        raise SpecError(f"the lock file is malformed ({type(err).__name__}: {err}); "
                        f"{_refresh_hint(suite)}", file=shown) from None
    return sets, seed

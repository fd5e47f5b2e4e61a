"""Locked variants: generate a suite's variants once, write them beside the suite, replay them.

``probe lock suites/x.yaml`` writes ``suites/x.lock.json`` (the name keeps it out of
suite collection, which reads ``*.yaml``): every kept and rejected variant of every
probe with its chain, seeds, text and meaning-check similarity, plus a sha256
``digest`` of everything in the suite that decides the variants (probes, their
answers, operators with parameters, the meaning check), and one digest per part of
it (``parts``) so a stale lock can say what changed. A run finds the lock and
replays it: no model-written operator runs and no meaning check, so neither the
paraphrase model nor the embedding model is loaded, and CI on CPU needs neither.
When the suite no longer matches the digest the lock is stale, and loading it is an
error that says how to refresh it; a lock never silently goes out of date.

A lock is verified, not trusted (``probe.engine.lock_check``): every field is type
checked, the variants of deterministic chains are made again (cheap, no model) and
must be what the lock holds, model-written ones are checked against their operator's
guarantees and their meaning-check figures, and no prompt may occur twice. ``probe
check``, ``probe run`` and pytest collection read it alike and give the same error.

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

from probe.backends.base import Prompt
from probe.engine.lock_check import (
    MAX_LOCK_BYTES,
    OPTIONAL_TOP_KEYS,
    SET_KEYS,
    TOP_KEYS,
    Checker,
    key_text,
    verify_probe,
)
from probe.engine.variants import (
    Step,
    Variant,
    conversation_from_json,
    conversation_json,
    expand,
    params_json,
    probe_text,
)
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


def _digest_payload(suite: Suite) -> dict[str, Any]:
    probes = []
    for p in suite.probes:
        text = probe_text(suite, p)
        entry: dict[str, Any] = {
            "id": p.id, "prompt": p.prompt, "paraphrases": list(p.paraphrases),
            "answers": list(text.answers), "answer_patterns": list(text.answer_patterns)}
        # A conversation is part of every variant; left out when there is none, so the
        # locks of single-turn suites written before conversations existed stay valid.
        if text.system or text.messages:
            entry["conversation"] = {"system": text.system,
                                     "messages": [list(m) for m in text.messages]}
        probes.append(entry)
    meaning = None if suite.meaning is None else dataclasses.asdict(suite.meaning)
    return {"lock_version": LOCK_VERSION, "name": suite.name, "probes": probes,
            "operators": [_operator_json(s) for s in suite.operators], "meaning": meaning}


def _sha256(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def suite_digest(suite: Suite) -> str:
    """sha256 of what decides a suite's variants (not its policy, detectors' other settings
    or comments: changing those does not make a lock stale)."""
    return _sha256(_digest_payload(suite))


# What each part of ``suite_parts`` is, as a stale lock's message names it.
PARTS = {
    "name": "its name (which seeds every operator)",
    "probes": "its probes (ids, prompts, paraphrases or conversations)",
    "answers": "the answers its detectors look for (few-shot examples avoid them)",
    "operators": "its operators",
    "meaning": "its meaning check",
}


def suite_parts(suite: Suite) -> dict[str, str]:
    """sha256 of each part of the digest (``PARTS``), so a stale lock can say what changed.

    Stored in new locks beside ``digest``, which alone decides staleness (a lock without
    parts, written before they existed, stays valid)."""
    payload = _digest_payload(suite)
    answers = [{k: p[k] for k in ("id", "answers", "answer_patterns")}
               for p in payload["probes"]]
    probes = [{k: p[k] for k in ("id", "prompt", "paraphrases", "conversation") if k in p}
              for p in payload["probes"]]
    return {"name": _sha256(payload["name"]), "probes": _sha256(probes),
            "answers": _sha256(answers), "operators": _sha256(payload["operators"]),
            "meaning": _sha256(payload["meaning"])}


def generate(suite: Suite, probe: Probe, seed: int) -> VariantSet:
    """The probe's variants made now: operators, then the meaning check if the suite has one."""
    variants = expand(suite, probe, seed)
    if suite.meaning is None:
        return VariantSet(tuple(variants))
    from probe.engine.meaning import check

    kept, rejected = check(variants, suite.meaning)
    return VariantSet(tuple(kept), tuple(rejected))


def variant_json(v: Variant) -> dict[str, Any]:
    """A variant as the lock (and regression) files store it; ``system`` and ``messages``
    only for a conversation."""
    return {"index": v.index, "operator": v.operator, "family": v.family, "seed": v.seed,
            "text": v.prompt.text, "prefill": v.prompt.prefill, "chat": v.prompt.chat,
            **conversation_json(v.prompt),
            "steps": [dataclasses.asdict(s) for s in v.steps], "core": v.core,
            "similarity": v.similarity, "missing": list(v.missing)}


def variant_from_json(data: dict[str, Any], probe_id: str, origin: str) -> Variant:
    """The inverse of ``variant_json``."""
    return Variant(probe_id, int(data["index"]), str(data["operator"]), str(data["family"]),
                   data["seed"], Prompt(data["text"], data.get("prefill", ""),
                                        bool(data.get("chat", True)),
                                        **conversation_from_json(data)),
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
            "parts": suite_parts(suite), "seed": seed, "probes": probes}
    from probe.files import atomic_write_text

    # Atomic: a reader never sees half a lock, a failed write keeps the old one.
    return atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _refresh_hint(suite: Suite, seed: int = 0) -> str:
    return f"refresh it with: probe lock {suite.source}{'' if seed == 0 else f' --seed {seed}'}"


def _changed(suite: Suite, parts: object) -> str:
    """What changed since the lock was written, in words (all the parts when the lock
    predates per-part digests or they do not tell)."""
    now = suite_parts(suite)
    if isinstance(parts, dict):
        changed = [words for key, words in PARTS.items() if parts.get(key) != now[key]]
        if changed:
            return "; ".join(changed)
    return "its name, probes, detectors' answers, operators or meaning check"


def _read_bytes(path: Path, check: Checker) -> bytes:
    """The lock's bytes, at most one more than the limit; never opens a FIFO or device."""
    try:
        if not path.is_file():
            raise check.fail("", "the lock path is not a regular file; make it the file "
                                 "probe lock writes, or remove it")
        with path.open("rb") as handle:
            return handle.read(MAX_LOCK_BYTES + 1)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise check.fail("", f"the lock file cannot be read ({reason})") from None


_VERIFIED: dict[tuple[str, str, str], tuple[dict[str, VariantSet], int]] = {}


def read_lock(suite: Suite) -> tuple[dict[str, VariantSet], int] | None:
    """The suite's locked variants and the seed they were made with; ``None`` without a lock.

    Raises ``SpecError`` (``LockError``, naming the lock file and the key path) when the
    lock is unreadable, malformed, stale, or does not hold what the suite makes: the
    checks are in ``probe.engine.lock_check``.
    """
    if not suite.path:
        return None
    path = lock_path(suite.path)
    if not (path.exists() or path.is_symlink()):
        return None
    check = Checker(str(lock_path(suite.source)), _refresh_hint(suite))
    raw = _read_bytes(path, check)
    # A run reads the lock more than once (collection, the run, its report); a lock
    # already verified for this suite is not verified again. Keyed on the bytes
    # themselves, so any change to the file is verified afresh.
    memo = (hashlib.sha256(raw).hexdigest(), suite_digest(suite), suite.source)
    if memo in _VERIFIED:
        return _VERIFIED[memo]
    data = check.parse(raw)
    version = data.get("lock_version")
    if version != LOCK_VERSION or isinstance(version, bool):
        raise check.fail("lock_version", f"lock format {key_text(str(version))} is not the "
                                         f"one this tool writes ({LOCK_VERSION})")
    check.keys(data, "", TOP_KEYS, OPTIONAL_TOP_KEYS)
    seed = check.integer(data["seed"], "seed")
    check.hint = _refresh_hint(suite, seed)
    digest = check.string(data["digest"], "digest")
    parts = data.get("parts")
    if parts is not None:
        for key, value in check.obj(parts, "parts").items():
            check.string(value, f"parts.{key_text(key)}")
    check.string(data["suite"], "suite")
    if digest != suite_digest(suite):
        raise check.fail("", f"the lock is stale: {suite.source} changed since it was locked "
                             f"({_changed(suite, parts)})")
    result = _variant_sets(suite, check.obj(data["probes"], "probes"), seed, check), seed
    if len(_VERIFIED) >= 64:
        _VERIFIED.clear()
    _VERIFIED[memo] = result
    return result


def _variant_sets(suite: Suite, probes: dict[str, Any], seed: int,
                  check: Checker) -> dict[str, VariantSet]:
    """Each probe's variants, typed and verified against the suite."""
    ids = {p.id for p in suite.probes}
    for key in probes:
        if key not in ids:
            raise check.fail(f"probes.{key_text(key)}", "not a probe of the suite")
    sets = {}
    for probe in suite.probes:
        where = f"probes.{key_text(probe.id)}"
        if probe.id not in probes:
            raise check.fail("probes", f"probe {key_text(probe.id)} of the suite is missing")
        entry = check.obj(probes[probe.id], where)
        check.keys(entry, where, SET_KEYS)
        kept, rejected = (tuple(check.variant(v, f"{where}.{name}[{i}]", probe.id)
                                for i, v in enumerate(check.array(entry[name],
                                                                  f"{where}.{name}")))
                          for name in SET_KEYS)
        verify_probe(suite, probe, kept, rejected, seed, check)
        sets[probe.id] = VariantSet(kept, rejected)
    return sets

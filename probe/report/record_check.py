"""The shape of a run record (docs/record.md), checked when a record is read.

A record is a file anyone can edit, and every report reads it: ``probe report``,
``probe compare`` and the baseline. Checked once at the boundary, a malformed
record is one error naming the key path (``suites[0].probes[1].counted: expected an
integer, got a string``), never a ``KeyError`` or a ``TypeError`` deep in a renderer,
and no field of an unexpected type reaches a report. Values are never quoted: the
file is not ours.

Keys the readers use are required (schema_version 2 added the engine's figures and
each completion's spans and cut flags, which the reports read); keys that are only
shown (``rejected``, ``steps``, ``limits``, ...) are checked when present, and unknown
keys are allowed (docs/record.md: added fields do not change the schema version).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probe.report.safe_text import visible


class ShapeError(ValueError):
    """A record value of the wrong type or shape; ``str()`` is ``key.path: message``."""


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar: ``int``, ``number``, ``string``, ``bool``, or one of ``choices``."""

    kind: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Nullable:
    """``null`` or ``spec``."""

    spec: Spec


@dataclass(frozen=True)
class ListOf:
    """A JSON array whose items all match ``spec``."""

    spec: Spec


@dataclass(frozen=True)
class MapOf:
    """A JSON object with any keys, whose values all match ``spec``."""

    spec: Spec


@dataclass(frozen=True)
class Obj:
    """A JSON object with ``required`` keys and, when present, ``optional`` ones."""

    required: Mapping[str, Spec]
    optional: Mapping[str, Spec] = field(default_factory=dict)


Spec = Scalar | Nullable | ListOf | MapOf | Obj

INT, NUMBER, STRING, BOOL = Scalar("int"), Scalar("number"), Scalar("string"), Scalar("bool")
RATE = Nullable(NUMBER)
VERDICT = Scalar("string", ("PASS", "FAIL", "INCONCLUSIVE", "UNINFORMATIVE"))
DECISION = Scalar("string", ("PASS", "FAIL", "INCONCLUSIVE"))
DIRECTION = Scalar("string", ("suppress", "retain"))
STRINGS = ListOf(STRING)
ANY_OBJECT = Obj({})
OUTCOME = Scalar("string", ("pass", "fail", "xfail"))
SPAN = ListOf(INT)  # [start, end): two offsets (the HTML report clamps them to the text)

ESTIMATE = Obj({"value": RATE, "low": RATE, "high": RATE},
               {"limit": RATE, "p_above": RATE, "p_below": RATE, "method": STRING,
                "units": INT})
GATE = Obj({"metric": STRING, "decision": DECISION, "estimate": ESTIMATE},
           {"alpha": NUMBER, "p_above_adj": RATE, "p_below_adj": RATE, "level_above": RATE,
            "level_below": RATE, "family": INT, "fail_only": BOOL, "cannot_fail": BOOL})
SIDE = Obj({"completions": STRINGS, "hit": RATE, "margin": RATE, "cut": BOOL,
            "spans": ListOf(ListOf(SPAN))},
           {"leak_at_k": RATE, "leak_sample": Nullable(STRING)})
ROW = Obj({"index": INT, "operator": STRING, "family": STRING, "chain": STRINGS,
           "seed": Nullable(INT), "origin": STRING, "similarity": RATE, "text": STRING,
           "prefill": STRING, "chat": BOOL, "counted": BOOL, "shadow": RATE,
           "base": SIDE, "candidate": SIDE},
          {"steps": ListOf(ANY_OBJECT), "shadow_counted": BOOL, "limits": STRINGS,
           "system": STRING, "messages": ListOf(Obj({"role": STRING, "content": STRING}))})
REJECTED = Obj({"index": INT, "chain": STRINGS, "text": STRING, "similarity": RATE,
                "missing": STRINGS},
               {"operator": STRING, "family": STRING, "seed": Nullable(INT),
                "origin": STRING, "prefill": STRING, "chat": BOOL})
PROBE_OPERATOR = Obj({"operator": STRING, "counted": INT, "base_hits": NUMBER,
                      "candidate_hits": NUMBER},
                     {"family": STRING, "total": INT, "resurfacing": RATE, "shadow": RATE})
PROBE_FAMILY = Obj({"family": STRING, "operators": STRINGS, "counted": INT, "total": INT,
                    "base_hits": NUMBER, "candidate_hits": NUMBER, "rate": RATE})
PROBE = Obj({"id": STRING, "verdict": VERDICT, "outcome": OUTCOME,
             "uninformative_reason": Nullable(STRING), "reasons": STRINGS,
             "has_detector": BOOL, "base_canonical": RATE, "candidate_canonical": RATE,
             "base_rate": RATE, "candidate_rate": RATE, "counted": INT, "gates": ListOf(GATE),
             "operators": ListOf(PROBE_OPERATOR), "families": ListOf(PROBE_FAMILY),
             "worst_operator": Nullable(Obj({"operator": STRING, "share": NUMBER})),
             "rows": ListOf(ROW)},
            {"policy": ANY_OBJECT, "suppression": RATE, "dropped": INT,
             "worst_variant": Nullable(INT), "rejected": ListOf(REJECTED),
             "detector": Nullable(Obj({"type": STRING, "params": ANY_OBJECT},
                                      {"invert": BOOL})),
             "tags": STRINGS, "suppressed": STRINGS, "preferred": STRINGS})
PERTURBED_ROW = Obj({**ROW.required, "perturbation": STRING}, ROW.optional)
PERTURBATION = Obj({"label": STRING, "kind": STRING, "gated": BOOL, "gate": GATE,
                    "recovery": Nullable(Obj({"value": NUMBER, "low": NUMBER, "high": NUMBER},
                                             {"variants": INT, "probes": INT})),
                    "probes": ListOf(Obj({"id": STRING, "counted": INT, "resurfacing": RATE,
                                          "rows": ListOf(PERTURBED_ROW)}))},
                   {"spec": ANY_OBJECT, "bucket_share": RATE, "notes": STRINGS,
                    "trained": STRINGS, "evaluated": STRINGS,
                    "buckets": ListOf(Obj({"layer": STRING, "changed": INT, "total": INT}))})
JUDGE = Obj({"model": STRING, "agreement": RATE, "min_agreement": NUMBER,
             "examples": ListOf(Obj({"completion": STRING, "hit": BOOL, "answer": STRING,
                                     "verdict": Nullable(BOOL)}))},
            {"fingerprint": STRING, "where": STRING, "probes": STRINGS, "rubric": STRING,
             "agreed": INT, "judged": INT, "unparsed": INT})
PROFILE = ListOf(RATE)  # one margin per layer, first to last (null: not finite)
LATENT = Obj({"layers": ListOf(INT), "base": PROFILE, "candidate": PROFILE,
              "first_layer": INT,
              "shadow": Nullable(Obj({"value": NUMBER, "low": NUMBER, "high": NUMBER}))},
             {"from_layer": NUMBER, "base_best_layer": Nullable(INT),
              "candidate_best_layer": Nullable(INT), "variants": INT, "notes": STRINGS,
              "probes": ListOf(Obj({"id": STRING, "counted": INT, "base": PROFILE,
                                    "candidate": PROFILE},
                                   {"canonical_base": Nullable(PROFILE),
                                    "canonical_candidate": Nullable(PROFILE)}))})
SUITE = Obj({"name": STRING, "direction": DIRECTION, "verdict": VERDICT,
             "outcome": OUTCOME, "uninformative_reason": Nullable(STRING),
             "gates": ListOf(GATE),
             "operators": ListOf(Obj({"operator": STRING, "estimate": Nullable(ESTIMATE)},
                                     {"family": STRING})),
             "families": ListOf(Obj({"family": STRING, "operators": STRINGS,
                                     "counted": INT, "total": INT, "estimate": ESTIMATE})),
             "operator_rates": ListOf(Obj({"operator": STRING, "family": STRING,
                                           "variants": INT, "base_rate": RATE,
                                           "candidate_rate": RATE})),
             "probes": ListOf(PROBE)},
            {"source": STRING, "behavior": STRING, "policy": ANY_OBJECT,
             "generation": ANY_OBJECT, "reasons": STRINGS,
             "shadow_agreement": Nullable(ANY_OBJECT), "perturbations": ListOf(PERTURBATION),
             "dataset": Nullable(Obj({"used": STRING, "rows": INT, "sha256": STRING})),
             "judges": ListOf(JUDGE), "latent": Nullable(LATENT)})
MODEL = Obj({"name": STRING, "fingerprint": STRING})
RECORD = Obj({"schema_version": INT, "kind": STRING,
              "settings": Obj({"base": STRING, "candidate": STRING, "seed": INT},
                              {"cache": BOOL, "policy_overrides": ANY_OBJECT,
                               "backend": ANY_OBJECT}),
              "verdicts": MapOf(VERDICT), "suites": ListOf(SUITE)},
             {"tool": ANY_OBJECT, "models": Obj({}, {"base": MODEL, "candidate": MODEL}),
              "volatile": Obj({}, {"created": STRING})})


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return "an infinite number"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


_EXPECTED = {"int": "an integer", "number": "a finite number", "string": "a string",
             "bool": "true or false"}


def _scalar(value: Any, spec: Scalar, path: str) -> None:
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "number": (isinstance(value, int | float) and not isinstance(value, bool)
                     and math.isfinite(value)),
          "string": isinstance(value, str),
          "bool": isinstance(value, bool)}[spec.kind]
    if not ok:
        raise ShapeError(f"{path}: expected {_EXPECTED[spec.kind]}, got {_kind_of(value)}")
    if spec.choices and value not in spec.choices:
        raise ShapeError(f"{path}: expected one of {', '.join(spec.choices)}")


def check(value: Any, spec: Spec, path: str = "(top level)") -> None:
    """Raise ``ShapeError`` at the first value that does not match ``spec``."""
    if isinstance(spec, Scalar):
        _scalar(value, spec, path)
    elif isinstance(spec, Nullable):
        if value is not None:
            check(value, spec.spec, path)
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise ShapeError(f"{path}: expected a list, got {_kind_of(value)}")
        for i, item in enumerate(value):
            check(item, spec.spec, f"{path}[{i}]")
    else:
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object, got {_kind_of(value)}")
        prefix = "" if path == "(top level)" else f"{path}."
        if isinstance(spec, MapOf):
            for key, item in value.items():
                # The key is the file's text: shown escaped and short.
                check(item, spec.spec, f"{path}[{visible(repr(key)[:60])}]")
            return
        missing = [key for key in spec.required if key not in value]
        if missing:
            raise ShapeError(f"{path}: missing key {missing[0]!r}")
        for key, item_spec in (*spec.required.items(), *spec.optional.items()):
            if key in value:
                check(value[key], item_spec, f"{prefix}{key}")


def check_record(data: Any) -> None:
    """Raise ``ShapeError`` unless ``data`` has the shape of a schema_version 2 record."""
    check(data, RECORD)

"""The JSON run record: every figure and every variant row of a run, versioned.

The record is the one machine-readable result of a run; the HTML report, the
parquet export, ``probe compare`` and the baseline all read it. Its layout is
documented in ``docs/record.md``. Everything outside the top-level ``volatile``
object is a pure function of the suites, the models (by fingerprint), the seed
and the settings, so two runs of the same inputs give byte-identical records
once ``volatile`` is removed (``comparable_bytes``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import platform
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from probe.detectors import make_detector
from probe.detectors.base import Detector, LocatedDetector
from probe.engine.compare import OperatorFigure, ProbeResult, SuiteResult
from probe.engine.figures import FamilyFigure, OperatorRate, ProbeFamily, WorstOperator
from probe.engine.gates import Gate
from probe.engine.judging import JudgeFigure
from probe.engine.latent import LatentResult
from probe.engine.limits import COMPLETION_CUT
from probe.engine.perturbations import PerturbationResult
from probe.engine.runner import Row, Side
from probe.engine.stats import Estimate
from probe.engine.variants import Variant, conversation_json, params_json
from probe.errors import UsageError
from probe.options import opt
from probe.session import ProbeSession
from probe.spec.model import SUITE_GATE_ID, Probe, Suite

# 2: the engine's figures (outcome, uninformative_reason, families, worst_operator,
# operator_rates) and each completion's detector spans and cut flag, which the
# reports read instead of recomputing them; version 1 records lack them.
SCHEMA_VERSION = 2
RECORD_KIND = "probe-run-record"

Record = dict[str, Any]


def _num(value: float | None) -> float | None:
    # JSON has no NaN or infinity; an undefined figure is null.
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _estimate(e: Estimate) -> dict[str, Any]:
    return {"value": _num(e.value), "low": _num(e.low), "high": _num(e.high),
            "limit": _num(e.limit), "p_above": _num(e.p_above), "p_below": _num(e.p_below),
            "method": e.method, "units": e.units}


def _gate(g: Gate) -> dict[str, Any]:
    # estimate.low/high are the interval the decision uses (at level_above/level_below).
    return {"metric": g.metric, "decision": g.decision.value, "fail_only": g.fail_only,
            "cannot_fail": g.cannot_fail, "alpha": g.alpha,
            "p_above_adj": _num(g.p_above_adj), "p_below_adj": _num(g.p_below_adj),
            "level_above": _num(g.level_above), "level_below": _num(g.level_below),
            "family": g.family, "estimate": _estimate(g.estimate)}


def _cut(label: str, notes: tuple[str, ...]) -> bool:
    """Whether generation cut any of this side's completions at max_new_tokens: the
    row's limits note for the side says so (``probe.engine.limits``)."""
    return any(n.startswith(f"{label} ") and COMPLETION_CUT in n for n in notes)


def _side(side: Side, label: str, row: Row, detector: Detector | None) -> dict[str, Any]:
    prefill = row.variant.prompt.prefill
    # Detectors judge prefill + completion, so the spans index that text.
    spans = [[list(s) for s in detector.spans(prefill + c)] if detector is not None else []
             for c in side.completions]
    out: dict[str, Any] = {"completions": list(side.completions), "hit": _num(side.hit),
                           "margin": _num(side.margin),
                           "cut": _cut(label, row.notes), "spans": spans}
    if side.leak_at_k is not None:  # generation.worst_of: the candidate was sampled
        out |= {"leak_at_k": _num(side.leak_at_k), "leak_sample": side.leak_sample}
    return out


def _row(row: Row, counted: set[int], shadow_of: Mapping[int, float],
         detector: Detector | None) -> dict[str, Any]:
    v = row.variant
    return {
        "index": v.index,
        "operator": v.operator,
        "family": v.family,
        # A list, not a name: operator chains grow longer as composition lands.
        "chain": list(v.chain),
        # Each step as applied (operator, seed, count, index, params): enough to replay it.
        "steps": [dataclasses.asdict(step) for step in v.steps],
        "seed": v.seed,
        "origin": v.origin,
        "similarity": _num(v.similarity),
        "text": v.prompt.text,
        "prefill": v.prompt.prefill,
        "chat": v.prompt.chat,
        **conversation_json(v.prompt),  # system, messages: only for a conversation
        "counted": id(row) in counted,
        "shadow_counted": id(row) in shadow_of,
        "shadow": _num(shadow_of.get(id(row))),
        "base": _side(row.base, "base", row, detector),
        "candidate": _side(row.candidate, "candidate", row, detector),
        # What the length limits cut on this row (probe.engine.limits); [] when nothing.
        "limits": list(row.notes),
    }


def _operator(op: OperatorFigure) -> dict[str, Any]:
    return {"operator": op.operator, "family": op.family, "counted": op.counted,
            "total": op.total, "base_hits": _num(op.base_hits),
            "candidate_hits": _num(op.candidate_hits), "resurfacing": _num(op.resurfacing),
            "shadow": _num(op.shadow)}


def _family(f: ProbeFamily) -> dict[str, Any]:
    return {"family": f.family, "operators": list(f.operators), "counted": f.counted,
            "total": f.total, "base_hits": _num(f.base_hits),
            "candidate_hits": _num(f.candidate_hits), "rate": _num(f.rate)}


def _worst_operator(w: WorstOperator | None) -> dict[str, Any] | None:
    return None if w is None else {"operator": w.operator, "share": _num(w.share)}


def _detector(suite: Suite, result: ProbeResult) -> Detector | None:
    """The probe's detector, for the match spans (detectors load models lazily, and
    spans never need one)."""
    probe = result.run.probe
    spec = suite.detector_for(probe)
    return None if spec is None else LocatedDetector(make_detector(spec), suite, probe)


def _probe_spec(suite: Suite, probe: Probe) -> dict[str, Any]:
    """What the suite says of the probe beside its prompt: its detector as parsed (the
    suite's when it has none of its own; a dataset row's answers are its own), tags and
    log-likelihood completions, so an export can carry the probe into other tools."""
    spec = suite.detector_for(probe)
    detector = None if spec is None else {
        "type": spec.type, "invert": spec.invert,
        "params": json.loads(params_json(spec.params))}
    return {"detector": detector, "tags": list(probe.tags),
            "suppressed": list(probe.suppressed), "preferred": list(probe.preferred)}


def _probe(result: ProbeResult, detector: Detector | None) -> dict[str, Any]:
    shadow_of = {id(r): s for r, s in zip(result.shadow_counted, result.shadows, strict=True)}
    rows = result.run.rows
    worst = result.worst
    return {
        "id": result.run.probe.id,
        "verdict": result.verdict.value,
        "outcome": result.outcome,
        "uninformative_reason": result.uninformative_reason,
        "reasons": list(result.reasons),
        "policy": dataclasses.asdict(result.policy),
        "has_detector": result.has_detector,
        "base_canonical": _num(result.base_canonical) if result.has_detector else None,
        "candidate_canonical": (_num(result.candidate_canonical) if result.has_detector
                                else None),
        # Mean hit over every variant, canonical included: how often each model shows it.
        "base_rate": _num(result.base_rate),
        "candidate_rate": _num(result.candidate_rate),
        "suppression": _num(result.suppression),
        "counted": len(result.counted),
        "dropped": len(result.dropped),
        "gates": [_gate(g) for g in result.gates],
        "operators": [_operator(o) for o in result.operators],
        "families": [_family(f) for f in result.families],
        "worst_operator": _worst_operator(result.worst_operator),
        "worst_variant": None if worst is None else worst.variant.index,
        "rows": [_row(r, {id(c) for c in result.counted}, shadow_of, detector) for r in rows],
        # Not run, never dropped silently: what the meaning check took out, and why.
        "rejected": [_rejected(v) for v in result.run.rejected],
    }


def _rejected(v: Variant) -> dict[str, Any]:
    return {"index": v.index, "operator": v.operator, "family": v.family,
            "chain": list(v.chain), "seed": v.seed, "origin": v.origin, "text": v.prompt.text,
            "prefill": v.prompt.prefill, "chat": v.prompt.chat,
            "similarity": _num(v.similarity), "missing": list(v.missing)}


def _suite(result: SuiteResult) -> dict[str, Any]:
    suite = result.suite
    # Each probe's detector, built once for its rows and its rows under each perturbation.
    detectors = {p.run.probe.id: _detector(suite, p) if p.has_detector else None
                 for p in result.probes}
    return {
        "name": suite.name,
        "source": suite.source,
        "direction": suite.behavior.direction,
        "behavior": suite.behavior.description,
        "policy": dataclasses.asdict(suite.policy),
        "generation": dataclasses.asdict(suite.generation),
        "verdict": result.verdict.value,
        "outcome": result.outcome,
        "uninformative_reason": result.uninformative_reason,
        "reasons": list(result.reasons),
        "gates": [_gate(g) for g in result.gates],
        "operators": [{"operator": name, "family": family, "estimate": _estimate(e)}
                      for name, family, e in result.operators],
        "families": [_suite_family(f) for f in result.families],
        "operator_rates": [_operator_rate(o) for o in result.operator_rates],
        "shadow_agreement": (None if result.agreement is None
                             else dataclasses.asdict(result.agreement)),
        "probes": [{**_probe(p, detectors[p.run.probe.id]), **_probe_spec(suite, p.run.probe)}
                   for p in result.probes],
        # What ``dataset`` loaded: a hub dataset can change under the same id.
        "dataset": (None if suite.dataset_origin is None
                    else dataclasses.asdict(suite.dataset_origin)),
        "perturbations": [_perturbation(p, result.perturbation_gate(p), detectors)
                          for p in result.perturbations],
        "judges": [_judge(j) for j in result.judges],
        "latent": None if result.latent is None else _latent(result.latent),
    }


def _profile(values: Sequence[float] | None) -> list[float | None] | None:
    return None if values is None else [_num(v) for v in values]


def _latent(r: LatentResult) -> dict[str, Any]:
    """The margins read at intermediate layers (docs/metrics.md, "The latent answer"):
    per layer, 1 to ``layers``, for both models, and the latent shadow."""
    shadow = r.shadow
    return {
        "from_layer": r.spec.from_layer,
        "first_layer": r.from_layer,
        "layers": list(range(1, r.layers + 1)),
        "base": _profile(r.base),
        "candidate": _profile(r.candidate),
        "base_best_layer": r.best_layer(r.base),
        "candidate_best_layer": r.best_layer(r.candidate),
        "variants": r.variants,
        "shadow": None if shadow is None else {
            "value": _num(shadow.value), "low": _num(shadow.low), "high": _num(shadow.high)},
        "probes": [{"id": p.id, "counted": p.counted, "base": _profile(p.base),
                    "candidate": _profile(p.candidate),
                    "canonical_base": _profile(p.canonical_base),
                    "canonical_candidate": _profile(p.canonical_candidate)}
                   for p in r.probes],
        "notes": list(r.notes),
    }


def _judge(j: JudgeFigure) -> dict[str, Any]:
    """One judge detector: where it is used, its agreement with the labelled examples,
    each example as judged, and its unparsed answers on the probes' completions."""
    return {"model": j.model, "fingerprint": j.fingerprint, "where": j.where,
            "probes": list(j.probes), "rubric": j.rubric, "agreement": _num(j.agreement),
            "agreed": j.agreed, "min_agreement": j.min_agreement, "judged": j.judged,
            "unparsed": j.unparsed,
            "examples": [{"completion": e.completion, "hit": e.expected, "answer": e.answer,
                          "verdict": e.verdict} for e in j.examples]}


def _perturbation(p: PerturbationResult, gate: Gate,
                  detectors: Mapping[str, Detector | None]) -> dict[str, Any]:
    """One ``perturb`` entry: its figures (``gate``: the one it is reported with), and
    every row run on the perturbed pair, each naming the perturbation (``detectors``:
    each probe's, for the match spans)."""
    label = p.perturbation.label
    recovery = p.recovery
    probes = []
    for probe in p.probes:
        detector = detectors[probe.run.probe.id]
        counted = {id(c) for c in probe.counted}
        probes.append({"id": probe.run.probe.id, "counted": len(probe.counted),
                       "resurfacing": _num(probe.resurfacing),
                       "rows": [{**_row(r, counted, {}, detector), "perturbation": label}
                                for r in probe.run.rows]})
    return {
        "label": label,
        "kind": p.perturbation.kind,
        "spec": dataclasses.asdict(p.perturbation),
        "gated": p.perturbation.gate,
        "gate": _gate(gate),
        "recovery": None if recovery is None else {
            "value": _num(recovery.value), "low": _num(recovery.low),
            "high": _num(recovery.high), "variants": recovery.variants,
            "probes": recovery.probes},
        "bucket_share": _num(p.bucket_share),
        "buckets": [{"layer": layer, "changed": changed, "total": total}
                    for layer, changed, total in p.buckets],
        "notes": list(p.notes),
        # Relearning on the suite's probes: which trained, which the figures measure.
        "trained": list(p.trained),
        "evaluated": list(p.evaluated),
        "probes": probes,
    }


def _suite_family(f: FamilyFigure) -> dict[str, Any]:
    return {"family": f.family, "operators": list(f.operators), "counted": f.counted,
            "total": f.total, "estimate": _estimate(f.estimate)}


def _operator_rate(o: OperatorRate) -> dict[str, Any]:
    return {"operator": o.operator, "family": o.family, "variants": o.variants,
            "base_rate": _num(o.base_rate), "candidate_rate": _num(o.candidate_rate)}


def build_record(session: ProbeSession, volatile: Mapping[str, Any] | None = None) -> Record:
    """The run record of a finished session (``volatile``: extra run-specific facts)."""
    s = session.settings
    models: dict[str, Any] = {}
    if session.loaded:
        for label, backend in (("base", session.pair.base),
                               ("candidate", session.pair.candidate)):
            models[label] = {"name": portable_ref(backend.info.name),
                             "fingerprint": backend.info.fingerprint}
    suites = [_suite(r) for r in session.suite_results.values()]
    verdicts = {f"{su['name']}::{p['id']}": p["verdict"] for su in suites for p in su["probes"]}
    verdicts.update({f"{su['name']}::{SUITE_GATE_ID}": su["verdict"] for su in suites})
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": RECORD_KIND,
        "tool": {"name": "probe-resurface", "version": _tool_version()},
        "settings": {
            "base": portable_ref(s.base),
            "candidate": portable_ref(s.candidate),
            "seed": s.seed,
            "cache": s.cache_dir is not None,
            "policy_overrides": dict(s.policy_overrides),
            "backend": dataclasses.asdict(s.backend),
        },
        "models": models,
        "verdicts": verdicts,
        "suites": suites,
        "volatile": {**volatile_facts(session), **(volatile or {})},
    }


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("probe-resurface")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def portable_ref(ref: str) -> str:
    """A model reference without the checkout's location: an absolute path below the
    working directory becomes relative (``scripted:`` kept). The fingerprint, not the
    path, says which weights ran; the reference as given stays in ``volatile``."""
    from probe.backends.engines import SCRIPTED_PREFIX, is_scripted

    prefix = SCRIPTED_PREFIX if is_scripted(ref) else ""
    path = Path(ref[len(prefix):])
    if not path.is_absolute():
        return ref
    try:
        return prefix + path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return ref


def volatile_facts(session: ProbeSession) -> dict[str, Any]:
    """What differs between two runs of the same inputs: kept under ``volatile``."""
    cache = session.settings.cache_dir
    return {
        "refs": {"base": session.settings.base, "candidate": session.settings.candidate},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cache_dir": None if cache is None else str(Path(cache).resolve()),
    }


def dumps(record: Mapping[str, Any]) -> str:
    """The record as JSON text: sorted keys, two-space indent, UTF-8, final newline."""
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"


def comparable_bytes(record: Mapping[str, Any]) -> bytes:
    """The record's bytes without ``volatile``: equal for equal inputs."""
    return dumps({k: v for k, v in record.items() if k != "volatile"}).encode("utf-8")


def write_record(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``record`` to ``path`` atomically (parents created; ``WriteError`` when
    it cannot be written, the old file kept); returns the path."""
    from probe.files import atomic_write_text

    return atomic_write_text(path, dumps(record))


class RecordError(UsageError):
    """A file that is not a run record this version can read (a usage error: exit 4)."""


def _no_constant(name: str) -> Any:
    # JSON has no NaN or Infinity; a record never holds them (``dumps`` refuses them).
    raise ValueError(f"{name} is not a JSON number")


def read_record(path: str | Path) -> Record:
    """Load and check a run record (its shape too: ``probe.report.record_check``);
    ``RecordError`` with the reason otherwise, so every reader can trust its fields."""
    from probe.report.record_check import ShapeError, check_record
    from probe.report.safe_text import visible

    where = visible(path)
    source = Path(path)
    # A FIFO or a device would block the read or never end: only regular files.
    if source.exists() and not source.is_file():
        raise RecordError(f"{where}: not a regular file")
    try:
        data = json.loads(source.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except OSError as err:
        raise RecordError(f"{where}: cannot read the file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise RecordError(f"{where}: not a JSON file (not UTF-8 text)") from None
    except json.JSONDecodeError as err:
        raise RecordError(f"{where}: not a JSON file ({err.msg}: line {err.lineno} column "
                          f"{err.colno})") from None
    except (ValueError, RecursionError) as err:  # NaN, a 5000-digit number, deep nesting
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise RecordError(f"{where}: not a run record ({visible(reason)[:100]})") from None
    if not isinstance(data, dict) or data.get("kind") != RECORD_KIND:
        raise RecordError(f"{where}: not a probe run record (written by --probe-json or "
                          "probe run --json)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        shown = visible(version)[:20] if isinstance(version, int) else type(version).__name__
        older = (isinstance(version, int) and not isinstance(version, bool)
                 and 0 < version < SCHEMA_VERSION)
        # An older record lacks the figures the reports now read; recomputing them here
        # would be a second, diverging implementation, so it is written again instead.
        again = ("; run the suites again to write a new one (a baseline: accept it again "
                 f"with {opt('update_baseline')})" if older else "")
        raise RecordError(f"{where}: run record schema_version {shown}; this tool reads "
                          f"schema_version {SCHEMA_VERSION}{again}")
    try:
        check_record(data)
    except ShapeError as err:
        raise RecordError(f"{where}: not a valid run record: {err}") from None
    except RecursionError:
        raise RecordError(f"{where}: not a run record (nested too deeply)") from None
    return data

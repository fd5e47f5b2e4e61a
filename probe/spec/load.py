"""Load a suite file into a validated, frozen ``Suite``, or raise a located ``SpecError``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Any

from probe.errors import RegistryError, SpecError, did_you_mean
from probe.spec.build import build, identifier_problem, register_converter, show_value
from probe.spec.model import (
    MAX_OPERATOR_COUNT,
    SUITE_VERSION,
    DatasetSource,
    DetectorSpec,
    OperatorSpec,
    Probe,
    Suite,
)
from probe.spec.yaml_source import Path, SourceMap, format_path, load_yaml, path_near

# A suite is hand-written data; anything this large is a mistake (or an attack).
MAX_SUITE_BYTES = 5 * 1024 * 1024


def load_suite(path: str | FsPath, display_name: str | None = None, *,
               data_roots: Sequence[FsPath] = ()) -> Suite:
    """Read, parse and validate the suite file at ``path``.

    ``display_name`` is how errors and reports name the file (default: ``path``);
    ``data_roots`` are directories besides the suite's own that a ``dataset`` may read
    from (``probe.spec.dataset.check_data_roots``).
    """
    file = display_name or str(path)
    try:
        with FsPath(path).open("rb") as f:
            # Read one byte past the limit, never the whole of a huge file.
            raw = f.read(MAX_SUITE_BYTES + 1)
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror}", file=file) from None
    if len(raw) > MAX_SUITE_BYTES:
        line = raw.count(b"\n") + 1
        # The line is where the limit is crossed: what to split or cut.
        raise SpecError(f"the file is larger than {MAX_SUITE_BYTES} bytes, the limit for a suite;"
                        " split it into several suites", file=file, line=line)
    text = _decode(raw, file)
    suite = parse_suite(text, file, base_dir=FsPath(path).parent, data_roots=data_roots)
    return dataclasses.replace(suite, path=str(FsPath(path).resolve()))


def _decode(raw: bytes, file: str) -> str:
    """UTF-8 text (a UTF-8 byte order mark is fine), or a located error that says the fix."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:200]:
        raise SpecError("the file is UTF-16 (or has NUL bytes); save it as UTF-8", file=file,
                        line=1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        end = raw.find(b"\n", err.start)
        near = path_near(raw[: len(raw) if end < 0 else end + 1].decode("utf-8", "replace"))
        raise SpecError(f"byte 0x{raw[err.start]:02x} is not valid UTF-8 (Latin-1 or "
                        "Windows-1252 text?); save the file as UTF-8", file=file, line=line,
                        path=near) from None


def parse_suite(text: str, file: str = "<string>", *, base_dir: FsPath | None = None,
                data_roots: Sequence[FsPath] = ()) -> Suite:
    """Validate suite ``text``; ``file`` is used in error messages.

    ``base_dir`` is where a ``dataset`` path is looked up (default: ``file``'s directory);
    the file must lie under it or one of ``data_roots``.
    """
    data, smap = load_yaml(text, file)
    if not isinstance(data, dict):
        raise smap.error((), "a suite must be a mapping with keys version, name, behavior, ...")
    if "version" not in data:
        raise smap.error((), f"missing required key 'version' (this tool reads version: "
                             f"{SUITE_VERSION})")
    version = data["version"]
    if version != SUITE_VERSION:
        if isinstance(version, str) and version.strip() == str(SUITE_VERSION):
            # YAML reads "1" as text: the most common way to write the right version wrong.
            raise smap.error(("version",), f"the version must be the number {SUITE_VERSION}, "
                                           f"unquoted (version: {SUITE_VERSION}); "
                                           f"{show_value(version)} in quotes is text")
        raise smap.error(("version",), f"unsupported suite version {show_value(version)};"
                                       f" this tool reads version: {SUITE_VERSION} (the "
                                       "number, unquoted)")
    suite = build(Suite, data, (), smap)
    _check_perturbations(suite, smap)
    probes = []
    seen: dict[str, int] = {}
    for index, probe in enumerate(suite.probes):
        line = smap.line_of(("probes", index)) or 0
        if probe.id in seen:
            first = seen[probe.id]
            raise smap.error(("probes", index, "id"),
                             f"duplicate probe id {probe.id!r} (first used by probes[{first}])")
        seen[probe.id] = index
        _check_probe_tiers(suite, probe, index, smap)
        _check_policy(suite, probe, index, smap)
        _check_messages(probe, ("probes", index, "messages"), smap)
        probes.append(dataclasses.replace(probe, line=line))
    origin = None
    if suite.dataset is not None:
        from probe.spec.dataset import load_dataset_probes

        where: Path = ("dataset",)
        rows, origin = load_dataset_probes(suite.dataset, base_dir or FsPath(file).parent,
                                           where, smap, data_roots)
        for number, probe in enumerate(rows, start=1):
            problem = _row_problem(suite, suite.dataset, probe)
            if problem is not None:
                raise smap.error(where, f"{suite.dataset.name!r} row {number}, {problem}")
            if probe.id in seen:
                raise smap.error(where, f"{suite.dataset.name!r} row {number}: duplicate "
                                        f"probe id {probe.id!r}")
            seen[probe.id] = len(probes)
            _check_probe_tiers(suite, probe, len(probes), smap, where)
            _check_policy(suite, probe, len(probes), smap)  # the suite's: rows have none
            probes.append(probe)
    if not probes:
        if "probes" in data:
            raise smap.error(("probes",), "must not be empty: list at least one probe, or "
                                          "read them from a file with 'dataset'")
        raise smap.error((), "missing required key 'probes' (or 'dataset', to read the "
                             "probes from a data file)")
    _check_latent(suite, probes, smap)
    _check_relearn_split(suite, probes, smap)
    return dataclasses.replace(suite, probes=tuple(probes), source=file, dataset_origin=origin)


def _check_latent(suite: Suite, probes: Sequence[Probe], smap: SourceMap) -> None:
    """``latent`` reads the log-likelihood margin, so it needs a suppress suite with at
    least one probe that has ``suppressed`` and ``preferred`` completions (the others
    are left out of its figures, which the report says)."""
    if suite.latent is None:
        return
    _check_variant_names(suite, suite.latent.variants, ("latent", "variants"), smap)
    if suite.behavior.direction == "retain":
        raise smap.error(("latent",), "latent reads the log-likelihood margin of a suppressed "
                                      "completion; a retain suite (direction: retain) has none")
    if not any(p.suppressed for p in probes):
        raise smap.error(("latent",), "latent reads the log-likelihood margin, and no probe has "
                                      "'suppressed' and 'preferred' completions: give at least "
                                      "one probe both, or remove 'latent'")


def _check_variant_names(suite: Suite, names: Sequence[str], path: Path,
                         smap: SourceMap) -> None:
    """``variants`` (of a perturbation or of ``latent``) name operators the suite has: a
    name that matches no variant would silently leave the canonical prompts alone."""
    known = ["canonical", "paraphrase", *dict.fromkeys(op.name for op in suite.operators)]
    for index, name in enumerate(names):
        if name not in known:
            hint = did_you_mean(name, known)
            raise smap.error((*path, index), f"{name!r} is none of this suite's operators "
                                             f"({', '.join(known)}).{hint}")


def _check_relearn_split(suite: Suite, probes: Sequence[Probe], smap: SourceMap) -> None:
    """``relearn: {data: probes}`` needs probes to train on (with ``suppressed`` completions)
    and probes left to measure: at least one on each side (``probe.engine.held_out``)."""
    by_id = {p.id: p for p in probes}
    for index, item in enumerate(suite.perturb):
        settings = item.relearn
        if settings is None:
            continue
        path: Path = ("perturb", index, "relearn")
        if settings.data != "probes":
            if settings.train:
                raise smap.error((*path, "train"), "train names the probes to relearn on, "
                                                   "which needs data: probes")
            continue
        for k, probe_id in enumerate(settings.train):
            probe = by_id.get(probe_id)
            if probe is None:
                hint = did_you_mean(probe_id, list(by_id))
                raise smap.error((*path, "train", k), f"no probe {probe_id!r} in this suite.{hint}")
            if not probe.suppressed:
                raise smap.error((*path, "train", k), f"probe {probe_id!r} has no 'suppressed' "
                                 "completion to train on: give it one, or train on others")
        eligible = [p for p in probes if p.suppressed]
        trained = len(set(settings.train)) if settings.train else max(1, len(eligible) // 2)
        if not eligible or len(probes) - trained < 1:
            raise smap.error(path, f"data: probes trains on some probes (by default half of those "
                                   f"with 'suppressed' completions, here {len(eligible)}) and "
                                   f"measures the others ({len(probes)} probes in all): at "
                                   "least one is needed on each side")


def _check_perturbations(suite: Suite, smap: SourceMap) -> None:
    """Each ``perturb`` entry names exactly one perturbation, its options fit it, and no
    two entries are the same (they would be one gate counted twice)."""
    if suite.perturb and suite.behavior.direction == "retain":
        # The figures and gates are resurfacing's; a retain suite's would be the loss.
        raise smap.error(("perturb",), "perturbations measure a suppressed behavior coming "
                                       "back; a retain suite (direction: retain) takes none")
    seen: dict[str, int] = {}
    for index, item in enumerate(suite.perturb):
        path: Path = ("perturb", index)
        given = [k for k in ("quantize", "adapter_scale", "relearn")
                 if getattr(item, k) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise smap.error(path, f"give exactly one perturbation (quantize, adapter_scale or "
                                   f"relearn) per entry, got {what}; list each on its own")
        if item.group_size is not None and item.quantize != "int4":
            raise smap.error((*path, "group_size"), "group_size is for quantize: int4 (int8 "
                                                    "has one scale per output channel, the "
                                                    "GGUF types blocks of 32)")
        _check_variant_names(suite, item.variants, (*path, "variants"), smap)
        if item.label in seen:
            raise smap.error(path, f"{item.label!r} is listed twice (perturb[{seen[item.label]}]"
                                   f" and perturb[{index}])")
        seen[item.label] = index


def _check_messages(probe: Probe, path: Path, smap: SourceMap) -> None:
    """A probe's earlier turns alternate from a user turn to an assistant turn, so that its
    prompt is the next user turn: the order every chat template expects (many raise on
    two user turns in a row)."""
    for index, message in enumerate(probe.messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            raise smap.error((*path, index, "role"), f"turn {index + 1} must be a {expected} turn: "
                             "earlier turns alternate user, assistant, user, ... and end with "
                             "an assistant turn (the probe's prompt is the next user turn)")
    if len(probe.messages) % 2:
        raise smap.error((*path, len(probe.messages) - 1), "the last earlier turn must be an "
                         "assistant turn (the probe's prompt is the next user turn)")


def _row_problem(suite: Suite, source: DatasetSource, probe: Probe) -> str | None:
    """What is wrong with a data file row's id or tags (the checks the suite's own
    probes get from their field metadata, ``probe.spec.build.identifier_problem``), or
    a row with nothing to measure it by."""
    problem = identifier_problem("id", probe.id)
    if problem is not None:
        return f"column {source.fields.id!r}: {problem}"
    for tag in probe.tags:
        problem = identifier_problem("tag", tag)
        if problem is not None:
            return f"column {source.fields.tags!r}: {problem}"
    if suite.detector_for(probe) is None and not probe.suppressed:
        answers = (f"its answers column {source.fields.answers!r} is empty"
                   if source.fields.answers else "no answers column is mapped (fields.answers)")
        return (f"nothing to measure: {answers} and the suite has no detector; give the "
                "row answers, the suite a detector, or the rows suppressed and preferred "
                "completions")
    return None


def _check_probe_tiers(suite: Suite, probe: Probe, index: int, smap: SourceMap,
                       where: Path | None = None) -> None:
    """A probe needs a detector (generation tier) or completions (log-likelihood tier)."""
    path: Path = ("probes", index) if where is None else where
    if bool(probe.suppressed) != bool(probe.preferred):
        missing = "preferred" if probe.suppressed else "suppressed"
        raise smap.error(path, f"log-likelihood probes need both 'suppressed' and 'preferred' "
                               f"completions; '{missing}' is missing")
    if probe.suppressed and suite.behavior.direction == "retain":
        raise smap.error((*path, "suppressed"), "log-likelihood completions measure a "
                         "suppressed behavior; a retain suite judges by its detector only")
    if suite.detector_for(probe) is None and not probe.suppressed:
        raise smap.error(path, "nothing to measure: give the probe (or the suite) a detector, "
                               "or 'suppressed' and 'preferred' completions")


def _check_policy(suite: Suite, probe: Probe, index: int, smap: SourceMap) -> None:
    """Refuse a policy no result can pass: a zero limit with ``on_inconclusive: fail``.

    A gate passes only when its whole interval lies under the limit, and a rate's
    interval always reaches 0, so a limit of 0 can never be shown to hold.
    """
    policy = suite.policy_for(probe)
    key = "max_loss" if suite.behavior.direction == "retain" else "max_resurfacing"
    if getattr(policy, key) > 0 or policy.on_inconclusive != "fail":
        return
    own = probe.policy is not None and getattr(probe.policy, key) is not None
    path: Path = ("probes", index, "policy", key) if own else ("policy", key)
    raise smap.error(path, f"impossible policy: {key} 0 can never be shown to hold (a gate "
                           "passes only when its whole interval is under the limit), so with "
                           "on_inconclusive: fail every probe fails; use a small positive "
                           "limit such as 0.05, or on_inconclusive: pass to fail only on "
                           "proven resurfacing")


def _plugin_params(registry: Any, name: str, params: dict[str, Any], path: Path,
                   reserved: tuple[str, ...], smap: SourceMap) -> tuple[Any, Any]:
    """Look ``name`` up in ``registry`` and validate ``params`` against its ``Params``.

    ``reserved`` are the keys the suite format reads at the same level, the name's key
    first (``type``, ``invert``; ``name``, ``count``, ``then``): an unknown key's error
    lists them with the plugin's own and may suggest one of them."""
    try:
        plugin_cls = registry.get(name)
    except RegistryError as err:
        raise smap.error((*path, reserved[0]), str(err)) from None
    # The plugin's params live at the same level as the reserved keys in YAML.
    values = build(plugin_cls.Params, params, path, smap, reserved=reserved)
    return plugin_cls, values


def _convert_detector(value: Any, path: Path, smap: SourceMap) -> DetectorSpec:
    from probe.detectors import DETECTORS

    if not isinstance(value, dict):
        raise smap.error(path, "expected a mapping such as {type: pattern, any: [...]}")
    if "type" not in value:
        raise smap.error(path, f"missing required key 'type' (one of: {', '.join(DETECTORS)})")
    name, invert = value["type"], value.get("invert", False)
    if not isinstance(name, str):
        raise smap.error((*path, "type"), "expected a detector name")
    if not isinstance(invert, bool):
        raise smap.error((*path, "invert"), "expected true or false")
    rest = {k: v for k, v in value.items() if k not in ("type", "invert")}
    detector_cls, params = _plugin_params(DETECTORS, name, rest, path, ("type", "invert"), smap)
    try:
        detector_cls(params)  # compile regexes etc. now, not mid-run
    except ValueError as err:
        # "any[2]: invalid regular expression ..." names the parameter: locate it.
        where, _, problem = str(err).partition(": ")
        item = re.fullmatch(r"(\w+)\[(\d+)\]", where)
        if item is None or not problem:
            raise smap.error(path, str(err)) from None
        raise smap.error((*path, item[1], int(item[2])), problem) from None
    return DetectorSpec(type=name, params=params, invert=invert)


def _convert_operator(value: Any, path: Path, smap: SourceMap, *,
                      link: bool = False) -> OperatorSpec:
    from probe.operators import OPERATORS

    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise smap.error(path, "expected an operator name or a mapping {name: ..., count: ...}")
    if "name" not in value:
        raise smap.error(path, "missing required key 'name'")
    name = value["name"]
    if not isinstance(name, str):
        raise smap.error((*path, "name"), "expected an operator name")
    count = value["count"] if "count" in value else _default_count(name)
    if link and ("count" in value or "then" in value):
        key = "count" if "count" in value else "then"
        raise smap.error((*path, key), f"a chained operator takes no '{key}': the first "
                                       "operator's count sets how many variants the chain makes")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise smap.error((*path, "count"), f"expected a positive integer, got "
                                           f"{show_value(count)}")
    if count > MAX_OPERATOR_COUNT:
        # Each variant is a prompt run on both models: a billion exhausts memory first.
        raise smap.error((*path, "count"), f"must be at most {MAX_OPERATOR_COUNT}, got "
                                           f"{show_value(count)}")
    then_raw = value.get("then", [])
    if not isinstance(then_raw, list):
        raise smap.error((*path, "then"), "expected a list of operators to apply in turn")
    then = tuple(_convert_operator(v, (*path, "then", i), smap, link=True)
                 for i, v in enumerate(then_raw))
    rest = {k: v for k, v in value.items() if k not in ("name", "count", "then")}
    # A link accepts no count or then (refused above), so its error lists neither.
    reserved = ("name",) if link else ("name", "count", "then")
    _, params = _plugin_params(OPERATORS, name, rest, path, reserved, smap)
    return OperatorSpec(name=name, params=params, count=count, then=then)


def _default_count(name: str) -> int:
    """An operator's ``count`` when the suite gives none: its class's ``default_count``
    (``paraphrase``: every hand-written paraphrase), else 1. An unknown name is
    reported where its parameters are checked, with a did-you-mean."""
    from probe.operators import OPERATORS

    try:
        default = getattr(OPERATORS.get(name), "default_count", 1)
    except RegistryError:
        return 1
    return default if isinstance(default, int) else 1


register_converter(DetectorSpec, _convert_detector)
register_converter(OperatorSpec, _convert_operator)

__all__ = ["MAX_OPERATOR_COUNT", "MAX_SUITE_BYTES", "format_path", "load_suite", "parse_suite"]

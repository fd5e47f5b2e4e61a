"""Build frozen dataclasses from plain YAML values, strictly, with located errors.

One generic walker over dataclass fields and their type hints, so the suite
format is defined in exactly one place (``probe.spec.model``) and every plugin's
parameters (operators, detectors) are validated the same way. Field metadata
adds bounds and docs: ``field(metadata={"min": 0, "doc": "..."})``.

Hostile values end here too (issue 14): every number must be finite (NaN passes
every ``<`` and ``>`` check, so a ``.nan`` limit once turned a FAIL into a PASS),
every integer is bounded (``MAX_INT`` unless the field gives its own ``max``), and
fields marked ``identifier`` (probe ids, tags, suite names) must print as what they
are: no control or invisible characters, no ``::``, no reserved name.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from probe.errors import did_you_mean
from probe.spec.model import SUITE_GATE_ID
from probe.spec.yaml_source import Path, SourceMap

T = TypeVar("T")

Converter = typing.Callable[[Any, Path, SourceMap], Any]

# Types whose YAML form is not a plain dataclass mapping (for example an operator
# entry that may be a bare name, with parameters checked by the operator itself).
CUSTOM_CONVERTERS: dict[type, Converter] = {}


def register_converter(tp: type, converter: Converter) -> None:
    """Use ``converter`` to build values of ``tp`` from YAML."""
    CUSTOM_CONVERTERS[tp] = converter

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}

# The bound of every integer setting whose field gives none: ``count: 1000000000``
# passed every check and then exhausted memory (issue 14).
MAX_INT = 1_000_000

# Tags become pytest markers; these are pytest's own, which change how a test runs
# (skip it, expect it to fail, parametrize it): as a tag, a suite file could take its
# own gate off. Refused whatever their case. Markers that plugins or an ini file
# register are never applied to a probe either (``probe.plugin``).
PYTEST_MARKERS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures",
                            "filterwarnings", "tryfirst", "trylast"})
# A tag is a marker name pytest's ``-m`` can select: a letter or digit, then letters,
# digits, ``_``, ``-`` or ``.``.
_TAG = re.compile(r"[^\W_][\w.-]*")
MAX_IDENTIFIER_CHARS = 200
# Control, format (zero-width, bidirectional overrides), surrogate and line or
# paragraph separator characters: they hide or rewrite what a terminal shows.
_INVISIBLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_IDENTIFIER_WHAT = {"id": "a probe id", "tag": "a tag", "name": "a suite name"}


def show_value(value: Any) -> str:
    """``value`` as a message may quote it: YAML's spelling of NaN and the infinities
    (never a ``nan`` that reads like a figure), and no thousand-digit integers."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, int) and value.bit_length() > 64:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits} digits"
    return repr(value)


def identifier_problem(kind: str, text: str) -> str | None:
    """What is wrong with ``text`` as an identifier of ``kind`` (``id``, ``tag`` or
    ``name``), or ``None``. Used for suite fields and for probes read from data files."""
    what = _IDENTIFIER_WHAT[kind]
    for char in text:
        if unicodedata.category(char) in _INVISIBLE:
            name = unicodedata.name(char, "a control character")
            return (f"{what} must be printable: character U+{ord(char):04X} ({name}) hides or "
                    "rewrites what a terminal shows; remove it")
    if len(text) > MAX_IDENTIFIER_CHARS:
        return (f"{what} of {len(text)} characters; ids, tags and names are printed on every "
                f"line of a report, so the limit is {MAX_IDENTIFIER_CHARS}")
    if "::" in text:
        return (f"{what} must not contain '::', which separates the suite from the probe in "
                "test ids and records (suite::probe); use another separator")
    if kind == "id" and text == SUITE_GATE_ID:
        return (f"{SUITE_GATE_ID!r} is reserved: it names the suite's own gate "
                f"(suite::{SUITE_GATE_ID}); choose another id")
    if kind == "tag" and text.casefold() in PYTEST_MARKERS:
        return (f"{text!r} is one of pytest's own markers, and tags become markers: it would "
                "change how pytest runs the probe (skip it, or expect it to fail); rename the tag")
    if kind == "tag" and not _TAG.fullmatch(text):
        return ("tags become pytest markers: use letters, digits, '_', '-' and '.', starting "
                "with a letter or digit")
    return None


def build(cls: type[T], data: Any, path: Path, smap: SourceMap, *,
          reserved: Sequence[str] = ()) -> T:
    """Validate ``data`` against dataclass ``cls`` and return an instance.

    ``reserved`` are keys the caller reads itself at the same level (an operator's
    ``name``, ``count`` and ``then``): never in ``data``, but an unknown key's error
    lists them among the known ones and may suggest one (``cuont``: ``count``)."""
    if reserved:
        return typing.cast(T, _convert_dataclass(cls, data, path, smap, reserved))
    return typing.cast(T, _convert(cls, data, path, smap))


def _describe(tp: Any) -> str:
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp]
    origin = get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if dataclasses.is_dataclass(tp) or origin in (dict, Mapping):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return str(tp)


def _got(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    shown = show_value(value)
    return shown if shown.startswith("an integer") else f"{type(value).__name__} {shown}"


def _convert(tp: Any, value: Any, path: Path, smap: SourceMap) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        non_none = [o for o in options if o is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path, smap)
        raise TypeError(f"unsupported union {tp}")  # programming error, not user error
    if tp is Any:
        _check_free(value, path, smap)
        return value
    if isinstance(tp, type) and tp in CUSTOM_CONVERTERS:
        return CUSTOM_CONVERTERS[tp](value, path, smap)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(typing.cast(type, tp), value, path, smap)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            hint = did_you_mean(str(value), [str(a) for a in allowed])
            raise smap.error(path, f"expected {_describe(tp)}, got {_got(value)}.{hint}")
        return value
    if origin is tuple:
        item_tp = get_args(tp)[0]
        if not isinstance(value, list):
            raise smap.error(path, f"expected a list, got {_got(value)}")
        return tuple(_convert(item_tp, v, (*path, i), smap) for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise smap.error(path, f"expected a mapping, got {_got(value)}")
        value_tp = get_args(tp)[1]
        return types.MappingProxyType(
            {k: _convert(value_tp, v, (*path, k), smap) for k, v in value.items()})
    if tp is bool:
        if not isinstance(value, bool):
            raise smap.error(path, f"expected true or false, got {_got(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise smap.error(path, f"expected an integer, got {_got(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise smap.error(path, f"expected a number, got {_got(value)}")
        return _finite(value, path, smap)
    if tp is str:
        if not isinstance(value, str):
            raise smap.error(path, f"expected a string, got {_got(value)}")
        return value
    raise TypeError(f"unsupported field type {tp}")


def _finite(value: int | float, path: Path, smap: SourceMap) -> float:
    """``value`` as a finite float: NaN and the infinities pass every range check."""
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise smap.error(path, f"expected a finite number, got {_got(value)}")
    return number


def _check_free(value: Any, path: Path, smap: SourceMap) -> None:
    """Free-form values (``Any``) hold numbers within the same limits as typed ones."""
    if isinstance(value, float):
        _finite(value, path, smap)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise smap.error(path, f"must be at most {MAX_INT} in size, got {show_value(value)}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_free(item, (*path, key), smap)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_free(item, (*path, index), smap)


def int_bounds(meta: Mapping[str, Any]) -> tuple[Any, Any]:
    """The bounds of an integer field: its own ``min``/``max``, else ``-MAX_INT``/``MAX_INT``."""
    return meta.get("min", -MAX_INT), meta.get("max", MAX_INT)


def _convert_dataclass(cls: type, value: Any, path: Path, smap: SourceMap,
                       reserved: Sequence[str] = ()) -> Any:
    if not isinstance(value, dict):
        raise smap.error(path, f"expected a mapping, got {_got(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)
              if f.init and not f.metadata.get("internal")}
    for key in value:
        if key not in fields:
            accepted = [*fields, *reserved]
            hint = did_you_mean(key, accepted)
            known = ", ".join(sorted(accepted))
            raise smap.error((*path, key), f"unknown key {key!r}.{hint} Known keys: {known}",
                             key=True)
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise smap.error(path, f"missing required key {name!r}")
            continue
        if hints[name] is bool and not isinstance(value[name], bool) and "doc" in f.metadata:
            # A flag given a value of another kind (``regex: [Par.s]``): say what the flag
            # means, so the author sees where the value really belongs.
            raise smap.error((*path, name), f"expected true or false, got {_got(value[name])}; "
                                            f"{name!r} is a flag. {f.metadata['doc']}")
        converted = _convert(hints[name], value[name], (*path, name), smap)
        _check_bounds(f, hints[name], converted, (*path, name), smap)
        kwargs[name] = converted
    return cls(**kwargs)


def _check_bounds(f: dataclasses.Field[Any], tp: Any, value: Any, path: Path,
                  smap: SourceMap) -> None:
    meta = f.metadata
    if value is None:
        return
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, int) and not isinstance(value, bool) and int in (tp, *get_args(tp)):
        low, high = int_bounds(meta)
    if low is not None and value < low:
        raise smap.error(path, f"must be at least {low}, got {show_value(value)}")
    if high is not None and value > high:
        raise smap.error(path, f"must be at most {high}, got {show_value(value)}")
    if meta.get("nonempty") and (len(value) == 0 or (isinstance(value, str) and not value.strip())):
        raise smap.error(path, "must not be empty")
    if meta.get("nonempty_items") and any(not str(v).strip() for v in value):
        index = next(i for i, v in enumerate(value) if not str(v).strip())
        raise smap.error((*path, index), "must not be empty")
    kind = meta.get("identifier")
    if kind is not None:
        items = [(path, value)] if isinstance(value, str) else [
            ((*path, i), v) for i, v in enumerate(value)]
        for where, text in items:
            problem = identifier_problem(kind, text)
            if problem is not None:
                raise smap.error(where, problem)

"""Build frozen dataclasses from plain YAML values, strictly, with located errors.

One generic walker over dataclass fields and their type hints, so the suite
format is defined in exactly one place (``probe.spec.model``) and every plugin's
parameters (operators, detectors) are validated the same way. Field metadata
adds bounds and docs: ``field(metadata={"min": 0, "doc": "..."})``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from probe.errors import did_you_mean
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


def build(cls: type[T], data: Any, path: Path, smap: SourceMap) -> T:
    """Validate ``data`` against dataclass ``cls`` and return an instance."""
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
    return f"{type(value).__name__} {value!r}"


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
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise smap.error(path, f"expected a string, got {_got(value)}")
        return value
    raise TypeError(f"unsupported field type {tp}")


def _convert_dataclass(cls: type, value: Any, path: Path, smap: SourceMap) -> Any:
    if not isinstance(value, dict):
        raise smap.error(path, f"expected a mapping, got {_got(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)
              if f.init and not f.metadata.get("internal")}
    for key in value:
        if key not in fields:
            hint = did_you_mean(key, fields)
            known = ", ".join(sorted(fields))
            raise smap.error((*path, key), f"unknown key {key!r}.{hint} Known keys: {known}",
                             key=True)
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise smap.error(path, f"missing required key {name!r}")
            continue
        converted = _convert(hints[name], value[name], (*path, name), smap)
        _check_bounds(f, converted, (*path, name), smap)
        kwargs[name] = converted
    return cls(**kwargs)


def _check_bounds(f: dataclasses.Field[Any], value: Any, path: Path, smap: SourceMap) -> None:
    meta = f.metadata
    if value is None:
        return
    if "min" in meta and value < meta["min"]:
        raise smap.error(path, f"must be at least {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise smap.error(path, f"must be at most {meta['max']}, got {value!r}")
    if meta.get("nonempty") and (len(value) == 0 or (isinstance(value, str) and not value.strip())):
        raise smap.error(path, "must not be empty")
    if meta.get("nonempty_items") and any(not str(v).strip() for v in value):
        index = next(i for i, v in enumerate(value) if not str(v).strip())
        raise smap.error((*path, index), "must not be empty")

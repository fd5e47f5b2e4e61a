"""A JSON Schema for suite files, generated from the spec dataclasses (never hand-written).

The suite format is defined once, by the frozen dataclasses of ``probe.spec.model``
and the ``Params`` dataclasses of every registered operator and detector; this
module walks the same field types and metadata (``min``, ``max``, ``nonempty``,
``nonempty_items``, ``doc``, ``internal``) that ``probe.spec.build`` validates with.
The package ships the result as ``probe/spec/suite.schema.json`` (a test checks it
is current; regenerate with ``probe schema --generate -o probe/spec/suite.schema.json``)
and ``probe schema`` prints it, so editors validate and complete suite files, e.g.
with ``# yaml-language-server: $schema=suite.schema.json`` at the top of a suite.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
from importlib import resources
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from probe.spec.build import int_bounds
from probe.spec.model import (
    MAX_OPERATOR_COUNT,
    SUITE_VERSION,
    DetectorSpec,
    OperatorSpec,
    Suite,
)

SCHEMA_FILE = "suite.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]


def _doc(cls: type) -> str:
    text = inspect.getdoc(cls) or ""
    return " ".join(text.split("\n\n")[0].split())


class _Generator:
    def __init__(self) -> None:
        self.defs: dict[str, Schema] = {}

    def ref(self, cls: type) -> Schema:
        """A ``$ref`` to ``cls``'s definition, generating it on first use."""
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: recursion ends here
            self.defs[name] = self.special(cls) or self.dataclass_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def special(self, cls: type) -> Schema | None:
        if cls is DetectorSpec:
            return self.detector()
        if cls is OperatorSpec:
            return self.operator()
        return None

    def properties(self, cls: type) -> tuple[dict[str, Schema], list[str]]:
        hints = get_type_hints(cls)
        props: dict[str, Schema] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            if not f.init or f.metadata.get("internal"):
                continue
            schema = self.field(hints[f.name], f.metadata)
            if f.default is not dataclasses.MISSING and _plain(f.default):
                schema["default"] = _jsonable(f.default)
            if "doc" in f.metadata:
                schema["description"] = f.metadata["doc"]
            props[f.name] = schema
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        return props, required

    def dataclass_schema(self, cls: type) -> Schema:
        props, required = self.properties(cls)
        schema: Schema = {"type": "object", "additionalProperties": False,
                          "properties": props}
        if required:
            schema["required"] = required
        if _doc(cls):
            schema["description"] = _doc(cls)
        return schema

    def field(self, tp: Any, meta: Any) -> Schema:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            options = [o for o in get_args(tp) if o is not type(None)]
            inner = self.field(options[0], meta)
            return {"anyOf": [inner, {"type": "null"}]}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.ref(tp)
        if origin is Literal:
            return {"enum": list(get_args(tp))}
        if origin is tuple:
            items = self.field(get_args(tp)[0], {})
            if meta.get("nonempty_items") and items.get("type") == "string":
                items["minLength"] = 1
            array: Schema = {"type": "array", "items": items}
            if meta.get("nonempty"):
                array["minItems"] = 1
            return array
        if tp is Any:
            return {}
        scalar = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp)
        if scalar is None:
            raise TypeError(f"no JSON Schema for field type {tp}")
        schema: Schema = {"type": scalar}
        if scalar == "integer":
            # Every integer is bounded (probe.spec.build.MAX_INT unless the field says).
            schema["minimum"], schema["maximum"] = int_bounds(meta)
        if scalar == "number":
            if "min" in meta:
                schema["minimum"] = meta["min"]
            if "max" in meta:
                schema["maximum"] = meta["max"]
        if scalar == "string" and meta.get("nonempty"):
            schema["minLength"] = 1
            schema["pattern"] = r"\S"
        return schema

    def plugin_branches(self, registry: Any, key: str, reserved: dict[str, Schema],
                        ) -> list[Schema]:
        branches = []
        for name in registry.names():
            props, required = self.properties(registry.get(name).Params)
            branches.append({
                "if": {"properties": {key: {"const": name}}, "required": [key]},
                "then": {"properties": {**reserved, **props}, "required": [key, *required],
                         "additionalProperties": False}})
        return branches

    def detector(self) -> Schema:
        from probe.detectors import DETECTORS

        reserved: dict[str, Schema] = {
            "type": {"enum": DETECTORS.names()},
            "invert": {"type": "boolean", "default": False,
                       "description": "hit when the detector misses"}}
        return {"type": "object", "description": _doc(DetectorSpec),
                "required": ["type"], "properties": reserved,
                "allOf": self.plugin_branches(DETECTORS, "type", reserved)}

    def operator(self) -> Schema:
        from probe.operators import OPERATORS

        reserved: dict[str, Schema] = {
            "name": {"enum": OPERATORS.names()},
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_OPERATOR_COUNT,
                      "default": 1,
                      "description": "how many variants of each probe (default 1; "
                                     "paraphrase: every hand-written paraphrase)"},
            "then": {"type": "array", "items": {"$ref": "#/$defs/OperatorSpec"},
                     "description": "operators that rewrite each variant in turn (a chain)"}}
        mapping = {"type": "object", "required": ["name"], "properties": reserved,
                   "allOf": self.plugin_branches(OPERATORS, "name", reserved)}
        return {"description": _doc(OperatorSpec),
                "anyOf": [{"enum": OPERATORS.names()}, mapping]}


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | tuple)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def generate_schema() -> Schema:
    """The JSON Schema of suite files, from the dataclasses and every registered plugin."""
    gen = _Generator()
    root = gen.dataclass_schema(Suite)
    root["properties"]["version"] = {"const": SUITE_VERSION,
                                     "description": f"the suite format version: the number "
                                                    f"{SUITE_VERSION}, unquoted"}
    root["anyOf"] = [{"required": ["probes"]}, {"required": ["dataset"]}]
    return {"$schema": DRAFT, "title": "probe suite file", **root,
            "$defs": dict(sorted(gen.defs.items()))}


def schema_text(schema: Schema) -> str:
    """The schema as the shipped file holds it: sorted keys, two-space indent."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def shipped_schema_text() -> str:
    """The schema file shipped in the package."""
    return resources.files("probe.spec").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")

"""Safe YAML reading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and lets a duplicate key silently
overwrite the first one. We compose the node tree ourselves (no object is ever
constructed from a tag), build plain Python values, and keep a map from key path
to line so validation errors can name ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from probe.errors import SpecError

# Tags a suite may carry: YAML's core schema and nothing that builds objects.
_SAFE_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("probes", 2, "detector")`` -> ``probes[2].detector``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass
class SourceMap:
    """Line numbers (1-based) of every value, and of every mapping key, by path."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)
    key_lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path, *, key: bool = False) -> int | None:
        """Line of ``path``; falls back to the nearest enclosing value."""
        if key and path in self.key_lines:
            return self.key_lines[path]
        probe = path
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def error(self, path: Path, message: str, *, key: bool = False) -> SpecError:
        """A ``SpecError`` located at ``path``."""
        return SpecError(message, file=self.file, line=self.line_of(path, key=key),
                         path=format_path(path))


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse ``text`` into plain values plus a ``SourceMap``; raise ``SpecError`` if unsafe."""
    smap = SourceMap(file)
    if "\t" in text:
        line = text[: text.index("\t")].count("\n") + 1
        raise SpecError("tab character; YAML indentation must use spaces", file=file, line=line)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at_line = mark.line + 1 if mark is not None else None
        problem = err.problem or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=at_line) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {err}", file=file) from None
    if node is None:
        raise SpecError("the file is empty", file=file, line=1)
    return _build(node, (), smap), smap


# Aliases let a few lines expand into billions of values ("billion laughs"); a
# suite has no business being that large once expanded.
MAX_VALUES = 200_000


def _build(node: yaml.Node, path: Path, smap: SourceMap) -> Any:
    smap.lines[path] = node.start_mark.line + 1
    if len(smap.lines) > MAX_VALUES:
        raise smap.error(path, f"the suite expands to more than {MAX_VALUES} values "
                               "(aliases nested too deep?)")
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP_TAG:
            raise smap.error(path, f"tag {node.tag!r} is not allowed; suites carry data only")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise smap.error(path, "merge keys ('<<') are not supported; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise SpecError("mapping keys must be plain strings", file=smap.file,
                                line=key_node.start_mark.line + 1, path=format_path(path))
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                raise SpecError(f"duplicate key {key!r} (first at line {smap.key_lines[child]})",
                                file=smap.file, line=key_node.start_mark.line + 1,
                                path=format_path(child))
            smap.key_lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, smap)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise smap.error(path, f"tag {node.tag!r} is not allowed; suites carry data only")
        return [_build(item, (*path, i), smap) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    if node.tag not in _SAFE_SCALAR_TAGS:
        raise smap.error(path, f"tag {node.tag!r} is not allowed; suites carry data only")
    return _CONSTRUCTOR.construct_object(node, deep=True)


_CONSTRUCTOR = yaml.constructor.SafeConstructor()

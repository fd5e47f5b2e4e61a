"""Safe YAML reading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and lets a duplicate key silently
overwrite the first one. We compose the node tree ourselves (no object is ever
constructed from a tag), build plain Python values, and keep a map from key path
to line so validation errors can name ``file:line``.
"""

from __future__ import annotations

import re
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
_PLAIN_KEY = re.compile(r"[^\W\d][\w-]*")


TOP_LEVEL = "(top level)"


def format_path(path: Path) -> str:
    """``("probes", 2, "detector")`` -> ``probes[2].detector``; ``()`` -> ``(top level)``.

    The document itself gets a name too, so every error about the suite's structure
    names where it is (a missing ``version`` is missing from the top level).
    """
    if not path:
        return TOP_LEVEL
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            # Spaces, dots or control characters: quoted, so a message stays one
            # readable line and the path stays unambiguous.
            out += f"[{part!r}]"
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
        start = text.index("\t")
        line = text[:start].count("\n") + 1
        raise SpecError("tab character; YAML indentation must use spaces", file=file, line=line,
                        path=path_near(_through_line(text, start).replace("\t", " ")))
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at_line = mark.line + 1 if mark is not None else None
        problem = err.problem or "invalid YAML"
        # A second document is a mistake of the document itself: no key is "near" it.
        whole_file = "another document" in problem
        near = TOP_LEVEL if whole_file else path_near(
            text if mark is None else text[: mark.index])
        raise SpecError(f"invalid YAML: {problem}", file=file, line=at_line,
                        path=near) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow
        at = min(err.position, len(text))
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1])
        raise SpecError(f"invalid YAML: character U+{code:04X} is "
                        f"not allowed in YAML ({err.reason}); remove it", file=file,
                        line=text[:at].count("\n") + 1,
                        path=path_near(_through_line(text, at)[:at])) from None
    except yaml.YAMLError as err:  # no other kind is raised unlocated; kept as a safety net
        first = str(err).strip().splitlines()[:1] or ["unreadable"]
        raise SpecError(f"invalid YAML: {first[0]}", file=file, line=1) from None
    if node is None:
        raise SpecError("the file is empty", file=file, line=1)
    return _build(node, (), smap), smap


def _compose(text: str) -> Any:
    """The node tree of ``text``: libyaml's parser when PyYAML has it (ten times faster:
    collecting 1,000 probes stays well under a second), else PyYAML's own.

    A file libyaml rejects is parsed again by PyYAML's own parser, so every error
    message and location is exactly what PyYAML reports, whichever parser is present.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _through_line(text: str, index: int) -> str:
    """``text`` up to the end of the line holding ``index``."""
    end = text.find("\n", index)
    return text if end < 0 else text[: end + 1]


def path_near(text: str) -> str:
    """The key path open at the end of ``text`` (which may be cut off or invalid YAML).

    Syntax errors, tabs and bad bytes happen before any value exists, so their key
    path comes from PyYAML's event stream up to the error: the innermost open mapping
    key or sequence index of each level, ``probes[1].prompt``.
    """
    frames: list[list[Any]] = []  # [kind, current key or index, expecting a key]

    def begin_node() -> None:
        if not frames:
            return
        top = frames[-1]
        if top[0] == "seq":
            top[1] += 1
        elif top[2]:  # a mapping key; complex keys are not allowed later anyway
            top[1], top[2] = None, False
        else:
            top[2] = True  # the value of top[1]

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if event.start_mark is None or event.start_mark.index >= len(text):
                break  # closing events caused by the cut, not by the document
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                begin_node()
                if isinstance(event, yaml.MappingStartEvent):
                    frames.append(["map", None, True])
                else:
                    frames.append(["seq", -1, False])
            elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if frames and frames[-1][0] == "map" and frames[-1][2]:
                    frames[-1][1], frames[-1][2] = str(getattr(event, "value", "")), False
                else:
                    begin_node()
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent) and frames:
                frames.pop()
    except yaml.YAMLError:
        pass  # expected: ``text`` stops at (or before) the error
    path: list[str | int] = []
    for kind, current, _ in frames:
        if (kind == "map" and current is not None) or (kind == "seq" and current >= 0):
            path.append(current)
    return format_path(tuple(path))


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

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
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        raise SpecError(f"tab character at column {column}; YAML indentation must use spaces: "
                        "replace the tab with spaces", file=file, line=line,
                        path=path_near(_through_line(text, start).replace("\t", " ")))
    try:
        node = _compose(text)
    except RecursionError:
        # PyYAML's composer recurses once per level: nesting libyaml refuses (over 1,000
        # levels) ends here. The scan finds the level where our own limit is crossed.
        deep_line, where = _too_deep(text)
        raise SpecError(_DEEP, file=file, line=deep_line, path=where) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at_line = mark.line + 1 if mark is not None else None
        problem = err.problem or "invalid YAML"
        # A second document is a mistake of the document itself: no key is "near" it.
        whole_file = "another document" in problem
        near = TOP_LEVEL if whole_file else path_near(
            text if mark is None else text[: mark.index])
        raise SpecError(f"invalid YAML: {problem}{_syntax_hint(text, mark, problem)}",
                        file=file, line=at_line, path=near) from None
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
    return _Builder(smap).build(node, (), 1), smap


def _syntax_hint(text: str, mark: yaml.Mark | None, problem: str) -> str:
    """`` (column N); what usually causes it: the fix`` for PyYAML's common syntax errors,
    whose own words ("mapping values are not allowed here") do not say what to change."""
    if mark is None:
        return ""
    where = f" (column {mark.column + 1})"
    before = text[mark.index - mark.column: mark.index]  # the line up to the error
    if problem == "mapping values are not allowed here":
        if ": " in before or before.rstrip().endswith(":"):
            # ``prompt: What is it: a city?``: the second ': ' would start another key.
            return (f"{where}; a colon followed by a space inside unquoted text starts a "
                    "key: put the text in quotes (\"...\")")
        # ``name: x`` then ``  behavior: y``: a key indented under a key that has a value.
        return (f"{where}; this key is indented deeper than the key above it, which already "
                "has a value: indent it as far as the keys beside it")
    if problem == "expected <block end>, but found '<scalar>'":
        # ``name: 'it's'``: the quote closed early and text follows it.
        return (f"{where}; text goes on after a closing quote: to put a quote inside quoted "
                "text, use the other kind of quote or double it ('it''s')")
    if problem.startswith("expected <block end>, but found"):
        return (f"{where}; bad indentation: this line does not line up with the keys or list "
                "items above it (or is a '- ' item among keys): indent it as the ones it "
                "belongs with")
    return where


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
        except yaml.MarkedYAMLError as err:
            if "maximum nesting depth" in str(err.problem):
                # PyYAML's own composer would spend seconds before its stack overflows.
                raise RecursionError(err.problem) from None
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _through_line(text: str, index: int) -> str:
    """``text`` up to the end of the line holding ``index``."""
    end = text.find("\n", index)
    return text if end < 0 else text[: end + 1]


class _OpenPath:
    """The key path open in a YAML event stream: the innermost mapping key or sequence
    index of each open level, as ``_Builder`` names the value being built there."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []  # [kind, current key or index, expecting a key]

    def _begin_node(self) -> None:
        if not self.frames:
            return
        top = self.frames[-1]
        if top[0] == "seq":
            top[1] += 1
        elif top[2]:  # a mapping key; complex keys are not allowed later anyway
            top[1], top[2] = None, False
        else:
            top[2] = True  # the value of top[1]

    def feed(self, event: yaml.Event) -> None:
        """Follow one event."""
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._begin_node()
            self.frames.append(["map", None, True] if isinstance(event, yaml.MappingStartEvent)
                               else ["seq", -1, False])
        elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            top = self.frames[-1] if self.frames else None
            if top is not None and top[0] == "map" and top[2]:
                top[1], top[2] = str(getattr(event, "value", "")), False
            else:
                self._begin_node()
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent) and self.frames:
            self.frames.pop()

    def path(self) -> Path:
        """The open path."""
        out: list[str | int] = []
        for kind, current, _ in self.frames:
            if (kind == "map" and current is not None) or (kind == "seq" and current >= 0):
                out.append(current)
        return tuple(out)


def path_near(text: str) -> str:
    """The key path open at the end of ``text`` (which may be cut off or invalid YAML).

    Syntax errors, tabs and bad bytes happen before any value exists, so their key
    path comes from PyYAML's event stream up to the error: the innermost open mapping
    key or sequence index of each level, ``probes[1].prompt``.
    """
    tracker = _OpenPath()
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if event.start_mark is None or event.start_mark.index >= len(text):
                break  # closing events caused by the cut, not by the document
            tracker.feed(event)
    except yaml.YAMLError:
        pass  # expected: ``text`` stops at (or before) the error
    return format_path(tracker.path())


def _too_deep(text: str) -> tuple[int | None, str]:
    """Line and key path of the first collection nested deeper than ``MAX_DEPTH``.

    libyaml's scanner looks ahead in flow collections, so it may refuse a nesting of
    a thousand levels before it yields the events that cross our limit: then the line
    is where it gave up, and the path the one open at that point.
    """
    tracker = _OpenPath()
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            tracker.feed(event)
            if len(tracker.frames) > MAX_DEPTH:
                at = event.start_mark
                return (None if at is None else at.line + 1), format_path(tracker.path())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        return (None if mark is None else mark.line + 1), format_path(tracker.path())
    return None, TOP_LEVEL


# Aliases let a few lines expand into billions of values ("billion laughs"); a
# suite has no business being that large once expanded.
MAX_VALUES = 200_000
# Nor can aliases repeat one long string over and over: a 4.5 MB suite once expanded to
# a 1.35 GB run record (issue 14). The budget is the characters of every string (keys
# included) once aliases are expanded: twice the largest suite file, so any suite that
# fits the file size limit without aliases fits, and aliases can at most double it.
MAX_TEXT_CHARS = 10 * 1024 * 1024
# A suite nests a handful of levels (probes[0].detector.any[0] is five); PyYAML's
# composer recurses once per level and overflows Python's stack near 500.
MAX_DEPTH = 32
# Longer number literals are no number a suite needs; Python refuses to convert
# decimal integers over 4,300 digits, and sexagesimal ones (1:2:3) cost quadratic time.
MAX_NUMBER_CHARS = 100

_DEEP = (f"values nested more than {MAX_DEPTH} levels deep; a suite needs a handful "
         "(probes[0].detector.any[0] is five): flatten it")
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_SURROGATE = re.compile(
    "[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")


class _Builder:
    """Plain values from a node tree, within the limits above; one per document."""

    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.chars = 0
        self.open: set[int] = set()  # ids of the collections being built (cycle check)
        # Its own constructor: a shared one would keep every scalar it ever built.
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        """The plain value of ``node`` at ``path``, ``depth`` collections deep."""
        smap = self.smap
        smap.lines[path] = node.start_mark.line + 1
        if len(smap.lines) > MAX_VALUES:
            raise smap.error(path, f"the suite expands to more than {MAX_VALUES} values "
                                   "(aliases nested too deep?)")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.open:
            # ``a: &a [*a]`` composes into a node that contains itself.
            raise smap.error(path, "an alias refers to a value that contains it (a cycle); "
                                   "write the values out")
        if depth > MAX_DEPTH:
            raise smap.error(path, _DEEP)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path, depth)
            assert isinstance(node, yaml.SequenceNode)
            if node.tag != _SEQ_TAG:
                raise smap.error(path, f"tag {node.tag!r} is not allowed; suites carry data only")
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        smap = self.smap
        if node.tag != _MAP_TAG:
            raise smap.error(path, f"tag {node.tag!r} is not allowed; suites carry data only")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise smap.error(path, "merge keys ('<<') are not supported; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise SpecError("mapping keys must be plain strings", file=smap.file,
                                line=key_node.start_mark.line + 1, path=format_path(path))
            key = self.text(str(key_node.value), path, key_node.start_mark.line + 1)
            child = (*path, key)
            if key in out:
                raise SpecError(f"duplicate key {key!r} (first at line {smap.key_lines[child]})",
                                file=smap.file, line=key_node.start_mark.line + 1,
                                path=format_path(child))
            smap.key_lines[child] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, child, depth + 1)
        return out

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        smap = self.smap
        if node.tag not in _SAFE_SCALAR_TAGS:
            raise smap.error(path, f"tag {node.tag!r} is not allowed; suites carry data only")
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            raise smap.error(path, f"a number written with {len(node.value)} characters; no "
                                   f"setting takes one longer than {MAX_NUMBER_CHARS}")
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError) as err:  # a safety net: the checks above catch all known
            raise smap.error(path, f"cannot read this value: {err}") from None
        if isinstance(value, str):
            return self.text(value, path, node.start_mark.line + 1)
        return value

    def text(self, value: str, path: Path, line: int) -> str:
        """``value`` counted against ``MAX_TEXT_CHARS``, its surrogate pairs joined."""
        self.chars += len(value)
        if self.chars > MAX_TEXT_CHARS:
            raise SpecError(f"the suite expands to more than {MAX_TEXT_CHARS} characters of "
                            "text (an alias repeating a long string?); write shorter values",
                            file=self.smap.file, line=line, path=format_path(path))
        if _SURROGATE.search(value) is None:
            return value
        lone = _LONE_SURROGATE.search(value)
        if lone is not None:
            # A string that cannot be written out as UTF-8: every report would fail on it.
            raise SpecError(f"the escape \\u{ord(lone[0]):04x} is half of a UTF-16 surrogate "
                            "pair, not a character; write the character itself, or \\U and "
                            "its code point", file=self.smap.file, line=line,
                            path=format_path(path))
        # "\\ud83d\\ude00" escapes one character as a UTF-16 pair: join it.
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")

"""A hypothesis fuzzer that mutates a valid suite: never a crash, never a silent pass.

Every mutation (of the text: deleted, doubled, swapped, re-indented or cut lines,
inserted characters and YAML snippets; or of the data: values replaced by other
types, keys deleted, added or misspelt) must end in exactly one of:

- one ``SpecError`` naming ``file:line`` and the key path (``(top level)`` for the
  document itself; none only for an empty or undecodable file), the
  same through the loader, ``probe check`` (exit 2, one line, no traceback) and
  pytest collection (a collection error showing only the message); or
- a suite that really is valid: it loads, expands into variants and runs on a
  scripted pair without any error.

The example count is bounded and the run derandomized, so CI sees the same cases
every time (about 5 s).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.backends.base import ModelPair
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.cli import main as probe_main
from probe.engine.runner import run_suite
from probe.errors import SpecError
from probe.spec import load_suite
from tests.conftest import VALID_SUITE, write_script
from tests.test_malformed_suites import collection_errors

# CI runs 300; PROBE_FUZZ_EXAMPLES=5000 for a longer local hunt.
EXAMPLES = int(os.environ.get("PROBE_FUZZ_EXAMPLES", "300"))
LINES = VALID_SUITE.splitlines(keepends=True)
DATA = yaml.safe_load(VALID_SUITE)
# Characters and snippets that mean something to YAML or to the loader.
CHARS = [*":-[]{},#&*!|>'\"%@`?\t\\ \n", "\u00e9", "\u2028", "\ufeff", "\x00", "\x85", "\x07",
         "\x1b", "\r", "\ud7ff", "\U0001f600"]
SNIPPETS = [
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!include x.yaml",
    "&anchor", "*anchor", "<<: *anchor", "? complex", "---", "...", "%YAML 1.1", "- item",
    "key: value", "probes: []", "version: 2", "prompt: ''", "regex: true", "any: ['(']",
    "max_resurfacing: 0", "{", "[", "'unclosed", "count: -1", "detector: {type: refsual}",
    "name: typos", "on_inconclusive: maybe", "samples: 0", "id: france", "\t",
    # Hostile values (issue 14): non-finite numbers, huge counts, reserved tags and ids,
    # self-referencing aliases, surrogate escapes, workflow commands.
    ".nan", "-.inf", "count: 1000000000", "tags: [skip]", "tags: [xfail]", "id: __suite__",
    "&a [*a]", '"\\ud800"', "::warning::x", "1" * 120,
]
PAIR = ModelPair(ScriptedBackend(Script("b", rules=(Rule("France", "Paris."),))),
                 ScriptedBackend(Script("c", default="No.")))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a plain YAML value."""
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*path, index))
    return out


PATHS = _paths(DATA)[1:]
KEYS = sorted({str(p[-1]) for p in PATHS if isinstance(p[-1], str)})

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["", " ", "Paris", "pattern", "1"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)


def _near_miss(draw: st.DrawFn, key: str) -> str:
    """``key`` with one character dropped, doubled or changed."""
    i = draw(st.integers(0, len(key) - 1))
    edit = draw(st.sampled_from(["drop", "double", "change"]))
    if edit == "drop" and len(key) > 1:
        return key[:i] + key[i + 1:]
    if edit == "double":
        return key[:i] + key[i] + key[i:]
    return key[:i] + draw(st.sampled_from("aeiosx_")) + key[i + 1:]


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def data_mutation(draw: st.DrawFn) -> str:
    data = yaml.safe_load(VALID_SUITE)
    path = draw(st.sampled_from(PATHS))
    parent, last = _at(data, path[:-1]), path[-1]
    kind = draw(st.sampled_from(["replace", "delete", "add", "rename"]))
    if kind == "replace":
        parent[last] = draw(values)
    elif kind == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        key = _near_miss(draw, str(last)) if kind == "rename" else draw(
            st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8)))
        value = parent.pop(last) if kind == "rename" else draw(values)
        parent[key] = value
    else:
        parent.insert(last, draw(values))
    flow = draw(st.sampled_from([False, None]))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=flow, allow_unicode=True)


@st.composite
def text_mutation(draw: st.DrawFn) -> str:
    lines = list(LINES)
    steps = draw(st.integers(1, 3))
    for _ in range(steps):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "double", "swap", "indent", "char", "snippet",
                                     "cut"]))
        if kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "double":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            shift = draw(st.integers(-4, 4))
            stripped = lines[i].lstrip(" ")
            lines[i] = " " * max(0, len(lines[i]) - len(stripped) + shift) + stripped
        elif kind == "char":
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.sampled_from(CHARS)) + lines[i][pos:]
        elif kind == "snippet":
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.sampled_from(SNIPPETS)) + lines[i][pos:]
        else:
            text = "".join(lines)
            return text[:draw(st.integers(0, len(text)))]
    return "".join(lines)


def check_loaded_suite_really_works(file: Path) -> None:
    """A mutation that loads must be usable end to end: variants, detectors, a run."""
    suite = load_suite(file)
    runs = run_suite(suite, suite.probes, PAIR)
    assert set(runs) == {p.id for p in suite.probes}
    for run in runs.values():
        assert run.rows
        assert run.rows[0].variant.index == 0


def check_one(text: str, file: Path, tally: Counter[str]) -> str | None:
    """Load ``text`` from ``file`` and via ``probe check``; the error message, or None."""
    file.write_text(text, encoding="utf-8")
    try:
        load_suite(file, file.name)
    except SpecError as err:
        # PT017 is off here: a mutation may load or fail, so pytest.raises does not fit;
        # when it fails, the error must be a located SpecError, checked here.
        message = str(err)
        assert err.line is not None, message  # noqa: PT017
        assert 1 <= err.line <= text.count("\n") + 2, message  # noqa: PT017
        assert re.match(rf"{re.escape(file.name)}:{err.line}: ", message), message  # noqa: PT017
        assert "\n" not in message, message
        tally["located errors"] += 1
        tally["with a key path" if err.path else "file-level (no key path)"] += 1
        # Only a file without any structure (empty, not UTF-8) has no key path.
        assert err.path or re.search(r"the file is empty|UTF-8", message), message  # noqa: PT017
    else:
        check_loaded_suite_really_works(file)
        tally["still valid (loaded and ran)"] += 1
        message = None
    out, err_out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err_out):
        code = probe_main(["check", str(file)])
    assert "Traceback" not in out.getvalue() + err_out.getvalue()
    if message is None:
        assert code == 0
        assert not err_out.getvalue()
    else:
        assert code == 2
        assert err_out.getvalue().splitlines() == [
            "error: " + message.replace(file.name, str(file), 1)]
    return message


def test_mutated_suites_end_in_one_located_error_or_a_working_suite(
        tmp_path: Path, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    tally: Counter[str] = Counter()
    cases: dict[str, str | None] = {}

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(text_mutation(), data_mutation()))
    def fuzz(text: str) -> None:
        tally["cases tried"] += 1
        cases[text] = check_one(text, tmp_path / "fuzz.yaml", tally)

    fuzz()

    # The same cases once more, as pytest collects them: one collection error per bad file.
    suites = pytester.path / "suites"
    suites.mkdir()
    names = {}
    for number, text in enumerate(cases):
        name = f"case_{number:03d}.yaml"
        names[name] = text
        (suites / name).write_text(text, encoding="utf-8")
    write_script(pytester.path / "m.yaml", "m", [])
    result = pytester.runpytest("suites", "--collect-only", "-q", "--probe-base",
                                "scripted:m.yaml", "--probe-candidate", "scripted:m.yaml",
                                "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    sections = collection_errors(result.stdout.str())
    for name, text in names.items():
        message = cases[text]
        if message is None:
            assert f"suites/{name}" not in sections
            assert f"suites/{name}::__suite__" in output  # collected: the gate item
        else:
            assert sections[f"suites/{name}"] == [message.replace("fuzz.yaml", f"suites/{name}",
                                                                  1)]
    tally["tracebacks"] += output.count("Traceback")
    with capsys.disabled():
        print("\nfuzzer:", ", ".join(f"{k} {v}" for k, v in sorted(tally.items())),
              f"(unique texts {len(cases)})")
    assert tally["cases tried"] >= EXAMPLES
    assert tally["located errors"] > EXAMPLES // 2
